import { defineCommand } from 'citty';
import { trustKey } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { PatchStore, serveEndpoint, SupervisedGuest } from '../runtime/index.js';
import { tokenFrom } from './_endpoint.js';
import { guard, paint, readInput } from './_io.js';

/** How long a stopping host may take before it exits anyway, in ms. */
const STOP_BOUND_MS = 3000;

export default defineCommand({
  meta: {
    name: 'serve',
    description:
      'Run a baseline in a worker and expose a control endpoint, so `wasm-hotpatch apply|revert|status --to` can patch it from another shell. Signed patches are required unless --allow-unsigned. A guest that stops answering is restarted at its recorded level.\nExample: wasm-hotpatch serve app.baseline.wasm --socket /tmp/app.sock --trust release.pub --store ./patch-level',
  },
  args: {
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    socket: { type: 'string', description: 'Unix socket path (created owner-only)' },
    port: { type: 'string', description: 'loopback TCP port (needs a token: --token-file or HOTPATCH_TOKEN)' },
    'token-file': { type: 'string', description: 'file with the bearer token' },
    trust: { type: 'string', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', description: 'a folder keeping the patch level across restarts (owner-only, one host at a time)' },
    imports: { type: 'string', description: 'a module whose default export is the guest\'s import object' },
    run: { type: 'string', description: 'an export to call once started (it may loop)' },
    timeout: { type: 'string', description: 'ms a request to the guest may take before it is restarted (default 5000)' },
  },
  async run({ args }) {
    await guard(false, async () => {
      const trusted = args.trust ? await Promise.all(args.trust.split(',').map((p) => trustKey(fromUtf8(readInput(p.trim()))))) : [];
      if (trusted.length === 0 && !args['allow-unsigned']) {
        throw new HotpatchError('E_USAGE', 'serve requires signed patches: give --trust <public key>, or --allow-unsigned for development');
      }
      const timeout = args.timeout === undefined ? undefined : Number(args.timeout);
      if (timeout !== undefined && !(Number.isSafeInteger(timeout) && timeout > 0)) throw new HotpatchError('E_USAGE', `--timeout must be a positive number of ms, not "${args.timeout}"`);
      const policy = trusted.length > 0 ? { trustedKeys: trusted } : { requireSignature: false };
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const store = args.store ? PatchStore.open(args.store) : undefined;
      let guest: SupervisedGuest | undefined;
      try {
        guest = await SupervisedGuest.start(readInput(args.baseline), {
          policy,
          log,
          ...(store ? { store } : {}),
          ...(timeout ? { timeout } : {}),
          ...(args.imports ? { imports: args.imports } : {}),
          ...(args.run ? { run: { export: args.run } } : {}),
        });
        for (const line of store?.healed ?? []) log(`store: ${line}`);
        const server = await serveEndpoint(guest, {
          ...(args.socket ? { socket: args.socket } : {}),
          ...(args.port ? { port: Number(args.port) } : {}),
          ...(tokenFrom(args) ? { token: tokenFrom(args)! } : {}),
          ...(store ? { store } : {}),
          log,
        });
        const level = store?.level(guest.manifest.id);
        process.stdout.write(
          `${paint.ok('serving')} baseline ${guest.manifest.id.slice(0, 12)}… at ${server.address}${level ? ` (restored generation ${level.generation}: ${level.applied.map((a) => a.id).join(', ') || 'no patches'})` : ''}\n`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        // A stuck guest must not keep the host from stopping: stop within a bound, whatever it does.
        setTimeout(() => process.exit(process.exitCode ?? 0), STOP_BOUND_MS).unref();
        await server.close();
      } finally {
        await guest?.close();
        store?.close();
      }
      // Requests the stuck guest never answered still wait on timers: nothing is left to do for them.
      setImmediate(() => process.exit());
    });
  },
});
