import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { Guest } from '../src/engine/index.js';
import { prepare, type PrepareOptions } from '../src/prepare/prepare.js';
import { outcome, watFixture } from './helpers.js';

// A million steps: far past what a growing stack survives (V8 overflows near 10^5 Wasm frames).
const N = 1_000_000;

/** Every way into the tail-recursive code of tailcalls.wat, each a million steps deep. */
const CALLS: [name: string, ...args: unknown[]][] = [
  ['sum', N, 0n],
  ['sum_indirect', N, 0n],
  ['even', N, 0n],
  ['even', N + 1, 5n],
  ['via_table', 0, N, 0n],
  ['via_table', 1, N, 0n],
  ['via_table', 3, N, 1n],
];

const run = (exports: Record<string, any>) =>
  CALLS.map(([name, ...args]) => ({ call: `${name}(${args.join(', ')})`, ...(outcome(() => exports[name](...args)) as { value?: unknown; trap?: string }) }));

const STEP = '(type $step (func (param i32 i64) (result i64)))';
const COUNT = '(global $n (export "n") (mut i32) (i32.const 0)) (func $count (global.set $n (i32.add (global.get $n) (i32.const 1))))';

/** Replacements that count each entry and tail-call the original: its own tail calls come back here. */
const WRAP = `(module ${STEP}
  (import "original" "sum" (func $sum (type $step)))
  (import "original" "sum_indirect" (func $si (type $step)))
  (import "original" "odd" (func $odd (type $step)))
  ${COUNT}
  (func (export "sum") (type $step) (call $count) (return_call $sum (local.get 0) (local.get 1)))
  (func (export "si") (type $step) (call $count) (return_call $si (local.get 0) (local.get 1)))
  (func (export "odd") (type $step) (call $count) (return_call $odd (local.get 0) (local.get 1))))`;

/** Tail-recursive replacements of their own, recursing through the baseline's live entries. */
const OWN = `(module ${STEP}
  (import "live" "sum" (func $sum (type $step)))
  (import "live" "even" (func $even (type $step)))
  ${COUNT}
  (func (export "sum") (type $step)
    (call $count)
    (if (i32.eqz (local.get 0)) (then (return (local.get 1))))
    (return_call $sum (i32.sub (local.get 0) (i32.const 1)) (i64.add (local.get 1) (i64.extend_i32_u (local.get 0)))))
  (func (export "odd") (type $step)
    (call $count)
    (if (i32.eqz (local.get 0)) (then (return (i64.mul (local.get 1) (i64.const 3)))))
    (return_call $even (i32.sub (local.get 0) (i32.const 1)) (i64.add (local.get 1) (i64.const 1)))))`;

// How many times each patch is entered by one run of CALLS: every step of the functions it replaces.
const WRAP_ENTRIES = N + 1 + (N + 1) + N / 2 + (N + 2) / 2 + (N + 1) + N / 2 + (N + 1);
const OWN_ENTRIES = N + 1 + N / 2 + (N + 2) / 2 + (N + 1) + N / 2;

const MODES: [label: string, options: PrepareOptions][] = [
  ['entry', { dispatch: 'entry' }],
  ['indirect', { dispatch: 'indirect' }],
  ['entry, quiescent', { dispatch: 'entry', consistency: 'quiescent' }],
  ['indirect, quiescent', { dispatch: 'indirect', consistency: 'quiescent' }],
  ['entry, safepoints', { dispatch: 'entry', safepoints: { loops: true, entries: true, interval: 16 } }],
  ['indirect, safepoints', { dispatch: 'indirect', safepoints: { loops: true, entries: true, interval: 16 } }],
];

describe('tail calls stay tail calls, a million deep', () => {
  let original: Uint8Array;
  let expected: ReturnType<typeof run>;
  beforeAll(async () => {
    original = await watFixture('tailcalls.wat');
    expected = run((await WebAssembly.instantiate(original as BufferSource)).instance.exports as Record<string, any>);
    // The reference itself reaches the bottom of every recursion: the comparison is not vacuous.
    expect(expected.every((r) => 'value' in r)).toBe(true);
  });

  for (const [label, options] of MODES) {
    it(`${label}: unpatched, patched with a wrapper of the original, patched with its own recursion, reverted`, async () => {
      const baseline = await prepare(original, options);
      const guest = await Guest.instantiate(baseline.bytes, {});
      const e = guest.exports as Record<string, any>;
      let polls = 0;
      if (options.safepoints) guest.setSafepointHandler(() => void polls++);
      expect(run(e)).toEqual(expected);
      // Safepoints poll at every entry, the tail-called ones included, without growing the stack.
      if (options.safepoints) expect(polls).toBeGreaterThan(N / 16);

      const load = async (id: string, wat: string, targets: Record<string, string>) =>
        guest.load((await buildPatch({ wat, manifest: { id, sequence: 1, targets: Object.entries(targets).map(([f, x]) => ({ function: f, export: x })) }, baseline: baseline.bytes })).bytes);

      const wrap = guest.apply(await load('wrap', WRAP, { sum: 'sum', sum_indirect: 'si', odd: 'odd' }));
      expect(run(e)).toEqual(expected);
      expect((wrap.instance.exports.n as WebAssembly.Global).value).toBe(WRAP_ENTRIES);
      // The original called from the host: its tail calls reach the wrapper, which tail-calls it back.
      expect(guest.original('sum')(N, 0n)).toBe(expected[0]!.value);
      guest.revert(wrap);

      const own = guest.apply(await load('own', OWN, { sum: 'sum', odd: 'odd' }));
      expect(run(e)).toEqual(expected);
      expect((own.instance.exports.n as WebAssembly.Global).value).toBe(OWN_ENTRIES);
      guest.revert(own);
      expect(run(e)).toEqual(expected);
      expect((own.instance.exports.n as WebAssembly.Global).value).toBe(OWN_ENTRIES);
    });
  }
});
