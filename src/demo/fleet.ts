// npm run demo:fleet — 40 hosts in four rings on a local nats-server: a bad patch that the test
// ring's gate catches (paused, rolled back by itself), then the real fix through every ring.
import { generateKeys } from '../build/sign.js';
import { Controller } from '../fleet/controller.js';
import { connectNats, createFleet, type FleetConnection, openFleet } from '../fleet/connection.js';
import { complianceReport, type ComplianceReport } from '../fleet/report.js';
import { complianceLine, formatDuration, renderRingTable } from '../fleet/render.js';
import { createRelease, getRelease } from '../fleet/release.js';
import { findNatsServer, INSTALL_HINT, startNatsServer } from '../fleet/server.js';
import type { Release } from '../fleet/types.js';
import { drive, lostRequests, type SimHost, startHosts, stopHosts } from './fleet-hosts.js';
import { fleetPatches } from './fleet-patches.js';

/** Four rings of 10/20/40/30% of the hosts (40 by default; DEMO_FLEET_HOSTS for a smaller run). */
function rings(total: number): { name: string; hosts: number }[] {
  const test = Math.max(2, Math.round(total * 0.1));
  const early = Math.max(1, Math.round(total * 0.2));
  const broad = Math.max(1, Math.round(total * 0.4));
  return [
    { name: 'test', hosts: test },
    { name: 'early', hosts: early },
    { name: 'broad', hosts: broad },
    { name: 'last', hosts: Math.max(1, total - test - early - broad) },
  ];
}
const RINGS = rings(Number(process.env.DEMO_FLEET_HOSTS ?? 40));
const tty = process.stdout.isTTY === true;
const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** The live panel: redrawn in place on a terminal, one plain line per change when piped. */
class Panel {
  #lines = 0;
  #last = '';
  draw(title: string, report: ComplianceReport): void {
    if (tty) {
      const text = `${title}\n${renderRingTable(report)}\n${complianceLine(report)}\n`;
      process.stdout.write(`${this.#lines > 0 ? `\x1b[${this.#lines}A\x1b[J` : ''}${text}`);
      this.#lines = text.split('\n').length - 1;
      return;
    }
    const line = `${title}: ${report.byRing.map((r) => `${r.ring} ${r.counts.applied}/${Object.values(r.counts).reduce((a, b) => a + b, 0)} applied${r.counts['rolled-back'] ? `, ${r.counts['rolled-back']} rolled back` : ''}`).join(' · ')}`;
    if (line !== this.#last) say(line);
    this.#last = line;
  }
  /** Lets an event line print above the panel instead of into it. */
  note(line: string): void {
    if (tty && this.#lines > 0) process.stdout.write(`\x1b[${this.#lines}A\x1b[J`);
    this.#lines = 0;
    say(line);
  }
}

/** Redraws the panel until the release reaches a state (bounded). */
async function follow(fleet: FleetConnection, panel: Panel, id: string, until: (r: Release) => boolean, timeoutMs: number): Promise<Release> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { release } = await getRelease(fleet, id);
    panel.draw(`release ${id}: ${release.state}${release.rings[release.current] ? ` at ring ${release.rings[release.current]!.name}` : ''}`, await complianceReport(fleet, { release: id }));
    if (until(release)) return release;
    if (Date.now() > deadline) throw new Error(`release ${id} did not get there within ${timeoutMs / 1000} s (it is ${release.state})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main(): Promise<number> {
  if (!findNatsServer()) {
    say(INSTALL_HINT);
    return 1;
  }
  const server = await startNatsServer();
  const nc = await connectNats({ servers: server.url, name: 'demo-operator' });
  await createFleet(nc, { presenceTtlMs: 3_000 });
  const fleet = await openFleet(nc);
  const keys = generateKeys();
  const patches = await fleetPatches(keys.privateKey);
  say(`nats-server ${server.url}; starting ${RINGS.reduce((n, r) => n + r.hosts, 0)} hosts in rings ${RINGS.map((r) => `${r.name} (${r.hosts})`).join(', ')}`);
  const hosts = await startHosts({
    servers: server.url,
    publicKey: keys.publicKey,
    rings: RINGS,
    quotaEvery: 10,
    prefix: 'host',
    agent: { heartbeatMs: 1_000, applyOptions: { watch: { traps: 1 } } },
  });
  const load = drive(hosts);
  const controllerConnection = await openFleet(await connectNats({ servers: server.url, name: 'controller' }));
  const controller = await Controller.start(controllerConnection, { intervalMs: 200 });
  const panel = new Panel();
  controller.addEventListener('change', (e) => panel.note(`  controller: ${(e as MessageEvent<string>).data}`));
  const ringDefaults = { soakMs: 1_500, minShare: 0.95, maxFailures: 0 };
  let summary: string[] = [];
  try {
    panel.note('release bad-1: name-check-1 (traps on 7-byte names) to test → early → broad → last');
    await createRelease(fleet, { id: 'bad-1', patches: [patches.bad], rings: RINGS.map((r) => r.name), ringDefaults });
    const bad = await follow(fleet, panel, 'bad-1', (r) => r.state === 'paused' && r.progress.test?.rolledBackAt !== undefined, 60_000);
    const badReport = await waitRolledBack(hosts);
    panel.note(`release bad-1 paused at ring ${bad.rings[bad.current]!.name}: ${bad.reason}`);
    panel.note(`  ring test rolled back by itself: ${badReport} ; rings early, broad and last never got it`);

    panel.note('release fix-1: name-check-2 for the account service, fix-quota-overflow for the quota service');
    const started = Date.now();
    await createRelease(fleet, { id: 'fix-1', patches: [patches.fix, patches.quotaFix], rings: RINGS.map((r) => r.name), ringDefaults });
    await follow(fleet, panel, 'fix-1', (r) => r.state === 'complete', 120_000);
    const report = await complianceReport(fleet, { release: 'fix-1' });
    load.stop();
    summary = summarize(report, hosts, load.requests, Date.now() - started);
  } finally {
    load.stop();
    await controller.close();
    await stopHosts(hosts);
    await controllerConnection.close();
    await fleet.close();
    await server.stop();
  }
  for (const line of summary) say(line);
  return 0;
}

/** Waits until the test ring's hosts reverted the bad patch; says how they got there. */
async function waitRolledBack(hosts: readonly SimHost[]): Promise<string> {
  const test = hosts.filter((h) => h.ring === 'test' && h.kind === 'account');
  const deadline = Date.now() + 20_000;
  while (test.some((h) => h.agent.status?.state !== 'rolled-back') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const byWatch = test.filter((h) => h.agent.status?.reason?.includes('health')).length;
  return `${byWatch} host${byWatch === 1 ? '' : 's'} by their own trap watch, ${test.length - byWatch} by the ring's rollback`;
}

function summarize(report: ComplianceReport, hosts: readonly SimHost[], requests: number, elapsed: number): string[] {
  const lost = hosts.reduce((n, h) => n + lostRequests(h), 0);
  const unaccounted = hosts.filter((h) => !report.hosts.some((r) => r.host === h.id)).length;
  const trapped = hosts.reduce((n, h) => n + h.trapped, 0);
  return [
    '',
    'summary',
    renderRingTable(report),
    complianceLine(report),
    `fix-1 took ${formatDuration(elapsed)} from release to complete (soak 1.5 s per ring)`,
    `${requests} requests served under load; ${trapped} trapped on the bad patch before it was rolled back`,
    `lost ${lost + unaccounted} (requests the guests counted but never answered: ${lost}; hosts unaccounted for: ${unaccounted})`,
  ];
}

process.exitCode = await main();
