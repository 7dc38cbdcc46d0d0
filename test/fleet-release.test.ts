import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AccountClient, type AccountExports } from '../src/demo/account-service.js';
import { readAudit } from '../src/fleet/audit.js';
import { Controller, controllerStep } from '../src/fleet/controller.js';
import { joinFleet } from '../src/fleet/connection.js';
import { operate } from '../src/fleet/operator.js';
import { createRelease, getRelease } from '../src/fleet/release.js';
import type { Release } from '../src/fleet/types.js';
import { startTestFleet, type TestFleet, type TestHost, waitStatus } from './fleet-harness.js';

let fleet: TestFleet;
beforeAll(async () => {
  fleet = await startTestFleet();
});
afterAll(async () => {
  await fleet?.close();
});

/** Runs controller passes until the release reaches a state (bounded). */
async function stepUntil(id: string, match: (r: Release) => boolean, now?: () => number): Promise<Release> {
  return vi.waitFor(
    async () => {
      await controllerStep(fleet.admin, now?.());
      const { release } = await getRelease(fleet.admin, id);
      if (!match(release)) throw new Error(`${id}: ${release.state} at ring ${release.current}`);
      return release;
    },
    { timeout: 30_000, interval: 30 },
  );
}

const ringKey = async (ring: string) => (await fleet.admin.desired.get(`ring.${ring}`))?.json<{ release: string; action: string }>();

