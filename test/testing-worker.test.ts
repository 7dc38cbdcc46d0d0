import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { prepare, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';
import { countCallsInWorker, failInWorker, replaceInWorker } from 'wasm-hotpatch/testing';
import { fixture } from './helpers.js';

let baseline: Uint8Array;
const open: WorkerGuest[] = [];
beforeAll(async () => {
  baseline = (await prepare(await watToWasm(readFileSync(fixture('service-loop.wat'), 'utf8')), { safepoints: { interval: 256 } })).bytes;
});
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});
const busy = async () => {
  const guest = await WorkerGuest.start(baseline, { imports: fixture('service-loop-imports.mjs'), run: { export: 'serve', args: [-1] } });
  open.push(guest);
  return guest;
};
/** The loop's next requests use what is in place now: ask until one has. */
const settle = async (guest: WorkerGuest, want: number) => {
  for (let i = 0; i < 1000 && (await guest.call('version')) !== want; i++);
  return guest.call('version');
};

describe('testing helpers on a guest in a worker (replacements are Wasm)', () => {
  it('replaceInWorker swaps in a Wasm function while the guest loops, and restores it', async () => {
    const guest = await busy();
    const stub = await replaceInWorker(guest, 'handle', { wat: '(module (func (export "replacement") (param i32) (result i32) (i32.const 5)))' });
    expect(await settle(guest, 5)).toBe(5);
    await stub.restore();
    expect(await settle(guest, 1)).toBe(1);
    expect((await guest.status()).patches).toEqual([]);
  });

  it('failInWorker returns a constant for the next N calls, then the original runs again', async () => {
    const guest = await busy();
    const fault = await failInWorker(guest, 'handle', { returns: 9, times: 3 });
    for (let i = 0; i < 2000 && (await fault.injected()) < 3; i++) await guest.call('version');
    expect(await fault.injected()).toBe(3);
    expect(await settle(guest, 1)).toBe(1);
    await fault.restore();
  });

  it('countCallsInWorker counts calls while the original keeps running; a trap fault is reported', async () => {
    const guest = await busy();
    const counter = await countCallsInWorker(guest, 'handle');
    const first = await counter.count();
    let later = first;
    for (let i = 0; i < 1000 && later === first; i++) later = await counter.count(); // reads can share a safepoint
    expect(later).toBeGreaterThan(first);
    expect(await settle(guest, 1)).toBe(1);
    await counter.restore();
    const trapped = new Promise((resolve) => guest.addEventListener('trapped', resolve, { once: true }));
    await failInWorker(guest, 'handle', { trap: true, times: 1 });
    await trapped;
    expect(guest.state).toBe('trapped');
  });

  it('checks signatures: a replacement of the wrong type is rejected in the host before it reaches the guest', async () => {
    const guest = await busy();
    await expect(replaceInWorker(guest, 'handle', { wat: '(module (func (export "replacement") (param i64) (result i32) (i32.const 5)))' })).rejects.toMatchObject({
      code: 'E_PATCH_REJECTED',
      problems: [expect.objectContaining({ code: 'E_SIGNATURE_MISMATCH' })],
    });
  });
});
