// A second opinion on everything wasm-hotpatch writes: binaryen's validator, independent of V8's.
import binaryen from 'binaryen';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { diffBuilds } from '../src/build/diff.js';
import { parseModule } from '../src/format/module.js';
import { prepare } from '../src/prepare/prepare.js';
import { prepareProfile, readProfile } from '../src/prepare/profile.js';
import { artifacts, read } from '../patches/examples.js';
import { wasmFixture, watFixture } from './helpers.js';

const require = createRequire(import.meta.url);

/**
 * The module without wasm-ld's `linking` and `reloc.*` sections (from `--emit-relocs` builds).
 * They describe an object file's symbols for a linker; binaryen does not model them and warns
 * that it "cannot handle this properly", while they have nothing to do with validity.
 */
function withoutLinkerSections(bytes: Uint8Array): Uint8Array {
  const kept = parseModule(bytes).sections.filter((s) => !(s.id === 0 && (s.name === 'linking' || s.name?.startsWith('reloc.'))));
  return Buffer.concat([bytes.subarray(0, 8), ...kept.map((s) => bytes.subarray(s.start, s.end))]);
}

function binaryenAccepts(bytes: Uint8Array): boolean {
  const module = binaryen.readBinary(withoutLinkerSections(bytes));
  try {
    // readBinary reports MVP features: enable everything Node 20 runs, or reference types fail.
    module.setFeatures(binaryen.Features.All);
    return Boolean(module.validate());
  } finally {
    module.dispose();
  }
}

describe('binaryen validates what wasm-hotpatch writes', () => {
  it('prepared baselines, both dispatch designs, fixtures and real libraries', async () => {
    const inputs = [await watFixture('features.wat'), await watFixture('calls.wat'), wasmFixture('c/workload.wasm'), new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')))];
    for (const input of inputs) {
      for (const dispatch of ['entry', 'indirect'] as const) expect(binaryenAccepts((await prepare(input, { dispatch })).bytes)).toBe(true);
    }
  });

  it('the checked-in patches and a diff patch of a stripped emscripten build', async () => {
    for (const a of artifacts) expect(binaryenAccepts(read(a.path)), a.path).toBe(true);
    const { editOneConstant } = await import('../bench/_edit.js');
    const old = new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm')));
    const result = await diffBuilds(old, editOneConstant(old, 50).bytes, { baseline: (await prepare(old)).manifest, id: 'x' });
    expect(result.hotpatchable && binaryenAccepts(result.patch.bytes)).toBe(true);
  });

  it('a counting build, a baseline without its hot functions, and a patch carried through callers', async () => {
    const vm = wasmFixture('hot/vm.wasm');
    const counting = await prepareProfile(vm);
    expect(binaryenAccepts(counting.bytes)).toBe(true);
    const { instance } = await WebAssembly.instantiate(counting.bytes as BufferSource);
    (instance.exports as { run(n: number): number }).run(100);
    const baseline = await prepare(vm, { excludeHot: { profile: readProfile(counting, instance), count: 3 } });
    expect(binaryenAccepts(baseline.bytes)).toBe(true);
    const result = await diffBuilds(vm, wasmFixture('hot/vm-fixed.wasm'), { baseline: baseline.bytes, id: 'fix-clamp' });
    expect(result.hotpatchable && result.throughCallers.length > 0 && binaryenAccepts(result.patch.bytes)).toBe(true);
    expect(binaryenAccepts((await prepareProfile(new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))))).bytes)).toBe(true);
  });
});
