import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildPatch, prepare, watToWasm } from 'wasm-hotpatch';
import { ThreadedGuest } from 'wasm-hotpatch/runtime';
import { fixture } from './helpers.js';

let withSafepoints: Uint8Array;
let withoutSafepoints: Uint8Array;
let patchFor: (baseline: Uint8Array, value: number, id: string) => Promise<Uint8Array>;
const open: ThreadedGuest[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

beforeAll(async () => {
  const wasm = await watToWasm(readFileSync(fixture('threads.wat'), 'utf8'));
  withSafepoints = (await prepare(wasm, { safepoints: { interval: 256 } })).bytes;
  withoutSafepoints = (await prepare(wasm)).bytes;
  patchFor = async (baseline, value, id) =>
    (await buildPatch({ wat: `(module (func (export "f") (param i32) (result i32) (i32.const ${value})))`, manifest: { id, sequence: 1, targets: [{ function: 'f', export: 'f' }] }, baseline })).bytes;
});

const start = async (baseline: Uint8Array, threads: number, run = 'work') => {
  const guest = await ThreadedGuest.start(baseline, { threads, memory: { module: 'env', name: 'memory', initial: 1, maximum: 1 }, run: { export: run } });
  open.push(guest);
  return guest;
};
/** What each thread's `f` returned last, read from the shared memory. */
const results = (guest: ThreadedGuest) => guest.threads.map((_, t) => Atomics.load(new Int32Array(guest.memory.buffer), t * 2));
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  return check();
};

