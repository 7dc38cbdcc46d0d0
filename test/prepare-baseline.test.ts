import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { watToWasm } from '../src/build/wat.js';
import { computeBaselineId, decodeBaselineManifest } from '../src/format/manifest.js';
import { parseModule } from '../src/format/module.js';
import { prepare } from '../src/prepare/prepare.js';
import { wasmFixture, watFixture } from './helpers.js';

const require = createRequire(import.meta.url);

describe('the baseline manifest', () => {
  it('names every function, gives patchable ones a slot, says why the others are not', async () => {
    const { manifest, bytes } = await prepare(await watFixture('calls.wat'));
    expect(decodeBaselineManifest(bytes)).toEqual(manifest);
    expect(await computeBaselineId(bytes)).toBe(manifest.id);
    expect(manifest.functions.slice(0, 3)).toEqual([
      { index: 0, name: 'log', exports: [], signature: '(i32) -> ()', reason: 'imported' },
      { index: 1, name: 'fib', exports: ['fib'], signature: '(i32) -> (i32)', slot: 0 },
      { index: 2, name: 'double', exports: [], signature: '(i32) -> (i32)', slot: 1 },
    ]);
    expect(manifest.functions.find((f) => f.name === 'pair')).toMatchObject({ signature: '(i64, f64) -> (f64, i64)' });
    expect(manifest.memories).toEqual([{ index: 0, export: 'memory' }]);
    expect(manifest.tables).toEqual([{ index: 0, export: 'hotpatch.table.0', type: 'funcref' }]);
    expect(manifest.globals).toEqual([{ index: 0, export: 'hotpatch.global.0', type: 'i32', mutable: true }]);
    expect(manifest.slots).toBe(8);
  });

  it('selects functions with only and exclude, by name or export name', async () => {
    const wasm = await watFixture('calls.wat');
    const { manifest } = await prepare(wasm, { only: '^(fib|double|square)$', exclude: /square/ });
    expect(manifest.functions.filter((f) => f.slot !== undefined).map((f) => f.name)).toEqual(['fib', 'double']);
    expect(manifest.functions.find((f) => f.name === 'square')?.reason).toBe('excluded by --exclude /square/');
    expect(manifest.functions.find((f) => f.name === 'apply')?.reason).toMatch(/not selected by --only/);
  });

  it('only adds: every original export, import, custom section and the name section stay', async () => {
    const original = wasmFixture('c/workload.wasm');
    const before = parseModule(original);
    const after = parseModule((await prepare(original)).bytes);
    for (const e of before.exports) expect(after.exports).toContainEqual(e);
    expect(after.imports).toEqual(before.imports);
    const customs = (m: typeof before) => m.sections.filter((s) => s.id === 0).map((s) => s.name);
    expect(customs(after)).toEqual([...customs(before), 'hotpatch.baseline']);
    expect([...after.functionNames].slice(0, before.functionNames.size)).toEqual([...before.functionNames]);
    expect(after.globals.slice(0, before.globals.length)).toEqual(before.globals);
  });

  it('identifies functions by export name, then index, when there is no name section', async () => {
    const wasm = await watToWasm('(module (func (export "visible") (result i32) (i32.const 1)) (func (result i32) (i32.const 2)))');
    const stripped = wasm.slice(0, parseModule(wasm).sections.find((s) => s.name === 'name')!.start);
    const { manifest } = await prepare(stripped);
    expect(manifest.functions.map((f) => f.name)).toEqual(['visible', '#1']);
  });

  it('handles thousands of functions and large real modules', async () => {
    const count = 5000;
    const funcs = Array.from(
      { length: count },
      (_, i) => `(func $f${i} (export "f${i}") (param i32) (result i32) ${i > 0 ? `(call $f${i - 1} (i32.add (local.get 0) (i32.const 1)))` : '(local.get 0)'})`,
    );
    const wasm = await watToWasm(`(module ${funcs.join('\n')})`);
    const baseline = await prepare(wasm);
    expect(baseline.manifest.slots).toBe(count);
    const e = (await WebAssembly.instantiate(baseline.bytes as BufferSource)).instance.exports as Record<string, any>;
    expect(e[`f${count - 1}`](0)).toBe(count - 1);
    // The flag setter reaches every slot, the last chunk included: divert the last function to its predecessor's live entry.
    const table = e['hotpatch.table'] as WebAssembly.Table;
    e['hotpatch.set'](count - 1, table.get(baseline.manifest.live + count - 2), 1);
    expect(e[`f${count - 1}`](0)).toBe(count - 2);
    const sql = await prepare(new Uint8Array(readFileSync(require.resolve('sql.js/dist/sql-wasm.wasm'))));
    expect(sql.manifest.functions.length).toBeGreaterThan(1500);
  });

  it('packs flags as bits: setting or clearing one slot leaves the slots sharing its global alone', async () => {
    const count = 4000; // 13 bits a global, 128 globals a setter chunk: three chunks
    const funcs = Array.from({ length: count }, (_, i) => `(func (export "f${i}") (result i32) (i32.const ${i}))`);
    const baseline = await prepare(await watToWasm(`(module ${funcs.join('\n')})`));
    const e = (await WebAssembly.instantiate(baseline.bytes as BufferSource)).instance.exports as Record<string, any>;
    const table = e['hotpatch.table'] as WebAssembly.Table;
    const other = table.get(baseline.manifest.live + count - 1);
    const set = (slot: number, on: boolean) => e['hotpatch.set'](slot, on ? other : null, on ? 1 : 0);
    const diverted = () => Array.from({ length: count }, (_, i) => i).filter((i) => e[`f${i}`]() !== i);
    const slots = [0, 5, 6, 12, 13, 14, 25, 1663, 1664, 1665, 3327, 3328, 3998];
    for (const s of slots) set(s, true);
    expect(diverted()).toEqual(slots);
    set(13, false);
    set(1664, false);
    set(1664, false); // clearing twice changes nothing
    set(5, true); // setting twice neither
    expect(diverted()).toEqual(slots.filter((s) => s !== 13 && s !== 1664));
    for (const s of slots) set(s, false);
    expect(diverted()).toEqual([]);
  });
});

