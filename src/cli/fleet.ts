import { defineCommand } from 'citty';
import { HotpatchError } from '../errors.js';
import { readAudit } from '../fleet/audit.js';
import { connectNats, createFleet, openFleet } from '../fleet/connection.js';
import { Controller } from '../fleet/controller.js';
import { initFleet } from '../fleet/credentials.js';
import { operate, type OperatorAction } from '../fleet/operator.js';
import { createRelease, listReleases } from '../fleet/release.js';
import { complianceReport } from '../fleet/report.js';
import { renderReport } from '../fleet/render.js';
import type { Release } from '../fleet/types.js';
import { connectOptions, fleetArgs, parseDuration, untilStopped, withFleet } from './_fleet.js';
import { emit, guard, paint, readInput } from './_io.js';

const init = defineCommand({
  meta: { name: 'init', description: 'Write per-role credentials: a nats-server config with a controller user and one agent user per host (each may write only its own status).\nExample: wasm-hotpatch fleet init --out ./fleet --hosts web-1,web-2,web-3' },
  args: {
    out: { type: 'string', description: 'folder for server.conf, controller.json and agents/<host>.json', required: true },
    hosts: { type: 'string', description: 'host ids, comma-separated', required: true },
    server: { type: 'string', description: 'the URL agents and the controller will use (default nats://127.0.0.1:4222)' },
    json: { type: 'boolean', description: 'print the result as JSON' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const hosts = args.hosts.split(',').map((h) => h.trim()).filter(Boolean);
      const { files } = initFleet(args.out, hosts, args.server);
      emit(Boolean(args.json), { files }, () => `${paint.ok('wrote')} ${files.length} files to ${args.out} (they hold passwords: keep them owner-only)\nstart the server with: nats-server -js -c ${args.out}/server.conf`);
    });
  },
});

const controller = defineCommand({
  meta: { name: 'controller', description: 'Run the release controller (stateless: run one or more, restart at will). Creates the fleet\'s buckets if missing.\nExample: wasm-hotpatch fleet controller --creds fleet/controller.json' },
  args: { ...fleetArgs, interval: { type: 'string', description: 'how often to read the gates (default 1s)' }, 'presence-ttl': { type: 'string', description: 'heartbeat lifetime when creating the buckets (default 15s)' } },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const nc = await connectNats({ ...connectOptions(args, 'controller'), reconnectForever: true });
      await createFleet(nc, { presenceTtlMs: parseDuration(args['presence-ttl'] ?? '15s', '--presence-ttl') });
      const fleet = await openFleet(nc);
      const running = await Controller.start(fleet, { intervalMs: parseDuration(args.interval ?? '1s', '--interval') });
      running.addEventListener('change', (e) => process.stdout.write(`${new Date().toISOString()} ${(e as MessageEvent<string>).data}\n`));
      await untilStopped();
      await running.close();
      await fleet.close();
    });
  },
});

const release = defineCommand({
  meta: { name: 'release', description: 'Release one or more patches (one per baseline) to ordered rings.\nExample: wasm-hotpatch fleet release fix-7 --patch fix.a.wasm,fix.b.wasm --rings test,early,broad --soak 10m' },
  args: {
    ...fleetArgs,
    id: { type: 'positional', description: 'the release id', required: true },
    patch: { type: 'string', description: 'patch files, comma-separated (one per baseline)', required: true },
    rings: { type: 'string', description: 'ring names in rollout order, comma-separated', required: true },
    soak: { type: 'string', description: 'how long each ring\'s gate must hold (default 1m)' },
    'min-share': { type: 'string', description: 'share of eligible hosts applied and healthy for the gate (default 0.95)' },
    'max-failures': { type: 'string', description: 'rollbacks and failed applies a ring tolerates (default 0)' },
    defer: { type: 'string', description: 'wait after each promotion before the next ring (default 0)' },
    'no-rollback': { type: 'boolean', description: 'on a failing gate only pause; do not roll the ring back' },
    description: { type: 'string', description: 'what the release is for' },
  },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const created = await withFleet(args, 'operator', (fleet) =>
        createRelease(fleet, {
          id: args.id,
          patches: args.patch.split(',').map((p) => readInput(p.trim())),
          rings: args.rings.split(',').map((r) => r.trim()),
          ringDefaults: {
            ...(args.soak ? { soakMs: parseDuration(args.soak, '--soak') } : {}),
            ...(args['min-share'] ? { minShare: Number(args['min-share']) } : {}),
            ...(args['max-failures'] ? { maxFailures: Number(args['max-failures']) } : {}),
            ...(args.defer ? { deferMs: parseDuration(args.defer, '--defer') } : {}),
          },
          rollbackOnFailure: !args['no-rollback'],
          ...(args.description ? { description: args.description } : {}),
        }),
      );
      emit(Boolean(args.json), created, () => `${paint.ok('released')} ${created.id}: ${created.patches.map((p) => `${p.id} for ${p.baseline.slice(0, 12)}…`).join(', ')} → ${created.rings.map((r) => r.name).join(' → ')}`);
    });
  },
});

