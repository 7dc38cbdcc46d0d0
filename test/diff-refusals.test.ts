import { describe, expect, it } from 'vitest';
import { watToWasm } from '../src/build/wat.js';
import { diffBuilds, type DiffReason } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { wasmFixture } from './helpers.js';

/** The old program of the minimal pairs; each pair edits one thing of it. */
const OLD = `
  (import "env" "log" (func $log (param i32)))
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (table 2 funcref)
  (elem (i32.const 0) $inc $dec)
  (data (i32.const 1024) "hello")
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $dec (param i32) (result i32) (i32.sub (local.get 0) (i32.const 1)))
  (func $helper (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))
  (func $run (export "run") (param i32) (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $helper (call $inc (local.get 0))))
  (func $boot (global.set $count (i32.const 0)))
  (start $boot)`;

const edit = (from: string, to: string): string => {
  if (!OLD.includes(from)) throw new Error(`pair does not apply: ${from}`);
  return OLD.replace(from, to);
};

async function diff(newSource: string, oldSource = OLD) {
  const old = await watToWasm(`(module ${oldSource})`);
  const baseline = await prepare(old);
  return diffBuilds(old, await watToWasm(`(module ${newSource})`), { baseline: baseline.bytes, id: 'p' });
}

async function refused(newSource: string): Promise<readonly DiffReason[]> {
  const result = await diff(newSource);
  expect(result.hotpatchable, 'expected a refusal').toBe(false);
  const reasons = (result as { reasons: readonly DiffReason[] }).reasons;
  for (const r of reasons) {
    expect(r.message.length).toBeGreaterThan(20);
    expect(r.item.length).toBeGreaterThan(0);
  }
  return reasons;
}

describe('diff refuses what a patch cannot carry, naming each item', () => {
  it.each([
    [
      'a changed signature',
      edit('(func $helper (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))', '(func $helper (param i32) (result i64) (i64.const 3))').replace(
        '(call $helper (call $inc (local.get 0)))',
        '(i32.wrap_i64 (call $helper (call $inc (local.get 0))))',
      ),
      'SIGNATURE_CHANGED',
      'helper',
    ],
    [
      'a global added and exported',
      edit('(global $count (mut i32) (i32.const 0))', '(global $count (mut i32) (i32.const 0)) (global $extra (export "extra") (mut i32) (i32.const 0))'),
      'GLOBAL_ADDED',
      'extra',
    ],
    ['a global removed', edit('(global $count (mut i32) (i32.const 0))', '(global $count (mut i32) (i32.const 0)) (global $extra (mut i32) (i32.const 0))'), 'GLOBAL_REMOVED', 'extra'],
    ['a global given a new initial value', edit('(global $count (mut i32) (i32.const 0))', '(global $count (mut i32) (i32.const 5))'), 'GLOBAL_CHANGED', 'count'],
    [
      'a global given a new type',
      edit('(global $count (mut i32) (i32.const 0))', '(global $count i32 (i32.const 0))')
        .replace('(global.set $count (i32.add (global.get $count) (i32.const 1)))', '')
        .replace('(func $boot (global.set $count (i32.const 0)))', '(func $boot)'),
      'GLOBAL_CHANGED',
      'count',
    ],
    ['a string constant edited', edit('"hello"', '"HELLO"'), 'DATA_CHANGED', 'data[0]'],
    ['memory limits changed', edit('(memory (export "memory") 1)', '(memory (export "memory") 2)'), 'MEMORY_CHANGED', 'memory'],
    [
      'an import added',
      edit('(import "env" "log" (func $log (param i32)))', '(import "env" "log" (func $log (param i32))) (import "env" "now" (func $now (result f64)))'),
      'IMPORTS_CHANGED',
      'func env.now () -> (f64)',
    ],
    ['an export added', edit('(func $dec (param i32)', '(func $dec (export "dec") (param i32)'), 'EXPORTS_CHANGED', 'export dec'],
    ['a table grown', edit('(table 2 funcref)', '(table 3 funcref)'), 'TABLE_CHANGED', 'tables'],
    ['a function pointer reordered', edit('(elem (i32.const 0) $inc $dec)', '(elem (i32.const 0) $dec $inc)'), 'ELEMENTS_CHANGED', 'elem[0]'],
    [
      'a function removed',
      edit('(func $helper (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))', '').replace('(call $helper (call $inc (local.get 0)))', '(call $inc (local.get 0))'),
      'FUNCTION_REMOVED',
      'helper',
    ],
    ['the start function changed', edit('(start $boot)', '(start $boot2) (func $boot2 (global.set $count (i32.const 1)))'), 'START_CHANGED', 'start'],
  ])('%s', async (name, source, code, item) => {
    // "a global removed" runs the pair backwards: the old program has the extra global.
    const reasons = name === 'a global removed' ? await refusedBackwards(source) : await refused(source);
    expect(reasons).toContainEqual(expect.objectContaining({ code, item }));
  });

  it('gives every reason at once', async () => {
    const reasons = await refused(edit('"hello"', '"HELLO"').replace('(memory (export "memory") 1)', '(memory (export "memory") 2)').replace('(i32.const 3)', '(i32.const 4)'));
    expect(reasons.map((r) => r.code).sort()).toEqual(['DATA_CHANGED', 'MEMORY_CHANGED']);
  });

  it('refuses a change to a function the baseline does not make patchable when a way in bypasses its callers', async () => {
    const old = await watToWasm(`(module ${OLD})`);
    // Reached only by direct calls: carried through its caller (test/diff-callers.test.ts).
    const helper = await diffBuilds(old, await watToWasm(`(module ${edit('(i32.const 3)', '(i32.const 4)')})`), { baseline: (await prepare(old, { exclude: '^helper$' })).bytes, id: 'p' });
    expect(helper).toMatchObject({ hotpatchable: true, changed: ['run'], throughCallers: [expect.objectContaining({ function: 'helper', callers: ['run'] })] });
    // In the table and called by the exported, unpatchable run: both bypass any caller a patch could replace.
    const baseline = await prepare(old, { exclude: '^(inc|run)$' });
    const result = await diffBuilds(old, await watToWasm(`(module ${edit('(i32.const 1)))', '(i32.const 2)))')})`), { baseline: baseline.bytes, id: 'p' });
    expect(result).toMatchObject({
      hotpatchable: false,
      reasons: [
        expect.objectContaining({ code: 'NOT_PATCHABLE', item: 'inc', message: expect.stringContaining('in element segment 0') }),
        expect.objectContaining({ code: 'NOT_PATCHABLE', item: 'run', message: expect.stringContaining('which calls the changed `inc`, is not patchable in this baseline (excluded by --exclude') }),
      ],
    });
  });

  it("refuses a wrong pairing: the old build must be the baseline's source", async () => {
    const old = await watToWasm(`(module ${OLD})`);
    const other = await watToWasm(`(module ${edit('(i32.const 3)', '(i32.const 4)')})`);
    const baseline = await prepare(other);
    await expect(diffBuilds(old, other, { baseline: baseline.bytes, id: 'p' })).rejects.toMatchObject({ code: 'E_WRONG_BUILD' });
    await expect(diffBuilds(old, old, { baseline: (await prepare(old)).bytes, id: 'p' })).rejects.toMatchObject({ code: 'E_NOTHING_TO_PATCH' });
  });
});

