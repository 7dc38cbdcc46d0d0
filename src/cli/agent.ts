import { defineCommand } from 'citty';
import { Guest, trustKey } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { Agent } from '../fleet/agent.js';
import { joinFleet } from '../fleet/connection.js';
import { connectOptions, fleetArgs, parseDuration, untilStopped } from './_fleet.js';
import { guard, paint, readInput } from './_io.js';

export default defineCommand({
  meta: {
    name: 'agent',
    description:
      'Run a baseline and join it to a fleet: report to the ring, apply what the ring\'s release carries for this baseline (signed patches only unless --allow-unsigned).\nExample: wasm-hotpatch agent app.baseline.wasm --host web-1 --ring early --creds fleet/agents/web-1.json --trust release.pub --store ./patch-level',
  },
  args: {
    ...fleetArgs,
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    host: { type: 'string', description: 'this host\'s id', required: true },
    ring: { type: 'string', description: 'this host\'s ring', required: true },
    label: { type: 'string', description: 'labels, k=v comma-separated' },
    trust: { type: 'string', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', description: 'a folder keeping the patch level across restarts' },
    probe: { type: 'string', description: 'a guest export run after each apply: a trap, false or 0 rolls the patch back' },
    'watch-traps': { type: 'string', description: 'roll a patch back after this many traps in its code (default 1; 0 = no watch)' },
    heartbeat: { type: 'string', description: 'heartbeat period (default 5s)' },
    imports: { type: 'string', description: 'a module whose default export is the guest\'s import object' },
    run: { type: 'string', description: 'an export to call once started (it may loop)' },
  },
  async run({ args }) {
    await guard(false, async () => {
      const trusted = args.trust ? await Promise.all(args.trust.split(',').map((p) => trustKey(fromUtf8(readInput(p.trim()))))) : [];
      if (trusted.length === 0 && !args['allow-unsigned']) throw new HotpatchError('E_USAGE', 'agent requires signed patches: give --trust <public key>, or --allow-unsigned for development');
      const imports = args.imports ? ((await import(new URL(args.imports, `file://${process.cwd()}/`).href)).default as Record<string, Record<string, unknown>>) : {};
      const guest = await Guest.instantiate(readInput(args.baseline), imports as never, { policy: trusted.length > 0 ? { trustedKeys: trusted } : { requireSignature: false } });
      const labels = Object.fromEntries((args.label ?? '').split(',').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));
      const traps = Number(args['watch-traps'] ?? '1');
      const fleet = await joinFleet({ ...connectOptions(args, args.host), reconnectForever: true });
      const agent = await Agent.start({
        fleet,
        guest: guest.async,
        host: args.host,
        ring: args.ring,
        labels,
        ...(args.store ? { store: args.store } : {}),
        applyOptions: { ...(traps > 0 ? { watch: { traps } } : {}), ...(args.probe ? { probe: args.probe } : {}) },
        heartbeatMs: parseDuration(args.heartbeat ?? '5s', '--heartbeat'),
      });
      agent.addEventListener('status', () => {
        const s = agent.status!;
        process.stdout.write(`${new Date().toISOString()} ${s.state}${s.release ? ` (${s.release})` : ''}${s.reason ? `: ${s.reason}` : ''}\n`);
      });
      process.stdout.write(`${paint.ok('joined')} fleet as ${args.host} in ring ${args.ring}, baseline ${guest.manifest.id.slice(0, 12)}…\n`);
      if (args.run) setImmediate(() => (guest.exports[args.run!] as () => unknown)());
      await untilStopped();
      await agent.close();
      await fleet.close();
    });
  },
});
