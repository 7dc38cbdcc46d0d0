import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
// The runtime spawns compiled workers: test it as it ships, from dist/ (npm test builds first).
import { buildPatch, prepare, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';
import { fixture as fixturePath } from './helpers.js';

let loop: Awaited<ReturnType<typeof prepare>>;
let loopNoSafepoints: Awaited<ReturnType<typeof prepare>>;
const imports = fixturePath('service-loop-imports.mjs');
const open: WorkerGuest[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

beforeAll(async () => {
  const wat = readFileSync(fixturePath('service-loop.wat'), 'utf8');
  loop = await prepare(await watToWasm(wat), { safepoints: { interval: 256 } });
  loopNoSafepoints = await prepare(await watToWasm(wat));
});

const handleV2 = async (baseline: Uint8Array, id = 'v2') =>
  (
    await buildPatch({
      wat: '(module (func (export "handle") (param i32) (result i32) (i32.const 2)))',
      manifest: { id, sequence: 1, targets: [{ function: 'handle', export: 'handle' }] },
      baseline,
    })
  ).bytes;

describe('a guest that never returns', () => {
  it('takes a patch at a safepoint while it loops forever, and the loop switches', async () => {
    const guest = await WorkerGuest.start(loop.bytes, { imports, run: { export: 'serve', args: [-1] }, interrupts: false });
    open.push(guest);
    const patch = await guest.load(await handleV2(loop.bytes));
    expect(guest.state).toBe('running');
    const applied = await guest.apply(patch.id);
    expect(applied.servedAt).toBe('safepoint');
    expect(applied.commit).toBeGreaterThanOrEqual(0);
    // The next request the loop handles uses the version now in place (a call may be served in the
    // same safepoint as the apply, before any request ran: ask until one has).
    const settle = async (want: number) => {
      for (let i = 0; i < 1000 && (await guest.call('version')) !== want; i++);
      return guest.call('version');
    };
    expect(await settle(2)).toBe(2);
    await guest.revert(patch.id);
    expect(await settle(1)).toBe(1);
    expect(guest.state).toBe('running');
  });

  it('loses no request and handles none twice across a thousand apply / revert cycles under load', async () => {
    const guest = await WorkerGuest.start(loop.bytes, { imports, run: { export: 'serve', args: [-1] } });
    open.push(guest);
    const patch = await guest.load(await handleV2(loop.bytes));
    const latencies: number[] = [];
    for (let i = 0; i < 1000; i++) {
      latencies.push((await guest.apply(patch.id)).duration);
      await guest.revert(patch.id);
    }
    const [count, sum] = (await guest.call('stats')) as [number, bigint]; // one call: one consistent snapshot
    expect(sum).toBe((BigInt(count) * BigInt(count - 1)) / 2n); // every request 0…count-1 exactly once
    expect(count).toBeGreaterThan(10_000);
    expect((await guest.call('handled_by_v2')) as number).toBeGreaterThan(0);
    expect(latencies.length).toBe(1000);
  });

  it('without safepoints or interrupts, a busy guest cannot answer: a clear timeout, not a hang', async () => {
    const guest = await WorkerGuest.start(loopNoSafepoints.bytes, { imports, run: { export: 'serve', args: [-1] }, timeout: 300, interrupts: false });
    open.push(guest);
    await expect(guest.status()).rejects.toMatchObject({ code: 'E_TIMEOUT', message: expect.stringContaining('safepoints') });
  });

  it('without safepoints, interrupts reach it: a patch lands while it loops forever, and no request is lost or handled twice', async () => {
    const guest = await WorkerGuest.start(loopNoSafepoints.bytes, { imports, run: { export: 'serve', args: [-1] }, interrupts: true });
    open.push(guest);
    const patch = await guest.load(await handleV2(loopNoSafepoints.bytes));
    const applied = await guest.apply(patch.id);
    expect(applied.servedAt).toBe('interrupt');
    for (let i = 0; i < 1000; i++) {
      await guest.revert(patch.id);
      await guest.apply(patch.id);
    }
    const [count, sum] = (await guest.call('stats')) as [number, bigint];
    expect(sum).toBe((BigInt(count) * BigInt(count - 1)) / 2n);
    expect((await guest.call('handled_by_v2')) as number).toBeGreaterThan(0);
    expect((await guest.status()).patches).toEqual([expect.objectContaining({ id: 'v2', state: 'applied' })]);
  });

  it('interrupts reach a loop that calls nothing', async () => {
    const guest = await WorkerGuest.start(loopNoSafepoints.bytes, { imports, run: { export: 'spin' }, interrupts: true, timeout: 5000 });
    open.push(guest);
    const patch = await guest.load(await handleV2(loopNoSafepoints.bytes));
    expect((await guest.apply(patch.id)).servedAt).toBe('interrupt');
    expect(await guest.call('handle', 0)).toBe(2);
    expect(guest.state).toBe('running');
  });

  it('a guest with safepoints, busy where nothing polls, is interrupted once the host has spun', async () => {
    const entriesOnly = (await prepare(await watToWasm(readFileSync(fixturePath('service-loop.wat'), 'utf8')), { safepoints: { loops: false, entries: true } })).bytes;
    const guest = await WorkerGuest.start(entriesOnly, { imports, run: { export: 'spin' } });
    open.push(guest);
    const patch = await guest.load(await handleV2(entriesOnly));
    const applied = await guest.apply(patch.id);
    expect(applied.servedAt).toBe('interrupt');
    expect(await guest.call('handle', 0)).toBe(2);
  });

  it('where the inspector is not usable (permission model), interrupts are off by default and refused when asked for', () => {
    const dist = new URL('../dist/', import.meta.url);
    const script = `
      import { prepare, watToWasm } from '${new URL('index.js', dist).href}';
      import { WorkerGuest } from '${new URL('runtime/index.js', dist).href}';
      const baseline = (await prepare(await watToWasm('(module (func (export "f") (result i32) (i32.const 1)))'))).bytes;
      const guest = await WorkerGuest.start(baseline);
      const answer = await guest.call('f');
      await guest.close();
      const refused = await WorkerGuest.start(baseline, { interrupts: true }).then(() => 'started', (e) => e.code);
      console.log(JSON.stringify({ answer, refused }));`;
    const file = join(mkdtempSync(join(tmpdir(), 'hotpatch-')), 'permission.mjs');
    writeFileSync(file, script);
    const permission = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission'; // renamed in Node 22
    const out = execFileSync(process.execPath, [permission, '--allow-fs-read=*', '--allow-worker', '--no-warnings', file], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ answer: 1, refused: 'E_USAGE' });
  });

  it('a guest blocked in an import is served while it waits', async () => {
    // Without interrupts: they would reach it too (V8 runs them inside Atomics.wait), and this is about waitServing.
    const guest = await WorkerGuest.start(loopNoSafepoints.bytes, { imports, run: { export: 'block' }, interrupts: false });
    open.push(guest);
    const patch = await guest.load(await handleV2(loopNoSafepoints.bytes));
    const applied = await guest.apply(patch.id);
    expect(applied.servedAt).toBe('safepoint'); // served from inside the import, by waitServing
    expect(await guest.call('handle', 0)).toBe(2);
  });

  it('an idle guest is served from its event loop', async () => {
    const guest = await WorkerGuest.start(loop.bytes, { imports });
    open.push(guest);
    const patch = await guest.load(await handleV2(loop.bytes));
    expect((await guest.apply(patch.id)).servedAt).toBe('event-loop');
    expect(await guest.call('handle', 0)).toBe(2);
  });

  it('reports a guest that trapped', async () => {
    const guest = await WorkerGuest.start(loop.bytes, { imports, run: { export: 'serve', args: [-1] } });
    open.push(guest);
    const trapping = await buildPatch({
      wat: '(module (func (export "handle") (param i32) (result i32) (unreachable)))',
      manifest: { id: 'trap', sequence: 1, targets: [{ function: 'handle', export: 'handle' }] },
      baseline: loop.bytes,
    });
    const trapped = new Promise((resolve) => guest.addEventListener('trapped', resolve, { once: true }));
    await guest.apply((await guest.load(trapping.bytes)).id);
    await trapped;
    expect(guest.state).toBe('trapped');
    expect(guest.ended).toMatchObject({ notice: 'trapped', message: expect.stringContaining('unreachable') });
    expect((await guest.status()).patches).toEqual([expect.objectContaining({ id: 'trap', state: 'applied' })]);
  });
});