async function refusedBackwards(oldSource: string): Promise<readonly DiffReason[]> {
  const result = await diff(OLD, oldSource);
  expect(result.hotpatchable).toBe(false);
  return (result as { reasons: readonly DiffReason[] }).reasons;
}

describe('statics in linear memory (C, clang + wasm-ld)', () => {
  const pair = async (name: string, flavour: '.relocs.wasm' | '.wasm') => {
    const old = wasmFixture(`diff/statics-old${flavour}`);
    return diffBuilds(old, wasmFixture(`diff/${name}${flavour}`), { baseline: (await prepare(old)).bytes, id: 'p' });
  };

  it('with -Wl,--emit-relocs: a code-only change is accepted and checked exactly', async () => {
    expect(await pair('statics-code-change', '.relocs.wasm')).toMatchObject({ hotpatchable: true, changed: ['hit'], exactStatics: true });
  });

  it('with -Wl,--emit-relocs: a new static is refused by name', async () => {
    expect(await pair('statics-added', '.relocs.wasm')).toMatchObject({ hotpatchable: false, reasons: [expect.objectContaining({ code: 'STATIC_ADDED', item: 'misses' })] });
  });

  it('with -Wl,--emit-relocs: a static moved under unchanged code is refused by name', async () => {
    const result = await pair('statics-moved', '.relocs.wasm');
    expect(result).toMatchObject({ hotpatchable: false });
    expect((result as { reasons: readonly DiffReason[] }).reasons).toContainEqual(expect.objectContaining({ code: 'STATIC_MOVED', item: 'hits' }));
  });

  it('without relocations: the same pairs are caught by their address constants', async () => {
    expect(await pair('statics-code-change', '.wasm')).toMatchObject({ hotpatchable: true, exactStatics: false });
    expect(await pair('statics-added', '.wasm')).toMatchObject({ hotpatchable: false, reasons: [expect.objectContaining({ code: 'ADDRESS_CONSTANTS_CHANGED', item: 'hit' })] });
    const moved = (await pair('statics-moved', '.wasm')) as { reasons: readonly DiffReason[] };
    expect(moved.reasons).toContainEqual(expect.objectContaining({ code: 'ADDRESS_CONSTANTS_CHANGED', item: 'reset' }));
  });
});
