import { HotpatchError } from '../errors.js';
import { PatchStore, serveEndpoint, SupervisedGuest } from '../runtime/index.js';
import { defineCommand } from './_command.js';
import { tokenFrom } from './_endpoint.js';
import { paint, readInput } from './_io.js';
import { hostPolicy } from './_keys.js';

/** How long a stopping host may take before it exits anyway, in ms. */
const STOP_BOUND_MS = 3000;

export default defineCommand({
  name: 'serve',
  summary: 'Run a baseline with a control endpoint',
  description:
    'Run a baseline in a worker and expose a control endpoint, so `wasm-hotpatch apply|revert|status --to` can patch it from another shell. Signed patches are required unless --allow-unsigned. A guest that stops answering is restarted at its recorded level. With --json, prints one JSON line when serving and one when stopped (SIGINT, SIGTERM).',
  examples: ['wasm-hotpatch serve app.baseline.wasm --socket /tmp/app.sock --trust release.pub --store ./patch-level'],
  args: {
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    socket: { type: 'string', value: 'path', description: 'Unix socket path (created owner-only)' },
    port: { type: 'string', value: 'n', description: 'loopback TCP port (needs a token: --token-file or HOTPATCH_TOKEN)' },
    'token-file': { type: 'string', value: 'file', description: 'file with the bearer token' },
    trust: { type: 'string', value: 'files', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', value: 'dir', description: 'a folder keeping the patch level across restarts (owner-only, one host at a time)' },
    imports: { type: 'string', value: 'module', description: "a JS module whose default export is the guest's import object" },
    run: { type: 'string', value: 'export', description: 'an export to call once started (it may loop)' },
    shadow: { type: 'string', value: 'malloc[,free]', description: 'offer shadow state (hotpatch.shadow) to patches, its fields allocated by these guest exports (e.g. malloc,free)' },
    timeout: { type: 'string', value: 'ms', description: 'how long a request to the guest may take before it is restarted (default 5000)' },
  },
  async run(args) {
    const policy = await hostPolicy(args, 'serve');
    const port = args.port === undefined ? undefined : Number(args.port);
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new HotpatchError('E_USAGE', `--port must be a TCP port number, not ${args.port}`);
    const timeout = args.timeout === undefined ? undefined : Number(args.timeout);
    if (timeout !== undefined && !(Number.isSafeInteger(timeout) && timeout > 0)) throw new HotpatchError('E_USAGE', `--timeout must be a positive number of ms, not "${args.timeout}"`);
    const [malloc, free, extra] = args.shadow === undefined ? [] : args.shadow.split(',');
    if (args.shadow !== undefined && (!malloc || free === '' || extra !== undefined))
      throw new HotpatchError('E_USAGE', `--shadow names the guest's allocator exports as malloc[,free], not "${args.shadow}"`);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const store = args.store ? PatchStore.open(args.store) : undefined;
    let guest: SupervisedGuest | undefined;
    try {
      guest = await SupervisedGuest.start(readInput(args.baseline), {
        policy,
        log,
        ...(store ? { store } : {}),
        ...(timeout ? { timeout } : {}),
        ...(args.imports ? { imports: new URL(args.imports, `file://${process.cwd()}/`).href } : {}),
        ...(args.run ? { run: { export: args.run } } : {}),
        ...(malloc ? { shadow: { malloc, ...(free ? { free } : {}) } } : {}),
      });
      for (const line of store?.healed ?? []) log(`store: ${line}`);
      const token = tokenFrom(args);
      const server = await serveEndpoint(guest, {
        ...(args.socket ? { socket: args.socket } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(token ? { token } : {}),
        ...(store ? { store } : {}),
        log,
      });
      const level = store?.level(guest.manifest.id);
      const serving = { event: 'serving', baseline: guest.manifest.id, address: server.address, restored: level ? { generation: level.generation, applied: level.applied.map((a) => a.id) } : null };
      process.stdout.write(
        args.json
          ? `${JSON.stringify(serving)}\n`
          : `${paint.ok('serving')} baseline ${guest.manifest.id.slice(0, 12)}… at ${server.address}${level ? ` (restored generation ${level.generation}: ${level.applied.map((a) => a.id).join(', ') || 'no patches'})` : ''}\n`,
      );
      const signal = await new Promise<string>((resolve) => {
        process.once('SIGINT', () => resolve('SIGINT'));
        process.once('SIGTERM', () => resolve('SIGTERM'));
      });
      // A stuck guest must not keep the host from stopping: stop within a bound, whatever it does.
      setTimeout(() => process.exit(process.exitCode ?? 0), STOP_BOUND_MS).unref();
      await server.close();
      if (args.json) process.stdout.write(`${JSON.stringify({ event: 'stopped', signal })}\n`);
    } finally {
      await guest?.close();
      store?.close();
    }
    // Requests the stuck guest never answered still wait on timers: nothing is left to do for them.
    setImmediate(() => process.exit());
  },
});
