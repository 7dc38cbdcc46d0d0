// Scale and faults: HOSTS simulated hosts (default 200) in processes of 20, four rings, one
// release, two controllers as processes; meanwhile kill -9 a tenth of the hosts as their ring
// applies, kill -9 a controller and start another, restart nats-server, and bring the killed hosts
// back after the release finished. Ends with every host at its desired level or reported with the
// reason, and prints the figures. Run: npm run fleet:scale [-- --hosts 200]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeys } from '../src/build/sign.js';
import { fleetPatches } from '../src/demo/fleet-patches.js';
import { connectNats, createFleet, openFleet } from '../src/fleet/connection.js';
import { readHosts } from '../src/fleet/hosts.js';
import { createRelease, getRelease } from '../src/fleet/release.js';
import { complianceReport } from '../src/fleet/report.js';
import { complianceLine, formatDuration, renderRingTable } from '../src/fleet/render.js';
import { startNatsServer } from '../src/fleet/server.js';
import type { Release } from '../src/fleet/types.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const HOSTS = arg('hosts', 200);
const PER_PROCESS = 20;
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const log = (line: string): void => void process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);

const dir = mkdtempSync(join(tmpdir(), 'fleet-scale-'));
const server = await startNatsServer();
const nc = await connectNats({ servers: server.url, name: 'scale-operator', reconnectForever: true });
await createFleet(nc, { presenceTtlMs: 3_000 });
const fleet = await openFleet(nc);
const keys = generateKeys();
const patches = await fleetPatches(keys.privateKey);

// Rings as shares of the fleet, each made of whole processes: 10%, 20%, 40%, 30%.
const processes = Math.ceil(HOSTS / PER_PROCESS);
const ringOf = (p: number): string => (p < processes * 0.1 ? 'test' : p < processes * 0.3 ? 'early' : p < processes * 0.7 ? 'broad' : 'last');
const workers = new Map<number, ChildProcess>();
const traffic: Record<string, number>[] = [];

function startWorker(p: number): Promise<void> {
  const spec = {
    servers: server.url,
    publicKey: keys.publicKey,
    prefix: `p${String(p).padStart(2, '0')}`,
    rings: [{ name: ringOf(p), hosts: Math.min(PER_PROCESS, HOSTS - p * PER_PROCESS) }],
    store: join(dir, 'stores'),
    heartbeatMs: 1_000,
  };
  // node itself (not the tsx wrapper), so kill -9 reaches the process holding the hosts.
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fleet-scale-worker.ts', import.meta.url).pathname, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  workers.set(p, child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) traffic.push(JSON.parse(line));
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : code === 0 ? resolve() : reject(new Error(`worker ${p} exited with ${code ?? signal}`))));
  });
}

const controllers: ChildProcess[] = [];
process.once('exit', () => {
  for (const child of [...workers.values(), ...controllers]) child.kill('SIGKILL');
});
const cpu = new Map<number, number>();
function startController(): ChildProcess {
  const child = spawn(process.execPath, [cli, 'fleet', 'controller', '--server', server.url, '--interval', '200ms'], { stdio: 'ignore' });
  controllers.push(child);
  return child;
}
/** CPU seconds a process used so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const release = async (): Promise<Release> => (await getRelease(fleet, 'scale-1')).release;

let started = Date.now();
for (let p = 0; p < processes; p += 4) await Promise.all([p, p + 1, p + 2, p + 3].filter((q) => q < processes).map(startWorker));
log(`${HOSTS} hosts in ${processes} processes started in ${formatDuration(Date.now() - started)}`);
await until('every host reporting', async () => (await readHosts(fleet)).hosts.length === HOSTS, 60_000);

const a = startController();
startController();
const victim = processes > 4 ? Math.floor(processes * 0.5) : processes - 1; // a process of the broad ring
started = Date.now();
await createRelease(fleet, { id: 'scale-1', patches: [patches.fix, patches.quotaFix], rings: ['test', 'early', 'broad', 'last'], ringDefaults: { soakMs: 500, minShare: 0.9, maxFailures: 0 } });
log('released scale-1 to test → early → broad → last; two controllers');

await until('ring early', async () => (await release()).current >= 1, 60_000);
cpu.set(a.pid!, cpuSeconds(a.pid!));
a.kill('SIGKILL');
log('kill -9 one controller; starting another');
startController();

await until('ring broad to open', async () => (await release()).progress.broad?.openedAt !== undefined, 60_000);
workers.get(victim)!.kill('SIGKILL');
log(`kill -9 process ${victim}: ${PER_PROCESS} hosts of ring broad (a tenth of the fleet) as their ring applies`);

await until('ring last to open', async () => (await release()).progress.last?.openedAt !== undefined, 60_000);
await server.restart();
log('restarted nats-server');

await until('the release to complete', async () => (await release().catch(() => undefined))?.state === 'complete', 120_000);
const done = await release();
log(`release complete after ${formatDuration(Date.parse(done.completedAt!) - Date.parse(done.createdAt))}`);
const atCompletion = await complianceReport(fleet, { release: 'scale-1', objective: 0.95 });
log(complianceLine(atCompletion));

await startWorker(victim);
log(`process ${victim} back after the release finished`);
await until(
  'every online host at its desired level',
  async () => {
    const r = await complianceReport(fleet, { release: 'scale-1' });
    return r.hosts.every((h) => h.state === 'applied' || h.state === 'not-eligible' || (h.state !== 'unapplied' && h.reason));
  },
  60_000,
);
const final = await complianceReport(fleet, { release: 'scale-1' });
for (const c of controllers) if (c.exitCode === null && c.signalCode === null && c.pid) cpu.set(c.pid, cpuSeconds(c.pid));
for (const c of controllers) c.kill('SIGTERM');
await Promise.all(
  [...workers.values()]
    .filter((w) => w.exitCode === null && w.signalCode === null)
    .map(
      (w) =>
        new Promise((r) => {
          w.once('exit', r);
          w.kill('SIGTERM');
        }),
    ),
);

const unaccounted = final.hosts.filter((h) => h.state !== 'applied' && !h.reason);
const msgs = traffic.reduce((n, t) => n + t.inMsgs! + t.outMsgs!, 0);
const counted = traffic.reduce((n, t) => n + t.hosts!, 0);
process.stdout.write(`\n${renderRingTable(final)}\n${complianceLine(final)}\n`);
const figures = {
  hosts: HOSTS,
  processes,
  releaseToComplete: formatDuration(Date.parse(done.completedAt!) - Date.parse(done.createdAt)),
  timeTo95: final.timeToObjective === undefined ? 'not reached' : formatDuration(final.timeToObjective),
  compliantAtCompletion: `${atCompletion.compliant} of ${atCompletion.eligible} eligible`,
  compliantAtEnd: `${final.compliant} of ${final.eligible} eligible, ${final.hosts.length} hosts`,
  messagesPerHost: counted ? Math.round(msgs / counted) : undefined,
  controllerCpuSeconds: [...cpu.values()].map((s) => Number(s.toFixed(2))),
  unaccounted: unaccounted.map((h) => h.host),
};
process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
await fleet.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });
process.exitCode = unaccounted.length === 0 && final.compliant === final.eligible ? 0 : 1;
