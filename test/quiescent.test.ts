import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildPatch, Guest, prepare, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';
import { fixture, outcome, watFixture } from './helpers.js';

const open: WorkerGuest[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

// Version 2 of f1 and f2, together: f1 now expects f2 == 2.
const PATCH = `(module
  (import "baseline" "global:0" (global $mixed (mut i32)))
  (func $f2 (export "f2") (result i32) (i32.const 2))
  (func (export "f1") (local $i i32)
    (loop $l
      (if (i32.ne (call $f2) (i32.const 2)) (then (global.set $mixed (i32.add (global.get $mixed) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))))`;

let pairs: Uint8Array;
beforeAll(async () => {
  pairs = await watToWasm(readFileSync(fixture('pairs.wat'), 'utf8'));
});

async function pairPatch(baseline: Uint8Array) {
  return (
    await buildPatch({
      wat: PATCH,
      manifest: {
        id: 'v2',
        sequence: 1,
        targets: [
          { function: 'f1', export: 'f1' },
          { function: 'f2', export: 'f2' },
        ],
      },
      baseline,
    })
  ).bytes;
}

describe('quiescent consistency', () => {
  it('changes no behaviour, exceptions included, with both dispatch designs', async () => {
    const original = await watFixture('features.wat');
    const imports = () => ({ env: { host_add: (a: number, b: number) => a + b, imported_global: new WebAssembly.Global({ value: 'i32' }, 41) } });
    for (const dispatch of ['entry', 'indirect'] as const) {
      const baseline = await prepare(original, { dispatch, consistency: 'quiescent' });
      expect(baseline.manifest).toMatchObject({ consistency: 'quiescent', active: 'hotpatch.active' });
      const a = (await WebAssembly.instantiate(original as BufferSource, imports())).instance.exports as Record<string, any>;
      const b = (await WebAssembly.instantiate(baseline.bytes as BufferSource, imports())).instance.exports as Record<string, any>;
      for (const [name, ...args] of [
        ['catching', 5],
        ['catching', 50],
        ['count_down', 100, 1],
        ['tail_indirect', 4],
        ['divmod', 17, 5],
        ['deep', 300],
        ['table_ops', 3],
      ] as [string, ...unknown[]][]) {
        expect(outcome(() => b[name](...args))).toEqual(outcome(() => a[name](...args)));
      }
      // Every activation was counted out again: returns, tail calls, exceptions caught up the stack.
      const slots = baseline.manifest.slots;
      expect(Array.from({ length: slots }, (_, s) => b['hotpatch.active'](s)).every((n: number) => n === 0)).toBe(true);
    }
  });

  it('refuses to apply while a target runs in this thread, and changes nothing; whileActive overrides', async () => {
    const wasm = await watToWasm(`(module (import "env" "hook" (func $hook))
      (func $work (export "work") (param i32) (result i32) (call $hook) (i32.add (local.get 0) (i32.const 1))))`);
    const baseline = await prepare(wasm, { consistency: 'quiescent' });
    const patch = (
      await buildPatch({
        wat: '(module (func (export "w") (param i32) (result i32) (i32.const 0)))',
        manifest: { id: 'w', sequence: 1, targets: [{ function: 'work', export: 'w' }] },
        baseline: baseline.bytes,
      })
    ).bytes;
    let guest!: Guest;
    let attempt: unknown;
    guest = await Guest.instantiate(baseline.bytes, {
      env: {
        hook: () => {
          try {
            guest.apply('w');
          } catch (error) {
            attempt = error;
          }
        },
      },
    });
    await guest.load(patch);
    expect((guest.exports as any).work(1)).toBe(2);
    expect(attempt).toMatchObject({ code: 'E_ACTIVE', message: expect.stringContaining('"work" is running') });
    expect(guest.status().functions).toEqual([]);
    guest.apply('w'); // between calls nothing runs: it applies
    expect((guest.exports as any).work(1)).toBe(0);
  });

  it('a patch of two functions never mixes old and new in one call chain; next-call consistency does', async () => {
    const run = async (consistency: 'next-call' | 'quiescent', reach: 'safepoints' | 'interrupts' = 'safepoints') => {
      const baseline = (await prepare(pairs, { consistency, ...(reach === 'safepoints' ? { safepoints: { interval: 256 } } : {}) })).bytes;
      const guest = await WorkerGuest.start(baseline, { run: { export: 'serve' }, interrupts: reach === 'interrupts' });
      open.push(guest);
      const patch = await guest.load(await pairPatch(baseline));
      await guest.apply(patch.id);
      const rounds = (await guest.call('rounds')) as number;
      while (((await guest.call('rounds')) as number) < rounds + 20);
      return (await guest.call('mixed')) as number;
    };
    expect(await run('quiescent')).toBe(0);
    // Interrupts land where the guest spends its time, nearly always inside f1: the apply waits for
    // one that does not, and may run out of time (nothing changed), but never mixes.
    expect(await run('quiescent', 'interrupts').catch((e) => e.code)).toBeOneOf([0, 'E_QUIESCENCE_TIMEOUT']);
    expect(await run('next-call')).toBeGreaterThan(0); // applied mid-f1: the old f1 met the new f2
  });

  it('times out with nothing changed when a target never stops running; whileActive applies anyway', async () => {
    const baseline = (await prepare(pairs, { consistency: 'quiescent', safepoints: { interval: 256 } })).bytes;
    const guest = await WorkerGuest.start(baseline, { run: { export: 'serve_forever' }, interrupts: false });
    open.push(guest);
    const loaded = await guest.load(
      (await buildPatch({ wat: '(module (func (export "f")))', manifest: { id: 'stop', sequence: 1, targets: [{ function: 'f1_forever', export: 'f' }] }, baseline })).bytes,
    );
    await expect(guest.apply(loaded.id, { quiesceTimeout: 150 })).rejects.toMatchObject({ code: 'E_QUIESCENCE_TIMEOUT', message: expect.stringContaining('"f1_forever" is running') });
    expect((await guest.status()).functions).toEqual([]);
    await expect(guest.apply(loaded.id, { whileActive: true })).resolves.toMatchObject({ state: 'applied' });
    expect(guest.lastServed?.servedAt).toBe('safepoint');
    expect((await guest.status()).functions).toEqual([expect.objectContaining({ function: 'f1_forever', patch: 'stop' })]);
  });
});
