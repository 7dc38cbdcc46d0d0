import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import { Controller } from '../src/fleet/controller.js';
import { joinFleet } from '../src/fleet/connection.js';
import { createRelease, getRelease } from '../src/fleet/release.js';
import { complianceReport } from '../src/fleet/report.js';
import { startTestFleet, type TestFleet, waitStatus } from './fleet-harness.js';

let fleet: TestFleet;
beforeAll(async () => {
  fleet = await startTestFleet({ presenceTtlMs: 1_500 });
});
afterAll(async () => {
  await fleet?.close();
});

describe('faults during a release', () => {
  it('nats-server restarts mid-release: agents and the controller reconnect, the release completes, nothing is unaccounted', async () => {
    const rings = ['x-test', 'x-broad'];
    for (const [i, ring] of rings.entries()) for (const n of [1, 2, 3]) await fleet.host(`x${i}-${n}`, ring, { store: join(fleet.dir, `x${i}-${n}`) });
    const connection = await joinFleet({ servers: fleet.server.url, name: 'controller', reconnectForever: true });
    const controller = await Controller.start(connection, { intervalMs: 50 });
    await createRelease(fleet.admin, { id: 'x1', patches: [fleet.patches.fix], rings, ringDefaults: { soakMs: 300, minShare: 1 } });
    for (const n of [1, 2, 3]) await waitStatus(fleet.admin, `x0-${n}`, (s) => s.state === 'applied' && s.release === 'x1');
    await fleet.server.restart();
    await vi.waitFor(async () => expect((await getRelease(fleet.admin, 'x1')).release.state).toBe('complete'), { timeout: 30_000, interval: 100 });
    for (const n of [1, 2, 3]) await waitStatus(fleet.admin, `x1-${n}`, (s) => s.state === 'applied' && s.release === 'x1', 20_000);
    await controller.close();
    await connection.close();
    const report = await vi.waitFor(
      async () => {
        const r = await complianceReport(fleet.admin, { release: 'x1' });
        if (r.compliant !== 6) throw new Error(JSON.stringify(r.byRing));
        return r;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(report.eligible).toBe(6);
  });

  it('a host away during the whole release is reported offline by name, and catches up when it returns', async () => {
    const first = await fleet.host('late-1', 'y-test', { store: join(fleet.dir, 'late-1') });
    await fleet.host('late-2', 'y-test');
    await waitStatus(fleet.admin, 'late-1', (s) => s.state === 'idle');
    await first.stop();
    // Its heartbeat expires (the bucket's TTL): the gate counts online hosts only.
    await vi.waitFor(async () => expect(await fleet.admin.presence.get('late-1')).toBeNull(), { timeout: 10_000, interval: 100 });
    const connection = await joinFleet({ servers: fleet.server.url, name: 'controller' });
    const controller = await Controller.start(connection, { intervalMs: 50 });
    await createRelease(fleet.admin, { id: 'y1', patches: [fleet.patches.fix], rings: ['y-test'], ringDefaults: { soakMs: 100, minShare: 1 } });
    await vi.waitFor(async () => expect((await getRelease(fleet.admin, 'y1')).release.state).toBe('complete'), { timeout: 15_000, interval: 50 });
    const away = (await complianceReport(fleet.admin, { release: 'y1' })).hosts.find((h) => h.host === 'late-1')!;
    expect(away.state).toBe('offline');
    expect(away.reason).toContain('last heard');
    await fleet.host('late-1', 'y-test', { store: join(fleet.dir, 'late-1') });
    await waitStatus(fleet.admin, 'late-1', (s) => s.state === 'applied' && s.release === 'y1');
    await controller.close();
    await connection.close();
  });
});
