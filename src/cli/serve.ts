import { defineCommand } from 'citty';
import { Guest, trustKey } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { fromUtf8 } from '../format/bytes.js';
import { PatchStore, serveControl } from '../runtime/index.js';
import { tokenFrom } from './_endpoint.js';
import { guard, paint, readInput } from './_io.js';

export default defineCommand({
  meta: {
    name: 'serve',
    description:
      'Run a baseline and expose a control endpoint, so `wasm-hotpatch apply|revert|status --to` can patch it from another shell. Signed patches are required unless --allow-unsigned.\nExample: wasm-hotpatch serve app.baseline.wasm --socket /tmp/app.sock --trust release.pub --store ./patch-level',
  },
  args: {
    baseline: { type: 'positional', description: 'the baseline to run', required: true },
    socket: { type: 'string', description: 'Unix socket path (created owner-only)' },
    port: { type: 'string', description: 'loopback TCP port (needs a token: --token-file or HOTPATCH_TOKEN)' },
    'token-file': { type: 'string', description: 'file with the bearer token' },
    trust: { type: 'string', description: 'trusted public key(s) (PEM), comma-separated' },
    'allow-unsigned': { type: 'boolean', description: 'accept unsigned patches (development only)' },
    store: { type: 'string', description: 'a folder keeping the patch level across restarts' },
    imports: { type: 'string', description: 'a module whose default export is the guest\'s import object' },
    run: { type: 'string', description: 'an export to call once started (it may loop)' },
  },
  async run({ args }) {
    await guard(false, async () => {
      const trusted = args.trust ? await Promise.all(args.trust.split(',').map((p) => trustKey(fromUtf8(readInput(p.trim()))))) : [];
      if (trusted.length === 0 && !args['allow-unsigned']) {
        throw new HotpatchError('E_USAGE', 'serve requires signed patches: give --trust <public key>, or --allow-unsigned for development');
      }
      const imports = args.imports ? ((await import(new URL(args.imports, `file://${process.cwd()}/`).href)).default as Record<string, Record<string, unknown>>) : {};
      const policy = trusted.length > 0 ? { trustedKeys: trusted } : { requireSignature: false };
      const guest = await Guest.instantiate(readInput(args.baseline), imports as never, { policy });
      const store = args.store ? PatchStore.open(args.store) : undefined;
      const restored = store ? await store.restore(guest.async) : undefined;
      const server = await serveControl(guest, {
        ...(args.socket ? { socket: args.socket } : {}),
        ...(args.port ? { port: Number(args.port) } : {}),
        ...(tokenFrom(args) ? { token: tokenFrom(args)! } : {}),
        ...(store ? { store } : {}),
      });
      process.stdout.write(
        `${paint.ok('serving')} baseline ${guest.manifest.id.slice(0, 12)}… at ${server.address}${restored ? ` (restored generation ${restored.generation}: ${restored.applied.map((a) => a.id).join(', ') || 'no patches'})` : ''}\n`,
      );
      if (args.run) setImmediate(() => (guest.exports[args.run!] as () => unknown)());
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
    });
  },
});