const action = (name: OperatorAction, description: string) =>
  defineCommand({
    meta: { name, description: `${description}\nExample: wasm-hotpatch fleet ${name} fix-7 --reason "..."` },
    args: { ...fleetArgs, id: { type: 'positional', description: 'the release id', required: true }, reason: { type: 'string', description: 'why (kept in the release and the audit stream)' } },
    async run({ args }) {
      await guard(Boolean(args.json), async () => {
        const next = await withFleet(args, 'operator', (fleet) => operate(fleet, args.id, name, { ...(args.reason ? { reason: args.reason } : {}), by: process.env.USER ?? 'operator' }));
        emit(Boolean(args.json), next, () => `${paint.ok(name)} ${next.id}: now ${next.state}${next.rings[next.current] ? ` at ring ${next.rings[next.current]!.name}` : ''}`);
      });
    },
  });

function describeRelease(r: Release): string {
  const rings = r.rings.map((ring, i) => {
    const p = r.progress[ring.name];
    const mark = p?.rolledBackAt ? 'rolled back' : p?.promotedAt ? 'promoted' : p?.holdingSince ? 'soaking' : p?.openedAt ? 'rolling' : i === r.current ? 'next' : 'waiting';
    return `${ring.name} (${mark})`;
  });
  return `${r.id.padEnd(16)} ${r.state.padEnd(12)} ${rings.join(' → ')}${r.reason ? `\n${' '.repeat(17)}${paint.dim(r.reason)}` : ''}`;
}

const status = defineCommand({
  meta: { name: 'status', description: 'List releases and where each ring is.\nExample: wasm-hotpatch fleet status' },
  args: { ...fleetArgs },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const releases = await withFleet(args, 'operator', (fleet) => listReleases(fleet));
      emit(Boolean(args.json), releases, () => (releases.length === 0 ? 'no releases' : releases.map(describeRelease).join('\n')));
    });
  },
});

const report = defineCommand({
  meta: { name: 'report', description: 'Compliance report: hosts by ring, baseline and state against a release, hosts needing attention by name, time to compliance.\nExample: wasm-hotpatch fleet report --release fix-7' },
  args: { ...fleetArgs, release: { type: 'string', description: 'the release (default: the newest)' }, objective: { type: 'string', description: 'the compliance objective (default 0.95)' } },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const objective = args.objective === undefined ? undefined : Number(args.objective);
      if (objective !== undefined && !(objective > 0 && objective <= 1)) throw new HotpatchError('E_USAGE', '--objective must be in (0, 1]');
      const result = await withFleet(args, 'operator', (fleet) => complianceReport(fleet, { ...(args.release ? { release: args.release } : {}), ...(objective ? { objective } : {}) }));
      emit(Boolean(args.json), result, () => renderReport(result));
    });
  },
});

const audit = defineCommand({
  meta: { name: 'audit', description: 'Print the audit stream: every release change, controller step and host apply or revert.\nExample: wasm-hotpatch fleet audit --filter controller.>' },
  args: { ...fleetArgs, filter: { type: 'string', description: 'subjects under fleet.audit. (default >)' } },
  async run({ args }) {
    await guard(Boolean(args.json), async () => {
      const records = await withFleet(args, 'operator', (fleet) => readAudit(fleet, args.filter ? { filter: args.filter } : {}));
      emit(Boolean(args.json), records, () => records.map((r) => `${r.at} ${r.subject.padEnd(24)} ${String(r.release ?? r.host ?? '')} ${String(r.what ?? '')}`).join('\n'));
    });
  },
});

export default defineCommand({
  meta: { name: 'fleet', description: 'Release patches to a fleet of hosts in rings, on NATS JetStream.' },
  subCommands: {
    init,
    controller,
    release,
    promote: action('promote', 'Promote a release\'s current ring now, without waiting for its gate.'),
    pause: action('pause', 'Pause a release: no ring is promoted or opened until resumed.'),
    resume: action('resume', 'Resume a paused release; its failed ring is asked to apply again.'),
    rollback: action('rollback', 'Roll a release back in every ring it reached.'),
    status,
    report,
    audit,
  },
});
