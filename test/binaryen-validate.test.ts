// A second opinion on everything wasm-hotpatch writes: binaryen's validator, independent of V8's.
import binaryen from 'binaryen';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { diffBuilds } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { artifacts, read } from '../patches/examples.js';
import { wasmFixture, watFixture } from './helpers.js';

const require = createRequire(import.meta.url);

function binaryenAccepts(bytes: Uint8Array): boolean {
  const module = binaryen.readBinary(bytes);
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
    const inputs = [
      await watFixture('features.wat'),
      await watFixture('calls.wat'),
      wasmFixture('c/workload.wasm'),
      new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))),
    ];
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
});
