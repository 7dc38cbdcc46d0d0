import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { Guest } from '../src/engine/index.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';
import { watFixture } from './helpers.js';

const imports = { env: { log: () => {} } };

/** A patch module in WAT for calls.wat's baseline. */
async function patch(baseline: Baseline, id: string, targets: Record<string, string>, body: string, extra: Record<string, unknown> = {}) {
  const { bytes } = await buildPatch({
    wat: `(module ${body})`,
    manifest: { id, sequence: 1, targets: Object.entries(targets).map(([fn, exp]) => ({ function: fn, export: exp })), ...extra },
    baseline: baseline.bytes,
  });
  return bytes;
}

for (const dispatch of ['entry', 'indirect'] as const) {
  describe(`forward and reverse attach (${dispatch} dispatch)`, () => {
    let baseline: Baseline;
    beforeAll(async () => {
      baseline = await prepare(await watFixture('calls.wat'), { dispatch });
    });

    it('reaches the patch through direct calls, tail calls, the guest table, exports and ref.func', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      const tripled = await patch(baseline, 'triple', { double: 'triple' }, '(func (export "triple") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))');
      const squareToCube = await patch(baseline, 'cube', { square: 'cube' }, '(func (export "cube") (param i32) (result i32) (i32.mul (local.get 0) (i32.mul (local.get 0) (local.get 0))))');
      const before = { apply0: e.apply(0, 5), twice: e.twice(3), ref: e.ref()(4), fib: e.fib(10) };
      expect(before).toEqual({ apply0: 10, twice: 12, ref: 16, fib: 55 });
      guest.apply(await guest.load(tripled));
      guest.apply(await guest.load(squareToCube));
      expect({ apply0: e.apply(0, 5), twice: e.twice(3), ref: e.ref()(4), square: e.apply(1, 2) }).toEqual({ apply0: 15, twice: 27, ref: 64, square: 8 });
      guest.revert('triple');
      guest.revert('cube');
      expect({ apply0: e.apply(0, 5), twice: e.twice(3), ref: e.ref()(4), fib: e.fib(10) }).toEqual(before);
    });

    it('patches an exported recursive function: the host call and every recursive call reach the patch', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      // fib patched to count calls in its own global: recursion goes through the live entry.
      const bytes = await patch(
        baseline,
        'fib-counting',
        { fib: 'fib' },
        `(import "live" "fib" (func $fib (param i32) (result i32)))
         (global $calls (export "calls") (mut i32) (i32.const 0))
         (func (export "fib") (param $n i32) (result i32)
           (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
           (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
             (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))`,
      );
      const p = guest.apply(await guest.load(bytes));
      expect(e.fib(10)).toBe(55);
      expect((p.instance.exports.calls as WebAssembly.Global).value).toBe(177);
    });

    it('lets a replacement call the original implementation, and the original recursion come back to the patch', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      // Wrap fib: count entries, delegate to the original. The original's recursive calls come back here.
      const bytes = await patch(
        baseline,
        'fib-wrap',
        { fib: 'fib' },
        `(import "original" "fib" (func $orig (param i32) (result i32)))
         (global $calls (export "calls") (mut i32) (i32.const 0))
         (func (export "fib") (param i32) (result i32)
           (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
           (call $orig (local.get 0)))`,
      );
      const p = guest.apply(await guest.load(bytes));
      expect(e.fib(10)).toBe(55);
      // indirect dispatch rewrote the recursive call sites; entry dispatch diverts at entry: both reach the wrapper.
      expect((p.instance.exports.calls as WebAssembly.Global).value).toBe(177);
    });

    it('keeps the guest state across apply and revert, and a patch can use the baseline memory and globals', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      for (let i = 0; i < 5; i++) e.apply(0, i);
      new Uint8Array((e.memory as WebAssembly.Memory).buffer).set([1, 2, 3], 100);
      const bytes = await patch(
        baseline,
        'count-by-ten',
        { count: 'count' },
        `(import "baseline" "memory" (memory 1))
         (import "baseline" "global:0" (global $counter (mut i32)))
         (func (export "count") (result i32) (i32.add (i32.mul (global.get $counter) (i32.const 10)) (i32.load8_u (i32.const 101))))`,
      );
      guest.apply(await guest.load(bytes));
      expect(e.count()).toBe(52);
      e.apply(1, 2);
      expect(e.count()).toBe(62);
      guest.revert('count-by-ten');
      expect(e.count()).toBe(6);
      expect([...new Uint8Array((e.memory as WebAssembly.Memory).buffer, 100, 3)]).toEqual([1, 2, 3]);
    });

    it('stacks patches per function: the newest wins and reverting any one uncovers what is below it', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      const constant = (id: string, value: number) => patch(baseline, id, { double: 'f' }, `(func (export "f") (param i32) (result i32) (i32.const ${value}))`);
      const a = await guest.load(await constant('a', 100));
      const b = await guest.load(await constant('b', 200));
      const c = await guest.load(await constant('c', 300));
      guest.apply(a);
      guest.apply(b);
      guest.apply(c);
      expect(e.apply(0, 1)).toBe(300);
      guest.revert(b); // not the newest: nothing visible changes
      expect(e.apply(0, 1)).toBe(300);
      guest.revert(c);
      expect(e.apply(0, 1)).toBe(100);
      guest.apply(b);
      expect(e.apply(0, 1)).toBe(200);
      expect(guest.status().functions).toEqual([{ function: 'double', index: 2, slot: 1, patch: 'b', stack: ['a', 'b'] }]);
      guest.revert(a);
      guest.revert(b);
      expect(e.apply(0, 1)).toBe(2);
      expect(guest.status().functions).toEqual([]);
    });

    it('applies a cumulative patch over earlier ones and refuses an older sequence unless forced', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      const p1 = await guest.load(await patch(baseline, 'p1', { double: 'f' }, '(func (export "f") (param i32) (result i32) (i32.const 1))', { sequence: 1 }));
      const p2 = await guest.load(await patch(baseline, 'p2', { square: 'f' }, '(func (export "f") (param i32) (result i32) (i32.const 2))', { sequence: 2 }));
      guest.apply(p1);
      guest.apply(p2);
      const cumulative = await guest.load(await patch(baseline, 'q3', { double: 'f' }, '(func (export "f") (param i32) (result i32) (i32.const 3))', { sequence: 3, cumulative: true }));
      guest.apply(cumulative);
      expect([e.apply(0, 9), e.apply(1, 9)]).toEqual([3, 81]); // square back to the original
      expect(guest.status().patches.map((p) => [p.id, p.state, p.replacedBy])).toEqual([
        ['p1', 'replaced', 'q3'],
        ['p2', 'replaced', 'q3'],
        ['q3', 'applied', undefined],
      ]);
      expect(() => guest.apply(p1)).toThrowError(expect.objectContaining({ code: 'E_DOWNGRADE' }));
      expect([e.apply(0, 9), e.apply(1, 9)]).toEqual([3, 81]);
      guest.apply(p2, { force: true });
      expect([e.apply(0, 9), e.apply(1, 9)]).toEqual([3, 2]);
      guest.revert('q3');
      expect([e.apply(0, 9), e.apply(1, 9)]).toEqual([18, 2]);
    });

    it('runs lifecycle hooks, and a pre-apply veto or trap changes nothing', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const e = guest.exports as Record<string, any>;
      const hooked = (id: string, pre: string) =>
        patch(
          baseline,
          id,
          { double: 'f' },
          `(global $log (export "log") (mut i32) (i32.const 0))
           (func $mark (param i32) (global.set $log (i32.add (i32.mul (global.get $log) (i32.const 10)) (local.get 0))))
           (func (export "f") (param i32) (result i32) (i32.const 7))
           (func (export "hotpatch_pre_apply") (result i32) ${pre})
           (func (export "hotpatch_post_apply") (call $mark (i32.const 2)))
           (func (export "hotpatch_pre_revert") (call $mark (i32.const 3)))
           (func (export "hotpatch_post_revert") (call $mark (i32.const 4)))`,
        );
      const ok = await guest.load(await hooked('ok', '(call $mark (i32.const 1)) (i32.const 0)'));
      guest.apply(ok);
      expect(e.apply(0, 1)).toBe(7);
      guest.revert(ok);
      expect((ok.instance.exports.log as WebAssembly.Global).value).toBe(1234);

      const veto = await guest.load(await hooked('veto', '(i32.const 1)'));
      expect(() => guest.apply(veto)).toThrowError(expect.objectContaining({ code: 'E_VETOED' }));
      const trap = await guest.load(await hooked('trap', '(unreachable)'));
      expect(() => guest.apply(trap)).toThrowError(expect.objectContaining({ code: 'E_HOOK_TRAPPED' }));
      expect(e.apply(0, 1)).toBe(2);
      expect(veto.state).toBe('loaded');
      expect(guest.status().functions).toEqual([]);
    });

    it('reports status and dispatches events with durations', async () => {
      const guest = await Guest.instantiate(baseline.bytes, imports);
      const events: { type: string; patch?: string; commit?: number }[] = [];
      for (const type of ['loaded', 'applied', 'reverted', 'rejected']) {
        guest.addEventListener(type, (ev: any) => events.push({ type: ev.type, patch: ev.patch, commit: ev.commit }));
      }
      const p = await guest.load(await patch(baseline, 'x', { double: 'f' }, '(func (export "f") (param i32) (result i32) (i32.const 0))', { description: 'zero' }));
      guest.apply(p);
      await guest.load(new Uint8Array([1, 2, 3])).catch(() => {});
      guest.revert(p);
      expect(events.map((e) => [e.type, e.patch])).toEqual([
        ['loaded', 'x'],
        ['applied', 'x'],
        ['rejected', undefined],
        ['reverted', 'x'],
      ]);
      expect(events[1]!.commit).toBeGreaterThanOrEqual(0);
      const status = guest.status();
      expect(status.baseline).toBe(baseline.manifest.id);
      expect(status.patches[0]).toMatchObject({ id: 'x', description: 'zero', state: 'reverted', targets: ['double'] });
      expect(Date.parse(status.patches[0]!.revertedAt!)).toBeGreaterThan(0);
    });
  });
}
