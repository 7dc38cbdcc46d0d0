import { Guest, trustKey } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { PatchStore, serveControl } from '../runtime/index.js';
import { defineCommand } from './_command.js';
import { tokenFrom } from './_endpoint.js';
import { paint, readInput } from './_io.js';
import { readKey } from './_keys.js';

export default defineCommand({
  name: 'serve',
  summary: 'Run a baseline with a control endpoint',
  description:
    'Run a baseline and expose a control endpoint, so `wasm-hotpatch apply|revert|status --to` can patch it from another shell. Signed patches are required unless --allow-unsigned. With --json, prints one JSON line when serving and one when stopped (SIGINT, SIGTERM).',
  examples: ['wasm-hotpatch serve app.baseline.wasm --socket /tmp/app.sock --trust release.pub --store ./patch-level'],
  args: {
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    socket: { type: 'string', value: 'path', description: 'Unix socket path (created owner-only)' },
    port: { type: 'string', value: 'n', description: 'loopback TCP port (needs a token: --token-file or HOTPATCH_TOKEN)' },
    'token-file': { type: 'string', value: 'file', description: 'file with the bearer token' },
    trust: { type: 'string', value: 'files', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', value: 'dir', description: 'a folder keeping the patch level across restarts' },
    imports: { type: 'string', value: 'module', description: "a JS module whose default export is the guest's import object" },
    run: { type: 'string', value: 'export', description: 'an export to call once started (it may loop)' },
  },
  async run(args) {
    const trusted = args.trust ? await Promise.all(args.trust.split(',').map((p) => trustKey(readKey(p.trim(), 'public', '--trust')))) : [];
    if (trusted.length === 0 && !args['allow-unsigned']) {
      throw new HotpatchError('E_USAGE', 'serve requires signed patches: give --trust <public key>, or --allow-unsigned for development');
    }
    const port = args.port === undefined ? undefined : Number(args.port);
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) throw new HotpatchError('E_USAGE', `--port must be a TCP port number, not ${args.port}`);
    const imports = args.imports ? await importObject(args.imports) : {};
    const policy = trusted.length > 0 ? { trustedKeys: trusted } : { requireSignature: false };
    const guest = await Guest.instantiate(readInput(args.baseline), imports as never, { policy });
    const entry = args.run === undefined ? undefined : guest.exports[args.run];
    if (args.run !== undefined && typeof entry !== 'function') throw new HotpatchError('E_USAGE', `--run ${args.run}: the baseline exports no function of that name`);
    const store = args.store ? PatchStore.open(args.store) : undefined;
    const restored = store ? await store.restore(guest) : undefined;
    const token = tokenFrom(args);
    const server = await serveControl(guest, {
      ...(args.socket ? { socket: args.socket } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(token ? { token } : {}),
      ...(store ? { store } : {}),
    });
    const serving = { event: 'serving', baseline: guest.manifest.id, address: server.address, restored: restored ? { generation: restored.generation, applied: restored.applied.map((a) => a.id) } : null };
    process.stdout.write(
      args.json
        ? `${JSON.stringify(serving)}\n`
        : `${paint.ok('serving')} baseline ${guest.manifest.id.slice(0, 12)}… at ${server.address}${restored ? ` (restored generation ${restored.generation}: ${restored.applied.map((a) => a.id).join(', ') || 'no patches'})` : ''}\n`,
    );
    if (entry) setImmediate(() => (entry as () => unknown)());
    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    await server.close();
    if (args.json) process.stdout.write(`${JSON.stringify({ event: 'stopped', signal })}\n`);
  },
});

/** Loads the guest's import object from a JS module (its default export). */
async function importObject(path: string): Promise<Record<string, Record<string, unknown>>> {
  let module: { default?: unknown };
  try {
    module = await import(new URL(path, `file://${process.cwd()}/`).href);
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot load --imports ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof module.default !== 'object' || module.default === null) throw new HotpatchError('E_USAGE', `--imports ${path} has no default export object (the guest's imports)`);
  return module.default as Record<string, Record<string, unknown>>;
}
