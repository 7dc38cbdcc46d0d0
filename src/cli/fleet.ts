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
import { defineCommand, defineGroup } from './_command.js';
import { connectOptions, fleetArgs, parseDuration, untilStopped, withFleet } from './_fleet.js';
import { emit, paint, readInput } from './_io.js';

const init = defineCommand({
  name: 'init',
  summary: 'Write per-role credentials and a nats-server config',
  description: 'Write per-role credentials: a nats-server config with a controller user and one agent user per host (each may write only its own status).',
  examples: ['wasm-hotpatch fleet init --out ./fleet --hosts web-1,web-2,web-3'],
  args: {
    out: { type: 'string', value: 'dir', description: 'folder for server.conf, controller.json and agents/<host>.json', required: true },
    hosts: { type: 'string', value: 'ids', description: 'host ids, comma-separated', required: true },
    server: { type: 'string', value: 'url', description: 'the URL agents and the controller will use (default nats://127.0.0.1:4222)' },
  },
  async run(args) {
    const hosts = args.hosts
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    const { files } = initFleet(args.out, hosts, args.server);
    emit(
      args.json,
      { files },
      () => `${paint.ok('wrote')} ${files.length} files to ${args.out} (they hold passwords: keep them owner-only)\nstart the server with: nats-server -js -c ${args.out}/server.conf`,
    );
  },
});

const controller = defineCommand({
  name: 'controller',
  summary: 'Run the release controller',
  description:
    "Run the release controller (stateless: run one or more, restart at will). Creates the fleet's buckets if missing. Prints one line per change (with --json, one JSON line) until SIGINT or SIGTERM.",
  examples: ['wasm-hotpatch fleet controller --creds fleet/controller.json'],
  args: {
    ...fleetArgs,
    interval: { type: 'string', value: 'duration', description: 'how often to read the gates (default 1s)' },
    'presence-ttl': { type: 'string', value: 'duration', description: 'heartbeat lifetime when creating the buckets (default 15s)' },
  },
  async run(args) {
    const presenceTtlMs = parseDuration(args['presence-ttl'] ?? '15s', '--presence-ttl');
    const intervalMs = parseDuration(args.interval ?? '1s', '--interval');
    const nc = await connectNats({ ...connectOptions(args, 'controller'), reconnectForever: true });
    await createFleet(nc, { presenceTtlMs });
    const fleet = await openFleet(nc);
    const running = await Controller.start(fleet, { intervalMs });
    running.addEventListener('change', (e) => {
      const at = new Date().toISOString();
      const change = (e as MessageEvent<string>).data;
      process.stdout.write(args.json ? `${JSON.stringify({ at, change })}\n` : `${at} ${change}\n`);
    });
    await untilStopped();
    await running.close();
    await fleet.close();
  },
});

const release = defineCommand({
  name: 'release',
  summary: 'Release patches to ordered rings',
  description: 'Release one or more patches (one per baseline) to ordered rings.',
  examples: ['wasm-hotpatch fleet release fix-7 --patch fix.a.wasm,fix.b.wasm --rings test,early,broad --soak 10m'],
  args: {
    id: { type: 'positional', description: 'the release id', required: true },
    ...fleetArgs,
    patch: { type: 'string', value: 'files', description: 'patch files, comma-separated (one per baseline)', required: true },
    rings: { type: 'string', value: 'names', description: 'ring names in rollout order, comma-separated', required: true },
    soak: { type: 'string', value: 'duration', description: "how long each ring's gate must hold (default 1m)" },
    'min-share': { type: 'string', value: 'share', description: 'share of eligible hosts applied and healthy for the gate (default 0.95)' },
    'max-failures': { type: 'string', value: 'n', description: 'rollbacks and failed applies a ring tolerates (default 0)' },
    defer: { type: 'string', value: 'duration', description: 'wait after each promotion before the next ring (default 0)' },
    'no-rollback': { type: 'boolean', description: 'on a failing gate only pause; do not roll the ring back' },
    description: { type: 'string', value: 'text', description: 'what the release is for' },
  },
  async run(args) {
    // createRelease checks the numbers (a share in [0, 1], counts ≥ 0).
    const ringDefaults = {
      ...(args.soak ? { soakMs: parseDuration(args.soak, '--soak') } : {}),
      ...(args['min-share'] ? { minShare: Number(args['min-share']) } : {}),
      ...(args['max-failures'] ? { maxFailures: Number(args['max-failures']) } : {}),
      ...(args.defer ? { deferMs: parseDuration(args.defer, '--defer') } : {}),
    };
    const patches = args.patch.split(',').map((p) => readInput(p.trim()));
    const created = await withFleet(args, 'operator', (fleet) =>
      createRelease(fleet, {
        id: args.id,
        patches,
        rings: args.rings.split(',').map((r) => r.trim()),
        ringDefaults,
        rollbackOnFailure: !args['no-rollback'],
        ...(args.description ? { description: args.description } : {}),
      }),
    );
    emit(
      args.json,
      created,
      () => `${paint.ok('released')} ${created.id}: ${created.patches.map((p) => `${p.id} for ${p.baseline.slice(0, 12)}…`).join(', ')} → ${created.rings.map((r) => r.name).join(' → ')}`,
    );
  },
});

