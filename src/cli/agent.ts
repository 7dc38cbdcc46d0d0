import { Guest } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { Agent } from '../fleet/agent.js';
import { joinFleet } from '../fleet/connection.js';
import { defineCommand } from './_command.js';
import { connectOptions, fleetArgs, parseDuration, untilStopped } from './_fleet.js';
import { paint, readInput } from './_io.js';
import { hostPolicy } from './_keys.js';

/** Prints one event: a JSON line with --json, a line of text otherwise. */
const say = (json: boolean, event: Record<string, unknown>, text: string): void => {
  process.stdout.write(json ? `${JSON.stringify(event)}\n` : `${text}\n`);
};

export default defineCommand({
  name: 'agent',
  summary: 'Run a baseline as a fleet host',
  description:
    "Run a baseline and join it to a fleet: report to the ring, apply what the ring's release carries for this baseline (signed patches only unless --allow-unsigned). Prints a line when joined and one per status change (with --json, JSON lines) until SIGINT or SIGTERM.",
  examples: ['wasm-hotpatch agent app.baseline.wasm --host web-1 --ring early --creds fleet/agents/web-1.json --trust release.pub --store ./patch-level'],
  args: {
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    ...fleetArgs,
    host: { type: 'string', value: 'id', description: "this host's id", required: true },
    ring: { type: 'string', value: 'name', description: "this host's ring", required: true },
    label: { type: 'string', value: 'k=v,…', description: 'labels, k=v comma-separated' },
    trust: { type: 'string', value: 'files', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', value: 'dir', description: 'a folder keeping the patch level across restarts' },
    probe: { type: 'string', value: 'export', description: 'a guest export run after each apply: a trap, false or 0 rolls the patch back' },
    'watch-traps': { type: 'string', value: 'n', description: 'roll a patch back after this many traps in its code (default 1; 0 = no watch)' },
    heartbeat: { type: 'string', value: 'duration', description: 'heartbeat period (default 5s)' },
    imports: { type: 'string', value: 'module', description: "a JS module whose default export is the guest's import object" },
    run: { type: 'string', value: 'export', description: 'an export to call once started (it may loop)' },
  },
  async run(args) {
    const policy = await hostPolicy(args, 'agent');
    const traps = Number(args['watch-traps'] ?? '1');
    if (!(Number.isSafeInteger(traps) && traps >= 0)) throw new HotpatchError('E_USAGE', `--watch-traps must be a whole number, not "${args['watch-traps']}"`);
    const heartbeatMs = parseDuration(args.heartbeat ?? '5s', '--heartbeat');
    const labels = Object.fromEntries(
      (args.label ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => kv.split('=', 2) as [string, string]),
    );
    const imports = args.imports ? ((await import(new URL(args.imports, `file://${process.cwd()}/`).href)).default as Record<string, Record<string, unknown>>) : {};
    const guest = await Guest.instantiate(readInput(args.baseline), imports as never, { policy });
    const fleet = await joinFleet({ ...connectOptions(args, args.host), reconnectForever: true });
    const agent = await Agent.start({
      fleet,
      guest: guest.async,
      host: args.host,
      ring: args.ring,
      labels,
      ...(args.store ? { store: args.store } : {}),
      applyOptions: { ...(traps > 0 ? { watch: { traps } } : {}), ...(args.probe ? { probe: args.probe } : {}) },
      heartbeatMs,
    }).catch(async (error: unknown) => {
      // A connection that reconnects forever would keep a host that could not join running.
      await fleet.close();
      throw error;
    });
    agent.addEventListener('status', () => {
      const s = agent.status!;
      say(args.json, { event: 'status', ...s }, `${s.at} ${s.state}${s.release ? ` (${s.release})` : ''}${s.reason ? `: ${s.reason}` : ''}`);
    });
    say(
      args.json,
      { event: 'joined', host: args.host, ring: args.ring, baseline: guest.manifest.id },
      `${paint.ok('joined')} fleet as ${args.host} in ring ${args.ring}, baseline ${guest.manifest.id.slice(0, 12)}…`,
    );
    if (args.run) setImmediate(() => (guest.exports[args.run!] as () => unknown)());
    await untilStopped();
    await agent.close();
    await fleet.close();
  },
});