describe('releases and rings', () => {
  it('promotes ring by ring, each after the one before it held its gate, and records every step', async () => {
    const rings = ['p-test', 'p-early', 'p-broad'];
    for (const [i, ring] of rings.entries()) for (const n of [1, 2]) await fleet.host(`p${i}-${n}`, ring);
    await createRelease(fleet.admin, { id: 'p1', patches: [fleet.patches.fix], rings, ringDefaults: { soakMs: 50, minShare: 1 } });
    const done = await stepUntil('p1', (r) => r.state === 'complete');
    const opened = rings.map((r) => Date.parse(done.progress[r]!.openedAt!));
    const promotedAt = rings.map((r) => Date.parse(done.progress[r]!.promotedAt!));
    for (let i = 1; i < rings.length; i++) expect(opened[i]).toBeGreaterThanOrEqual(promotedAt[i - 1]!);
    for (const [i] of rings.entries()) for (const n of [1, 2]) await waitStatus(fleet.admin, `p${i}-${n}`, (s) => s.state === 'applied' && s.release === 'p1');
    const steps = (await readAudit(fleet.admin, { filter: 'controller.>' })).filter((a) => a.release === 'p1').map((a) => String(a.what));
    expect(steps.filter((s) => s.startsWith('promoted'))).toHaveLength(3);
    expect(steps.filter((s) => s.startsWith('opened'))).toHaveLength(3);
  });

  it('waits out a ring deferral', async () => {
    await fleet.host('d-1', 'd-first');
    await fleet.host('d-2', 'd-later');
    await createRelease(fleet.admin, {
      id: 'd1',
      patches: [fleet.patches.fix],
      rings: [
        { name: 'd-first', soakMs: 0, minShare: 1, maxFailures: 0, deferMs: 0 },
        { name: 'd-later', soakMs: 0, minShare: 1, maxFailures: 0, deferMs: 3_600_000 },
      ],
    });
    const waiting = await stepUntil('d1', (r) => r.current === 1);
    for (let i = 0; i < 3; i++) await controllerStep(fleet.admin);
    expect((await getRelease(fleet.admin, 'd1')).release.progress['d-later']).toBeUndefined();
    const later = Date.parse(waiting.progress['d-first']!.promotedAt!) + 3_600_001;
    await stepUntil(
      'd1',
      (r) => r.state === 'complete',
      () => later,
    );
    await waitStatus(fleet.admin, 'd-2', (s) => s.state === 'applied' && s.release === 'd1');
  });

  it('pauses on a failing gate and rolls the failed ring back by itself; the next ring never starts', async () => {
    const hosts: TestHost[] = [];
    for (const n of [1, 2, 3]) hosts.push(await fleet.host(`f-${n}`, 'f-test', { applyOptions: { watch: { traps: 1 } } }));
    await fleet.host('f-4', 'f-broad');
    await createRelease(fleet.admin, { id: 'f1', patches: [fleet.patches.bad], rings: ['f-test', 'f-broad'], ringDefaults: { soakMs: 3_600_000, minShare: 1 } });
    await stepUntil('f1', (r) => r.progress['f-test']?.openedAt !== undefined);
    for (const n of [1, 2, 3]) await waitStatus(fleet.admin, `f-${n}`, (s) => s.state === 'applied' && s.release === 'f1');
    const service = new AccountClient(hosts[0]!.guest.exports as unknown as AccountExports);
    expect(() => service.setName(1, new TextEncoder().encode('user-17'))).toThrow(WebAssembly.RuntimeError);
    const paused = await stepUntil('f1', (r) => r.state === 'paused');
    expect(paused.reason).toContain('f-1 (rolled-back');
    expect(paused.progress['f-test']!.rolledBackAt).toBeDefined();
    await controllerStep(fleet.admin);
    expect(await ringKey('f-test')).toMatchObject({ release: 'f1', action: 'revert' });
    for (const n of [2, 3]) await waitStatus(fleet.admin, `f-${n}`, (s) => s.state === 'rolled-back' && s.applied.length === 0);
    expect(await ringKey('f-broad')).toBeUndefined();
    expect((await fleet.admin.status.get('f-4'))?.json<{ state: string }>().state).toBe('idle');
  });

  it('pause, resume, promote and roll back by hand; refuses what a state does not allow', async () => {
    await fleet.host('m-1', 'm-a');
    await fleet.host('m-2', 'm-b');
    await createRelease(fleet.admin, { id: 'm1', patches: [fleet.patches.fix], rings: ['m-a', 'm-b'], ringDefaults: { soakMs: 3_600_000 } });
    await operate(fleet.admin, 'm1', 'pause', { reason: 'change freeze' });
    await expect(operate(fleet.admin, 'm1', 'pause')).rejects.toMatchObject({ code: 'E_REFUSED' });
    await controllerStep(fleet.admin);
    expect((await getRelease(fleet.admin, 'm1')).release.progress['m-a']).toBeUndefined();
    await operate(fleet.admin, 'm1', 'resume');
    await stepUntil('m1', (r) => r.progress['m-a']?.openedAt !== undefined);
    await waitStatus(fleet.admin, 'm-1', (s) => s.state === 'applied' && s.release === 'm1');
    const promoted = await operate(fleet.admin, 'm1', 'promote', { by: 'test' });
    expect(promoted.current).toBe(1);
    await stepUntil('m1', (r) => r.progress['m-b']?.openedAt !== undefined);
    await waitStatus(fleet.admin, 'm-2', (s) => s.state === 'applied' && s.release === 'm1');
    await operate(fleet.admin, 'm1', 'rollback');
    await controllerStep(fleet.admin);
    for (const h of ['m-1', 'm-2']) await waitStatus(fleet.admin, h, (s) => s.state === 'rolled-back' && s.applied.length === 0);
    await expect(operate(fleet.admin, 'm1', 'resume')).rejects.toMatchObject({ code: 'E_REFUSED' });
    await expect(createRelease(fleet.admin, { id: 'm1', patches: [fleet.patches.fix], rings: ['m-a'] })).rejects.toMatchObject({ code: 'E_CONFLICT' });
  });

  it('two controllers at once, one killed and restarted midway: every ring promoted exactly once', async () => {
    const rings = ['c-1', 'c-2', 'c-3', 'c-4'];
    for (const ring of rings) await fleet.host(`c-${ring}`, ring);
    const connections = await Promise.all([0, 1, 2].map((n) => joinFleet({ servers: fleet.server.url, name: `controller-${n}` })));
    const a = await Controller.start(connections[0]!, { intervalMs: 20 });
    const b = await Controller.start(connections[1]!, { intervalMs: 20 });
    await createRelease(fleet.admin, { id: 'c1', patches: [fleet.patches.fix], rings, ringDefaults: { soakMs: 30, minShare: 1 } });
    await vi.waitFor(async () => expect((await getRelease(fleet.admin, 'c1')).release.current).toBeGreaterThanOrEqual(2), { timeout: 45_000, interval: 20 });
    await a.close();
    const c = await Controller.start(connections[2]!, { intervalMs: 20 });
    await vi.waitFor(async () => expect((await getRelease(fleet.admin, 'c1')).release.state).toBe('complete'), { timeout: 45_000, interval: 20 });
    await b.close();
    await c.close();
    await Promise.all(connections.map((x) => x.close()));
    const steps = (await readAudit(fleet.admin, { filter: 'controller.>' })).filter((r) => r.release === 'c1').map((r) => String(r.what));
    for (const ring of rings) {
      expect(steps.filter((s) => s.startsWith(`promoted ring ${ring} `))).toHaveLength(1);
      expect(steps.filter((s) => s === `opened ring ${ring}`)).toHaveLength(1);
    }
  });
});
