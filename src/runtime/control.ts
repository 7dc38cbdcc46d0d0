import { timingSafeEqual } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Guest } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import type { PatchStore } from './store.js';

/** Where and how a control endpoint listens, and what it accepts. */
export interface ControlOptions {
  /** A Unix socket path, created owner-only (0600): only this user can connect. */
  readonly socket?: string;
  /** A loopback TCP port (127.0.0.1): then `token` is required. */
  readonly port?: number;
  /** Bearer token every request must carry (required with `port`). */
  readonly token?: string;
  /** Largest request body, in bytes (default 16 MiB). */
  readonly maxBody?: number;
  /** Requests per second, all clients together (default 50). */
  readonly rate?: number;
  /** Where refusals and changes are logged (default: stderr). */
  readonly log?: (line: string) => void;
  /** Record the patch level here after every change (see PatchStore). */
  readonly store?: PatchStore;
}

/** A running control endpoint. */
export interface ControlServer {
  /** `unix:<path>` or `http://127.0.0.1:<port>`. */
  readonly address: string;
  close(): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Exposes a guest to other processes of this machine: `GET /status`, `POST /patches` (the patch
 * bytes as the body: load), `POST /patches/<id>/apply`, `POST /patches/<id>/revert`. Unauthenticated,
 * oversized, too frequent and malformed requests are refused and logged. The guest's own policy
 * (trusted keys, signatures) applies to every patch that arrives.
 * @throws HotpatchError E_USAGE (no socket or port; a port without a token)
 */
export async function serveControl(guest: Guest, options: ControlOptions): Promise<ControlServer> {
  if ((options.socket === undefined) === (options.port === undefined)) throw new HotpatchError('E_USAGE', 'a control endpoint needs exactly one of a socket path or a port');
  if (options.port !== undefined && !options.token) throw new HotpatchError('E_USAGE', 'a TCP control endpoint needs a bearer token');
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxBody = options.maxBody ?? 16 * 2 ** 20;
  const rate = options.rate ?? 50;
  const token = options.token ? Buffer.from(`Bearer ${options.token}`) : undefined;
  const loaded = new Map<string, Uint8Array>(); // bytes of the patches loaded here, for the store
  let tokens = rate;
  let refilled = performance.now();

  const body = (req: IncomingMessage): Promise<Uint8Array> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) return reject(new Refusal(413, `body of ${declared} bytes is over the limit of ${maxBody}`));
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) {
          reject(new Refusal(413, `body over the limit of ${maxBody} bytes`));
          req.destroy();
        } else chunks.push(chunk);
      });
      req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
      req.on('error', reject);
    });

  const record = (): void => {
    if (!options.store) return;
    const applied = guest.status().patches.filter((p) => p.state === 'applied');
    options.store.record(guest.manifest.id, applied.filter((p) => loaded.has(p.id)).map((p) => ({ id: p.id, bytes: loaded.get(p.id)! })));
  };

  const handle = async (req: IncomingMessage): Promise<[number, unknown]> => {
    const now = performance.now();
    tokens = Math.min(rate, tokens + ((now - refilled) / 1000) * rate);
    refilled = now;
    if (tokens < 1) throw new Refusal(429, 'too many requests');
    tokens -= 1;
    if (token) {
      const given = Buffer.from(String(req.headers.authorization ?? ''));
      if (given.length !== token.length || !timingSafeEqual(given, token)) throw new Refusal(401, 'missing or wrong bearer token');
    }
    const url = new URL(req.url ?? '/', 'http://control');
    const route = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/status') return [200, guest.status()];
    if (req.method === 'POST' && url.pathname === '/patches') {
      const bytes = await body(req);
      const patch = await guest.load(bytes);
      loaded.set(patch.id, bytes);
      log(`loaded patch "${patch.id}"`);
      return [201, { id: patch.id, sequence: patch.sequence, targets: patch.targets }];
    }
    if (req.method === 'POST' && route.length === 3 && route[0] === 'patches' && (route[2] === 'apply' || route[2] === 'revert')) {
      const id = decodeURIComponent(route[1]!);
      const started = performance.now();
      if (route[2] === 'apply') guest.apply(id);
      else guest.revert(id);
      record();
      log(`${route[2] === 'apply' ? 'applied' : 'reverted'} patch "${id}"`);
      return [200, { id, state: guest.patch(id)?.state, milliseconds: performance.now() - started, commitMilliseconds: guest.lastCommit }];
    }
    throw new Refusal(404, `no such request: ${req.method} ${url.pathname}`);
  };

  const respond = (res: ServerResponse, status: number, value: unknown): void => {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const server = createServer((req, res) => {
    handle(req).then(
      ([status, value]) => respond(res, status, value),
      (error: unknown) => {
        if (error instanceof Refusal) {
          log(`refused ${req.method} ${req.url}: ${error.status} ${error.message}`);
          respond(res, error.status, { error: { code: 'E_REFUSED', message: error.message } });
        } else if (error instanceof HotpatchError) {
          log(`refused ${req.method} ${req.url}: ${error.code} ${error.message.split('\n')[0]}`);
          respond(res, error.code === 'E_UNKNOWN_PATCH' ? 404 : 422, { error: error.toJSON() });
        } else {
          log(`error in ${req.method} ${req.url}: ${(error as Error)?.message}`);
          respond(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error' } });
        }
      },
    );
  });
  server.requestTimeout = 10_000;
  server.maxHeadersCount = 32;

  let address: string;
  if (options.socket) {
    rmSync(options.socket, { force: true });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.socket, resolve));
    chmodSync(options.socket, 0o600);
    address = `unix:${options.socket}`;
  } else {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    address = `http://127.0.0.1:${port}`;
  }
  return {
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A client of a control endpoint (`unix:<path>`, a socket path, or `http://127.0.0.1:<port>`).
 * @throws HotpatchError with the endpoint's error, E_IO when it cannot be reached
 */
export async function controlRequest(endpoint: string, method: 'GET' | 'POST', path: string, options: { body?: Uint8Array; token?: string } = {}): Promise<unknown> {
  const { request } = await import('node:http');
  const socketPath = endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint.startsWith('http') ? undefined : endpoint;
  const url = socketPath ? new URL(path, 'http://localhost') : new URL(path, endpoint);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method,
        ...(socketPath ? { socketPath, path } : { hostname: url.hostname, port: url.port, path: url.pathname }),
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.body ? { 'content-type': 'application/wasm', 'content-length': options.body.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let value: { error?: { code: string; message: string; problems?: [] } } | undefined;
          try {
            value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return reject(new HotpatchError('E_IO', `the endpoint answered ${res.statusCode} with no JSON`));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = value?.error;
            return reject(new HotpatchError((e?.code as never) ?? 'E_IO', e?.message ?? `status ${res.statusCode}`, { problems: e?.problems ?? [] }));
          }
          resolve(value);
        });
      },
    );
    req.on('error', (cause) => reject(new HotpatchError('E_IO', `cannot reach ${endpoint}: ${cause.message}`, { cause })));
    req.end(options.body);
  });
}