describe('prepare rejects bad input with a typed error', () => {
  it.each([
    ['not Wasm', async () => new TextEncoder().encode('hello world, not wasm'), 'E_NOT_WASM'],
    ['empty', async () => new Uint8Array(0), 'E_NOT_WASM'],
    ['a component', async () => new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), 'E_UNSUPPORTED_FEATURE'],
    ['truncated', async () => (await watFixture('calls.wat')).slice(0, 100), 'E_INVALID_WASM'],
    [
      'invalid code',
      async () => {
        const m = await watToWasm('(module (func (result i32) (i32.const 1)))');
        const out = m.slice();
        out[out.lastIndexOf(0x41)] = 0x42; // i32.const → i64.const: type error
        return out;
      },
      'E_INVALID_WASM',
    ],
    ['garbage collection types', async () => new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 3, 1, 0x5f, 0]), 'E_UNSUPPORTED_FEATURE'],
    ['no functions', async () => watToWasm('(module (memory 1))'), 'E_NOTHING_TO_PATCH'],
  ] as const)('%s', async (_name, make, code) => {
    await expect(prepare(await make())).rejects.toMatchObject({ code, name: 'HotpatchError' });
  });

  it('refuses bad options, and preparing a baseline again with other options', async () => {
    const wasm = await watFixture('calls.wat');
    await expect(prepare(wasm, { only: '(' })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    await expect(prepare(wasm, { dispatch: 'fast' as never })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    await expect(prepare(wasm, { only: 'no-such-function' })).rejects.toMatchObject({ code: 'E_NOTHING_TO_PATCH' });
    const baseline = await prepare(wasm);
    await expect(prepare(baseline.bytes)).resolves.toEqual(baseline);
    await expect(prepare(baseline.bytes, { dispatch: 'indirect' })).rejects.toMatchObject({ code: 'E_ALREADY_PREPARED' });
    await expect(prepare(baseline.bytes, { exclude: 'fib' })).rejects.toMatchObject({ code: 'E_ALREADY_PREPARED' });
  });
});
