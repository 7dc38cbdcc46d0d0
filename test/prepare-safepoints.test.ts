import { describe, expect, it } from 'vitest';
import { watToWasm } from '../src/build/wat.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { digest, outcome, watFixture } from './helpers.js';

const LOOP = `(module
  (memory (export "memory") 1)
  (func $step (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const 3)) (i32.const 1)))
  (func (export "spin") (param $n i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (call $step (local.get $acc)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func $rec (export "rec") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (i32.add (i32.const 1) (call $rec (i32.sub (local.get 0) (i32.const 1))))))))`;

describe('safepoints', () => {
  it('call the poll handler every `interval` loop iterations, and change nothing else', async () => {
    const wasm = await watToWasm(LOOP);
    const baseline = await prepare(wasm, { safepoints: { interval: 100 } });
    expect(baseline.manifest.safepoints).toMatchObject({ loops: true, entries: false, interval: 128 }); // rounded up to a power of two
    const guest = await Guest.instantiate(baseline.bytes);
    let polls = 0;
    guest.setSafepointHandler(() => polls++);
    const plain = (await WebAssembly.instantiate(wasm as BufferSource)).instance.exports as Record<string, any>;
    expect((guest.exports as any).spin(10_000)).toBe(plain.spin(10_000));
    expect(polls).toBe(78); // 10,000 iterations + the exit check: 10,001 polls, every 128th calls out
    expect((guest.exports as any).rec(50)).toBe(50);
    expect(polls).toBe(78); // no loops in rec: no polls
  });

  it('at function entries too, when asked', async () => {
    const baseline = await prepare(await watToWasm(LOOP), { safepoints: { loops: false, entries: true, interval: 16 } });
    const guest = await Guest.instantiate(baseline.bytes);
    let polls = 0;
    guest.setSafepointHandler(() => polls++);
    (guest.exports as any).rec(99); // 100 entries of rec
    expect(polls).toBe(6);
  });

  it('a patch applied from inside the poll handler takes effect in the loop that is running', async () => {
    const baseline = await prepare(await watToWasm(LOOP), { safepoints: { interval: 10 } });
    const guest = await Guest.instantiate(baseline.bytes);
    let polls = 0;
    guest.setSafepointHandler(() => {
      if (++polls === 5) guest.applyFunctions({ step: () => 7 });
    });
    // After 50 iterations step returns 7: the loop's result is 7 whatever came before.
    expect((guest.exports as any).spin(1000)).toBe(7);
  });

  it('preserves behaviour on every feature, with both dispatch designs', async () => {
    const original = await watFixture('features.wat');
    for (const dispatch of ['entry', 'indirect'] as const) {
      const baseline = await prepare(original, { dispatch, safepoints: { loops: true, entries: true, interval: 3 } });
      const imports = () => ({ env: { host_add: (a: number, b: number) => a + b, imported_global: new WebAssembly.Global({ value: 'i32' }, 41) } });
      const a = (await WebAssembly.instantiate(original as BufferSource, imports())).instance.exports as Record<string, any>;
      const guest = await Guest.instantiate(baseline.bytes, imports());
      let polls = 0;
      guest.setSafepointHandler(() => polls++);
      const b = guest.exports as Record<string, any>;
      for (const [name, ...args] of [
        ['count_down', 1000, 1],
        ['deep', 500],
        ['simd_sum', 64],
        ['catching', 50],
        ['div', 1, 0],
      ] as [string, ...unknown[]][]) {
        expect(outcome(() => b[name](...args))).toEqual(outcome(() => a[name](...args)));
      }
      expect(digest(b.memory.buffer)).toBe(digest(a.memory.buffer));
      expect(polls).toBeGreaterThan(100);
    }
  });

  it('refuses bad options, and a guest without safepoints has no handler to set', async () => {
    const wasm = await watToWasm(LOOP);
    await expect(prepare(wasm, { safepoints: { interval: 0 } })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    await expect(prepare(wasm, { safepoints: { interval: 2 ** 31 } })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    await expect(prepare(wasm, { safepoints: { loops: false } })).rejects.toMatchObject({ code: 'E_BAD_OPTIONS' });
    const guest = await Guest.instantiate((await prepare(wasm)).bytes);
    expect(() => guest.setSafepointHandler(() => {})).toThrowError(expect.objectContaining({ code: 'E_NOT_A_BASELINE' }));
  });
});
