// `npm run playground [-- --port N] [-- --trust release.pub ...]`: serves the browser playground
// on 127.0.0.1 until interrupted.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HotpatchError } from '../errors.js';
import { startPlayground } from './server.js';

try {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '5178' }, trust: { type: 'string', multiple: true, default: [] } }, strict: true });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new HotpatchError('E_USAGE', `--port must be a port number, not "${values.port}"`);
  const trustedKeys = values.trust.map((file) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (cause) {
      throw new HotpatchError('E_IO', `cannot read the key ${file}: ${(cause as Error).message}`, { cause });
    }
  });
  const playground = await startPlayground({ port, trustedKeys });
  process.stdout.write(`wasm-hotpatch playground on ${playground.url}\npatches offered there are signed with session key ${playground.keyId}; Ctrl-C stops it\n`);
  const stop = (): void => void playground.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  const usage = (error as { code?: unknown }).code;
  if (typeof usage === 'string' && usage.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`E_USAGE: ${(error as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${error instanceof HotpatchError ? `${error.code}: ` : ''}${(error as Error).message}\n`);
  process.exit(error instanceof HotpatchError && error.code === 'E_USAGE' ? 2 : 1);
}
