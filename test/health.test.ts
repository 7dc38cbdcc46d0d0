import { beforeAll, describe, expect, it } from 'vitest';
// One copy of every class: the built package, as the worker guest below needs it.
import { buildPatch, Guest, prepare, type Baseline, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';

// A guest with a canary word it owns at 0 and a counter at 16; `healthy` checks the canary.
const GUEST = `(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\\2a\\00\\00\\00")
  (func $step (export "step") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $check (export "check") (param i32) (result i32) (if (i32.gt_s (local.get 0) (i32.const 1000)) (then unreachable)) (local.get 0))
  (func (export "run") (param i32) (result i32) (i32.store (i32.const 16) (call $step (local.get 0))) (i32.load (i32.const 16)))
  (func (export "healthy") (result i32) (i32.eq (i32.load (i32.const 0)) (i32.const 42)))
  (func (export "step_ok") (result i32) (i32.eq (call $step (i32.const 5)) (i32.const 6))))`;

let baseline: Baseline;
beforeAll(async () => {
  baseline = await prepare(await watToWasm(GUEST));
});
const patch = async (id: string, body: string, target = 'step') =>
  (await buildPatch({ wat: `(module (import "baseline" "memory" (memory 1)) (import "live" "check" (func $check (param i32) (result i32))) ${body})`, manifest: { id, sequence: 1, targets: [{ function: target, export: 'f' }] }, baseline: baseline.bytes })).bytes;

describe('health watch and automatic rollback', () => {
  it('a failing probe rolls the patch back at once, with the reason', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const events: string[] = [];
    guest.addEventListener('rolled-back', (ev: any) => events.push(ev.patch));
    const p = await guest.load(await patch('doubler', '(func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))'));
    expect(() => guest.apply(p, { probe: () => e.run(5) === 6 })).toThrowError(expect.objectContaining({ code: 'E_ROLLED_BACK' }));
    expect(p.state).toBe('rolled-back');
    expect(e.run(5)).toBe(6);
    expect(guest.status().patches[0]).toMatchObject({ id: 'doubler', state: 'rolled-back', rollback: { reason: 'the probe answered false' } });
    expect(events).toEqual(['doubler']);
  });

  it('a patch that corrupts memory it does not own is caught by a probe export and rolled back', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const p = await guest.load(await patch('scribbler', '(func (export "f") (param i32) (result i32) (i32.store (i32.const 0) (i32.const 7)) (i32.add (local.get 0) (i32.const 1)))'));
    // The probe exercises the patch, then asks the guest whether its canary is intact.
    expect(() => guest.apply(p, { probe: () => (e.run(1), e.healthy()) })).toThrowError(expect.objectContaining({ code: 'E_ROLLED_BACK', message: expect.stringContaining('answered 0') }));
    expect(guest.status().functions).toEqual([]);
  });

  it('a trapping patch is rolled back at its first trap; the guest keeps running the original', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const p = await guest.load(await patch('trapper', '(func (export "f") (param i32) (result i32) (if (i32.eq (local.get 0) (i32.const 3)) (then unreachable)) (i32.add (local.get 0) (i32.const 10)))'));
    guest.apply(p, { watch: { traps: 1 } });
    expect(e.run(1)).toBe(11);
    expect(() => e.run(3)).toThrow('unreachable'); // the call that trapped still fails…
    expect(p.state).toBe('rolled-back'); // …but the patch is out before the trap reaches the host
    expect(e.run(3)).toBe(4);
    expect(p.rollback).toMatchObject({ reason: expect.stringContaining('1 trap in its code'), evidence: expect.stringContaining('hotpatch:trapper') });
  });

  it('a trap in baseline code the patch calls is not blamed on the patch', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const p = await guest.load(await patch('caller', '(func (export "f") (param i32) (result i32) (call $check (local.get 0)))'));
    guest.apply(p, { watch: { traps: 1 } });
    expect(() => e.run(5000)).toThrow('unreachable'); // the trap is in the baseline's `check`
    expect(p.state).toBe('applied');
    expect(e.run(5)).toBe(5);
  });

  it('a patch whose pre-apply hook traps ends rolled back, with nothing switched', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const bytes = (await buildPatch({ wat: '(module (func (export "f") (param i32) (result i32) (i32.const 0)) (func (export "hotpatch_pre_apply") (result i32) unreachable))', manifest: { id: 'broken', sequence: 1, targets: [{ function: 'step', export: 'f' }] }, baseline: baseline.bytes })).bytes;
    const p = await guest.load(bytes);
    expect(() => guest.apply(p)).toThrowError(expect.objectContaining({ code: 'E_HOOK_TRAPPED' }));
    expect(p.state).toBe('rolled-back');
    expect(guest.status().patches[0]!.rollback!.reason).toMatch(/pre-apply hook trapped/);
    expect(e.run(5)).toBe(6);
  });

  it('the watch ends after its call budget: later traps are for the host to handle', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, any>;
    const p = await guest.load(await patch('late', '(func (export "f") (param i32) (result i32) (if (i32.eq (local.get 0) (i32.const 3)) (then unreachable)) (local.get 0))'));
    guest.apply(p, { watch: { traps: 1, calls: 2 } });
    e.run(1);
    e.run(1);
    e.run(1);
    expect(() => e.run(3)).toThrow('unreachable');
    expect(p.state).toBe('applied');
  });
});

describe('health watch in a worker guest', () => {
  it('a failing probe export rolls the patch back in the guest\'s thread, and the host hears E_ROLLED_BACK', async () => {
    await using guest = await WorkerGuest.start(baseline.bytes);
    const p = await guest.load(await patch('doubler', '(func (export "f") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))'));
    await expect(guest.apply(p.id, { probe: 'step_ok' })).rejects.toMatchObject({ code: 'E_ROLLED_BACK', message: expect.stringContaining('answered 0') });
    expect(await guest.call('run', 5)).toBe(6);
    expect((await guest.status()).patches[0]).toMatchObject({ id: 'doubler', state: 'rolled-back' });
  });

  it('a watched patch that traps is rolled back at its first trap, and the host gets a rolled-back event', async () => {
    await using guest = await WorkerGuest.start(baseline.bytes);
    const rolledBack = new Promise<string>((resolve) => guest.addEventListener('rolled-back', (e) => resolve((e as unknown as { patch: string }).patch), { once: true }));
    const p = await guest.load(await patch('trapper', '(func (export "f") (param i32) (result i32) (if (i32.eq (local.get 0) (i32.const 3)) (then unreachable)) (i32.add (local.get 0) (i32.const 10)))'));
    await guest.apply(p.id, { watch: { traps: 1 } });
    expect(await guest.call('run', 1)).toBe(11);
    await expect(guest.call('run', 3)).rejects.toThrow('unreachable');
    expect(await rolledBack).toBe('trapper');
    expect(await guest.call('run', 3)).toBe(4);
    expect((await guest.status()).patches[0]).toMatchObject({ state: 'rolled-back', rollback: { reason: expect.stringContaining('1 trap in its code') } });
  });
});
