import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { generateKeys, signPatch } from '../build/sign.js';
import { HotpatchError } from '../errors.js';
import { parseModule } from '../format/module.js';
import { trustKey } from '../format/signature.js';
import type { PlaygroundConfig } from './browser/page.js';

/** Options of `startPlayground`. */
export interface PlaygroundOptions {
  /** TCP port on 127.0.0.1 (default 0: any free port). */
  readonly port?: number;
  /** More public keys (PEM) the page's guest trusts, beside the session key. */
  readonly trustedKeys?: readonly string[];
  /**
   * More host names to answer to besides 127.0.0.1 and localhost (it still listens on 127.0.0.1
   * alone). Under any other name the page is not a secure context: browsers withhold WebCrypto,
   * and the page shows the engine's E_NO_WEBCRYPTO.
   */
  readonly names?: readonly string[];
}

/** A running playground server. */
export interface Playground {
  readonly url: string;
  /** Id of the key made for this session, which signs the patches the page offers. */
  readonly keyId: string;
  close(): Promise<void>;
}

interface Asset {
  readonly type: string;
  readonly body: Uint8Array | string;
}

// From src/playground or dist/playground alike: the sources the page is built from, and the service.
const root = new URL('../../', import.meta.url);
const browserDir = new URL('src/playground/browser/', root);
const serviceDir = new URL('patches/account-service/', root);
const wasm = 'application/wasm';
const headers = {
  // The engine runs under a strict policy: no inline script, Wasm compiles allowed, nothing from elsewhere.
  'content-security-policy': "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'",
  // Cross-origin isolation: browsers then time with 5 µs steps instead of 100 µs, and commits take a few µs.
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/** The page and its worker, bundled from source with the engine (and fflate) inside. */
async function bundle(): Promise<Record<string, Asset>> {
  const result = await build({
    entryPoints: { page: new URL('page.ts', browserDir).pathname, worker: new URL('worker.ts', browserDir).pathname },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    outdir: '/',
    logLevel: 'silent',
  });
  return Object.fromEntries(result.outputFiles.map((f) => [f.path, { type: 'text/javascript; charset=utf-8', body: f.contents }]));
}

/** A copy of signed bytes with one byte of the patch's code changed, as an attacker in the middle would. */
function tamper(signed: Uint8Array): Uint8Array {
  const copy = signed.slice();
  const body = parseModule(signed).bodies[0]!;
  copy[body.codeStart + Math.floor((body.end - body.codeStart) / 2)]! ^= 0x01;
  return copy;
}

async function assets(extraKeys: readonly string[]): Promise<{ assets: Map<string, Asset>; keyId: string }> {
  const read = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, serviceDir)));
  const session = generateKeys();
  const fix = read('fix-name-overflow.patch.wasm');
  const signed = await signPatch(fix, session.privateKey);
  const signedC = await signPatch(read('fix-name-overflow-c.patch.wasm'), session.privateKey);
  for (const pem of extraKeys) await trustKey(pem); // a bad key fails here, not in the page
  const downloads: PlaygroundConfig['downloads'] = [
    { url: '/patches/fix-name-overflow.signed.wasm', file: 'fix-name-overflow.signed.wasm', label: 'the hand-written fix, signed with the session key: applied' },
    { url: '/patches/fix-name-overflow-c.signed.wasm', file: 'fix-name-overflow-c.signed.wasm', label: 'the same fix made by diff from fixed C source, signed: applied' },
    { url: '/patches/fix-name-overflow.tampered.wasm', file: 'fix-name-overflow.tampered.wasm', label: 'signed, then one byte changed: refused (E_BAD_SIGNATURE)' },
    { url: '/patches/fix-name-overflow.unsigned.wasm', file: 'fix-name-overflow.unsigned.wasm', label: 'not signed: refused (E_UNSIGNED)' },
  ];
  const config: PlaygroundConfig = {
    baseline: '/service.baseline.wasm',
    fix: { name: 'fix-name-overflow', url: '/patches/fix-name-overflow.signed.wasm' },
    trustedKeys: [session.publicKey, ...extraKeys],
    downloads,
  };
  const bundled = await bundle();
  const assets = new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: readFileSync(new URL('index.html', browserDir)) }],
    ['/favicon.svg', { type: 'image/svg+xml', body: readFileSync(new URL('favicon.svg', browserDir)) }],
    ['/style.css', { type: 'text/css; charset=utf-8', body: readFileSync(new URL('style.css', browserDir)) }],
    ['/page.js', bundled['/page.js']!],
    ['/worker.js', bundled['/worker.js']!],
    ['/config.json', { type: 'application/json', body: JSON.stringify(config) }],
    ['/service.baseline.wasm', { type: wasm, body: read('service.baseline.wasm') }],
    ['/patches/fix-name-overflow.signed.wasm', { type: wasm, body: signed.bytes }],
    ['/patches/fix-name-overflow-c.signed.wasm', { type: wasm, body: signedC.bytes }],
    ['/patches/fix-name-overflow.tampered.wasm', { type: wasm, body: tamper(signed.bytes) }],
    ['/patches/fix-name-overflow.unsigned.wasm', { type: wasm, body: fix }],
  ]);
  return { assets, keyId: signed.keyId };
}

function respond(assets: Map<string, Asset>, names: readonly string[], port: () => number) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // Loopback only, and only under its own names: a rebound DNS name gets nothing.
    if (!names.some((name) => req.headers.host === `${name}:${port()}`)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('misdirected request\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const asset = assets.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!asset) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': asset.type, 'content-length': Buffer.byteLength(asset.body) });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  };
}

/**
 * Serves the browser playground on 127.0.0.1: the account service running on the engine in a
 * Web Worker, patches signed with a key made for the session, and that key trusted by the page.
 * @throws HotpatchError E_BAD_SIGNATURE (a trusted key that is no Ed25519 public key), E_IO (the port is taken)
 */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const { assets: served, keyId } = await assets(options.trustedKeys ?? []);
  let port = 0;
  const server = createServer(respond(served, ['127.0.0.1', 'localhost', ...(options.names ?? [])], () => port));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: Error) => reject(new HotpatchError('E_IO', `cannot listen on 127.0.0.1:${options.port ?? 0}: ${cause.message}`, { cause })));
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    keyId,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
