// Question: how long does a release take from `createRelease` to every eligible host compliant,
// through four rings with no soak, as the fleet grows; and what does a host cost (messages,
// memory) while idle? Hosts share this process, each with its own connection, guest and agent.
import { generateKeys } from '../src/build/sign.js';
import { startHosts, stopHosts, type SimHost } from '../src/demo/fleet-hosts.js';
import { fleetPatches } from '../src/demo/fleet-patches.js';
import { Controller } from '../src/fleet/controller.js';
import { connectNats, createFleet, type FleetConnection, openFleet } from '../src/fleet/connection.js';
import { operate } from '../src/fleet/operator.js';
import { createRelease, getRelease } from '../src/fleet/release.js';
import { complianceReport } from '../src/fleet/report.js';
import { startNatsServer } from '../src/fleet/server.js';
import { compare, quick, round, type Row, type Suite } from './_harness.js';

async function until(check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('fleet bench: timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const messages = (hosts: readonly SimHost[]): number => hosts.reduce((n, h) => n + h.fleet.nc.stats().inMsgs + h.fleet.nc.stats().outMsgs, 0);

export default async function fleetBench(): Promise<Suite> {
  const server = await startNatsServer();
  const nc = await connectNats({ servers: server.url, name: 'bench' });
  await createFleet(nc, { presenceTtlMs: 5_000 });
  const fleet: FleetConnection = await openFleet(nc);
  const controller = await Controller.start(await openFleet(await connectNats({ servers: server.url, name: 'controller' })), { intervalMs: 20 });
  const keys = generateKeys();
  const patches = await fleetPatches(keys.privateKey);
  const sizes = quick ? [8, 24] : [20, 100];
  const notes: string[] = [];
  const sets: Record<string, { hosts: SimHost[]; rings: string[] }> = {};
  for (const size of sizes) {
    const rings = ['test', 'early', 'broad', 'last'].map((r) => `${r}${size}`);
    const rss = process.memoryUsage().rss;
    const shares = [0.1, 0.2, 0.4, 0.3];
    const hosts = await startHosts({
      servers: server.url,
      publicKey: keys.publicKey,
      prefix: `b${size}`,
      rings: rings.map((name, i) => ({ name, hosts: Math.max(1, Math.round(size * shares[i]!)) })),
      agent: { heartbeatMs: 1_000 },
    });
    notes.push(`${hosts.length} hosts: ${round((process.memoryUsage().rss - rss) / hosts.length / 1024)} KiB RSS per host (connection, guest, agent)`);
    sets[`${size} hosts`] = { hosts, rings };
  }
  const all = Object.values(sets).flatMap((s) => s.hosts);
  const before = messages(all);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, quick ? 1_000 : 5_000));
  notes.push(`idle: ${round((messages(all) - before) / all.length / ((Date.now() - t0) / 1000))} messages per host per second (heartbeat every 1 s, presence TTL 5 s)`);

  let n = 0;
  let current = '';
  const variants = Object.fromEntries(
    Object.entries(sets).map(([name, set]) => [
      name,
      {
        fn: async () => {
          current = `bench-${++n}`;
          await createRelease(fleet, { id: current, patches: [patches.fix, patches.quotaFix], rings: set.rings, ringDefaults: { soakMs: 0, minShare: 1 } });
          await until(async () => (await getRelease(fleet, current)).release.state === 'complete');
        },
        afterEach: async () => {
          const report = await complianceReport(fleet, { release: current });
          const behind = report.hosts.filter((h) => set.hosts.some((s) => s.id === h.host) && h.state !== 'applied');
          if (behind.length > 0) throw new Error(`${current}: not every host compliant: ${behind.map((h) => `${h.host} ${h.state} ${JSON.stringify(h).slice(0, 300)}`).join('; ')}`);
          await operate(fleet, current, 'rollback');
          await until(async () => set.hosts.every((h) => h.agent.status?.state === 'rolled-back'));
        },
      },
    ]),
  );
  const rows: Row[] = await compare('release → every eligible host compliant, four rings, no soak', variants as never, { rounds: quick ? 1 : 3, time: 1, iterations: quick ? 1 : 3 });
  await controller.close();
  await stopHosts(all);
  await fleet.close();
  await server.stop();
  return {
    name: 'fleet',
    question: 'Release → compliance time through four rings as the fleet grows (reference: the smaller fleet), and what an idle host costs.',
    rows,
    notes,
  };
}