const action = (name: OperatorAction, summary: string, description: string) =>
  defineCommand({
    name,
    summary,
    description,
    examples: [`wasm-hotpatch fleet ${name} fix-7 --reason "..."`],
    args: {
      id: { type: 'positional', description: 'the release id', required: true },
      ...fleetArgs,
      reason: { type: 'string', value: 'text', description: 'why (kept in the release and the audit stream)' },
    },
    async run(args) {
      const next = await withFleet(args, 'operator', (fleet) => operate(fleet, args.id, name, { ...(args.reason ? { reason: args.reason } : {}), by: process.env.USER ?? 'operator' }));
      emit(args.json, next, () => `${paint.ok(name)} ${next.id}: now ${next.state}${next.rings[next.current] ? ` at ring ${next.rings[next.current]!.name}` : ''}`);
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
  name: 'status',
  summary: 'List releases and where each ring is',
  description: 'List releases and where each ring is.',
  examples: ['wasm-hotpatch fleet status --creds fleet/controller.json'],
  args: { ...fleetArgs },
  async run(args) {
    const releases = await withFleet(args, 'operator', (fleet) => listReleases(fleet));
    emit(args.json, releases, () => (releases.length === 0 ? 'no releases' : releases.map(describeRelease).join('\n')));
  },
});

const report = defineCommand({
  name: 'report',
  summary: 'Compliance report of a release',
  description: 'Compliance report: hosts by ring, baseline and state against a release, hosts needing attention by name, time to compliance.',
  examples: ['wasm-hotpatch fleet report --release fix-7'],
  args: {
    ...fleetArgs,
    release: { type: 'string', value: 'id', description: 'the release (default: the newest)' },
    objective: { type: 'string', value: 'share', description: 'the compliance objective (default 0.95)' },
  },
  async run(args) {
    const objective = args.objective === undefined ? undefined : Number(args.objective);
    if (objective !== undefined && !(objective > 0 && objective <= 1)) throw new HotpatchError('E_USAGE', `--objective must be in (0, 1], not "${args.objective}"`);
    const result = await withFleet(args, 'operator', (fleet) => complianceReport(fleet, { ...(args.release ? { release: args.release } : {}), ...(objective !== undefined ? { objective } : {}) }));
    emit(args.json, result, () => renderReport(result));
  },
});

const audit = defineCommand({
  name: 'audit',
  summary: 'Print the audit stream',
  description: 'Print the audit stream: every release change, controller step and host apply or revert.',
  examples: ['wasm-hotpatch fleet audit --filter controller.>'],
  args: { ...fleetArgs, filter: { type: 'string', value: 'subjects', description: 'subjects under fleet.audit. (default >)' } },
  async run(args) {
    const records = await withFleet(args, 'operator', (fleet) => readAudit(fleet, args.filter ? { filter: args.filter } : {}));
    emit(args.json, records, () => records.map((r) => `${r.at} ${r.subject.padEnd(24)} ${String(r.release ?? r.host ?? '')} ${String(r.what ?? '')}`).join('\n'));
  },
});

export default defineGroup({
  name: 'fleet',
  summary: 'Release patches to a fleet of hosts in rings',
  description: 'Release patches to a fleet of hosts in rings, on NATS JetStream.',
  commands: [
    init,
    controller,
    release,
    action('promote', "Promote a release's current ring now", "Promote a release's current ring now, without waiting for its gate."),
    action('pause', 'Pause a release', 'Pause a release: no ring is promoted or opened until resumed.'),
    action('resume', 'Resume a paused release', 'Resume a paused release; its failed ring is asked to apply again.'),
    action('rollback', 'Roll a release back', 'Roll a release back in every ring it reached.'),
    status,
    report,
    audit,
  ],
});