describe('multi-threaded guests: one table per thread, per-thread transitions', () => {
  it('a transition completes when every thread has switched, while all of them call the function continuously', async () => {
    const guest = await start(withSafepoints, 3);
    expect(await until(() => results(guest).every((v) => v === 1))).toBe(true);
    const patch = await guest.load(await patchFor(withSafepoints, 7, 'seven'));
    const transition = guest.applyTransition(patch.id);
    const result = await transition.done;
    expect(result).toMatchObject({ complete: true, forced: false, threads: ['switched', 'switched', 'switched'] });
    expect(await until(() => results(guest).every((v) => v === 7))).toBe(true);
    expect((await guest.status()).threads.map((s) => s.functions.map((f) => f.patch))).toEqual([['seven'], ['seven'], ['seven']]);
    await guest.revertTransition(patch.id).done;
    expect(await until(() => results(guest).every((v) => v === 1))).toBe(true);
  });

  it('threads busy in loops without safepoints are reached by interrupts: the transition completes', async () => {
    const guest = await start(withoutSafepoints, 2);
    expect(await until(() => results(guest).every((v) => v === 1))).toBe(true);
    const patch = await guest.load(await patchFor(withoutSafepoints, 7, 'seven'));
    expect(await guest.applyTransition(patch.id).done).toMatchObject({ complete: true, threads: ['switched', 'switched'] });
    expect(await until(() => results(guest).every((v) => v === 7))).toBe(true);
  });

  it('threads busy in a loop without safepoints or interrupts cannot answer: a timeout, not a hang', async () => {
    const guest = await ThreadedGuest.start(withoutSafepoints, {
      threads: 2,
      memory: { module: 'env', name: 'memory', initial: 1, maximum: 1 },
      run: { export: 'stuck' },
      timeout: 200,
      interrupts: false,
    });
    open.push(guest);
    const answer = await guest.threads[0]!.status().then(
      () => undefined,
      (e) => e,
    );
    expect(answer).toMatchObject({ code: 'E_TIMEOUT' });
  });

  it('a transition through threads where one is stuck: timeout, then cancel reverses the switched ones, or force stops waiting', async () => {
    // Two threads with safepoints, loaded first; then one is replaced by a stuck export. Without
    // interrupts: a call that never returns inside one would hold the worker's later messages.
    const guest = await ThreadedGuest.start(withSafepoints, { threads: 2, memory: { module: 'env', name: 'memory', initial: 1, maximum: 1 }, run: { export: 'work' }, interrupts: false });
    open.push(guest);
    const patch = await guest.load(await patchFor(withSafepoints, 9, 'nine'));
    // Make thread 1 unable to answer: call its `stuck` export at a safepoint (it never returns).
    void guest.threads[1]!.call('stuck', 1).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    const transition = guest.applyTransition(patch.id, { timeout: 200 });
    await expect(transition.done).rejects.toMatchObject({ code: 'E_TRANSITION_TIMEOUT', message: expect.stringContaining('thread 1 (pending)') });
    expect(transition.threads).toEqual(['switched', 'pending']);
    await expect(guest.cancel(transition)).resolves.toMatchObject({ threads: ['switched-back', 'pending'], complete: false });
    expect(transition.threads).toEqual(['switched-back', 'pending']); // not 'switched': it runs the old code again
    expect((await guest.threads[0]!.status()).functions).toEqual([]); // thread 0 switched back
    const again = guest.applyTransition(patch.id, { timeout: 200 });
    again.force();
    await expect(again.done).resolves.toMatchObject({ complete: false, forced: true });
  });

  it('a thread that exits mid-transition leaves a clear status, not a hang', async () => {
    const guest = await start(withSafepoints, 2);
    const patch = await guest.load(await patchFor(withSafepoints, 4, 'four'));
    await guest.threads[1]!.worker.terminate();
    const transition = guest.applyTransition(patch.id, { timeout: 30_000 });
    // Fails at once (not at the timeout): the exited thread's request rejects with E_GUEST_EXITED.
    await expect(transition.done).rejects.toMatchObject({ code: 'E_TRANSITION_FAILED', message: expect.stringContaining('thread 1 (E_GUEST_EXITED)') });
    expect(transition.threads).toEqual(['switched', 'failed']);
    expect(transition.errors[1]).toMatchObject({ code: 'E_GUEST_EXITED' });
    expect(guest.threads[1]!.state).toBe('exited');
  });

  it('a thread that traps mid-transition leaves a clear status, not a hang', async () => {
    const guest = await start(withSafepoints, 2);
    const trap = (await buildPatch({ wat: '(module (func (export "f") (param i32) (result i32) (unreachable)))', manifest: { id: 'trap', sequence: 1, targets: [{ function: 'f', export: 'f' }] }, baseline: withSafepoints })).bytes;
    const patch = await guest.load(trap);
    const result = await guest.applyTransition(patch.id).done;
    expect(result.complete).toBe(true);
    expect(await until(() => guest.threads.every((t) => t.state === 'trapped'))).toBe(true);
    // Trapped threads are idle: their patch level still answers.
    expect((await guest.status()).threads.map((s) => s.patches.map((p) => p.state))).toEqual([['applied'], ['applied']]);
  });

  it('apply through the contract: a thread that refuses undoes the threads that switched, and the guest answers as one guest would', async () => {
    const guest = await start(withSafepoints, 2);
    const patch = await guest.load(await patchFor(withSafepoints, 5, 'five'));
    const applied = await guest.apply(patch.id);
    expect(applied).toMatchObject({ id: 'five', state: 'applied', transition: { complete: true } });
    expect(applied.commit).toBe(applied.transition.commit);
    expect((await guest.status()).consistent).toBe(true);
    await expect(guest.apply(patch.id)).rejects.toMatchObject({ code: 'E_ALREADY_APPLIED' }); // every thread says so
    await guest.revert(patch.id);
    // Thread 1 has forgotten the patch: thread 0 switches, thread 1 refuses, thread 0 is switched back.
    await guest.threads[1]!.unload(patch.id);
    await expect(guest.apply(patch.id)).rejects.toMatchObject({ code: 'E_TRANSITION_FAILED', message: expect.stringContaining('thread 1 (E_UNKNOWN_PATCH)') });
    const status = await guest.status();
    expect(status.threads.map((s) => s.functions)).toEqual([[], []]);
    expect(await until(() => results(guest).every((v) => v === 1))).toBe(true);
  });
});
