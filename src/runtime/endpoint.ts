import { timingSafeEqual } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HotpatchError } from '../errors.js';
import { claimSocketPath, listenOwnerOnly } from './_socket.js';
import { escapeForLog, loggablePath, throttledLog } from './_log.js';
import { recordedChange, type EndpointGuest } from './_recorded.js';
import type { PatchStore } from './store.js';

export type { EndpointGuest } from './_recorded.js';

/** Where and how a control endpoint listens, and what it accepts. */
export interface EndpointOptions {
  /** A Unix socket path, owner-only (0600) from its creation: only this user can connect. */
  readonly socket?: string;
  /** A loopback TCP port (127.0.0.1): then `token` is required. */
  readonly port?: number;
  /** Bearer token every request must carry (required with `port`). */
  readonly token?: string;
  /** Largest request body, in bytes (default 16 MiB). */
  readonly maxBody?: number;
  /** Authenticated requests per second, per peer (an address; a connection over a Unix socket) (default 50). */
  readonly rate?: number;
  /** Connections held at once (default 64); past it a new one evicts the oldest idle one. */
  readonly maxConnections?: number;
  /** Milliseconds to send the request headers (default 5000), the whole request (default 30 000), and a connection may sit idle (default 5000). */
  readonly timeouts?: { readonly headers?: number; readonly request?: number; readonly idle?: number };
  /** Where refusals and changes are logged (default: stderr), at most 20 lines a second. */
  readonly log?: (line: string) => void;
  /** Record the patch level here after every change (see PatchStore): a change and its record are one step. */
  readonly store?: PatchStore;
}

/** A running control endpoint. */
export interface Endpoint {
  /** `unix:<path>` or `http://127.0.0.1:<port>`. */
  readonly address: string;
  /** Connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

/** A refusal by the endpoint itself (not the guest): an HTTP status and a stable code. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: 'E_REFUSED' | 'E_USAGE',
    message: string,
  ) {
    super(message);
  }
}

/** HTTP status of a guest's or store's error. */
function statusOf(error: HotpatchError): number {
  switch (error.code) {
    case 'E_UNKNOWN_PATCH':
      return 404;
    case 'E_TIMEOUT':
      return 504;
    case 'E_GUEST_STUCK':
      return 503;
    case 'E_IO':
    case 'E_STORE_CORRUPT':
      return 500;
    default:
      return 422;
  }
}

/**
 * Holds at most `cap` connections. At the cap, a new connection evicts the oldest one with no
 * request in progress (a silent or idle one), so whoever holds connections open without using
 * them cannot lock the operator out; only when every connection is busy is the newcomer closed.
 */
function capConnections(server: Server, cap: number): () => number {
  const open = new Map<Socket, { busy: boolean }>(); // insertion order: oldest first
  server.on('connection', (socket: Socket) => {
    open.set(socket, { busy: false });
    socket.once('close', () => open.delete(socket));
    if (open.size <= cap) return;
    for (const [old, state] of open) {
      if (old !== socket && !state.busy) {
        open.delete(old);
        old.destroy();
        return;
      }
    }
    open.delete(socket);
    socket.destroy();
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = open.get(req.socket);
    if (!state) return;
    state.busy = true;
    res.once('close', () => (state.busy = false));
  });
  return () => open.size;
}

/** Reads a body up to `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared <= max)) return reject(new Refusal(413, 'E_REFUSED', `body of ${req.headers['content-length']} bytes is over the limit of ${max}`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        reject(new Refusal(413, 'E_REFUSED', `body over the limit of ${max} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** The patch id in `/patches/<id>/<verb>`, decoded. */
function patchId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new Refusal(400, 'E_USAGE', 'malformed %-escape in the patch id');
  }
}

/**
 * Exposes a guest of any kind to other processes of this machine: `GET /status`, `POST /patches`
 * (the patch bytes as the body: load), `POST /patches/<id>/apply`, `POST /patches/<id>/revert`.
 * Requests are authenticated first, then limited per connection; slow, idle, oversized and
 * malformed ones are refused; refusals are logged escaped, throttled, and without any token. The
 * guest's own policy (trusted keys, signatures) applies to every patch that arrives, and with a
 * store each change and its record are one step.
 * @throws HotpatchError E_USAGE (no socket or port; a port without a token), E_ENDPOINT_IN_USE
 */
export async function serveEndpoint(guest: EndpointGuest, options: EndpointOptions): Promise<Endpoint> {
  if ((options.socket === undefined) === (options.port === undefined)) throw new HotpatchError('E_USAGE', 'a control endpoint needs exactly one of a socket path or a port');
  if (options.port !== undefined && !options.token) throw new HotpatchError('E_USAGE', 'a TCP control endpoint needs a bearer token');
  const log = throttledLog(options.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const maxBody = options.maxBody ?? 16 * 2 ** 20;
  const rate = options.rate ?? 50;
  const token = options.token ? Buffer.from(`Bearer ${options.token}`) : undefined;
  // A peer is its address over TCP; over a Unix socket (no address) each connection is one.
  const byAddress = new Map<string, { tokens: number; at: number }>();
  const byConnection = new WeakMap<Socket, { tokens: number; at: number }>();
  const change = recordedChange(guest, options.store, log);

  const authenticated = (req: IncomingMessage): boolean => {
    if (!token) return true;
    const given = Buffer.from(String(req.headers.authorization ?? ''));
    return given.length === token.length && timingSafeEqual(given, token);
  };

  const charge = (socket: Socket): void => {
    const now = performance.now();
    const address = socket.remoteAddress;
    const b = (address ? byAddress.get(address) : byConnection.get(socket)) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (address) {
      if (byAddress.size > 1024) byAddress.clear(); // only authenticated peers get here: a bound, not a policy
      byAddress.set(address, b);
    } else byConnection.set(socket, b);
    if (b.tokens < 1) throw new Refusal(429, 'E_REFUSED', 'too many requests from this peer');
    b.tokens -= 1;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<[number, unknown]> => {
    // Authenticate before anything is counted: an unauthenticated flood spends no one's budget.
    if (!authenticated(req)) {
      res.shouldKeepAlive = false;
      throw new Refusal(401, 'E_REFUSED', 'missing or wrong bearer token');
    }
    charge(req.socket);
    const path = (req.url ?? '/').split('?')[0]!;
    const route = path.split('/').filter(Boolean);
    if (req.method === 'GET' && path === '/status') return [200, await guest.status()];
    if (req.method === 'POST' && path === '/patches') return [201, await change.load(await readBody(req, maxBody))];
    if (req.method === 'POST' && route.length === 3 && route[0] === 'patches' && (route[2] === 'apply' || route[2] === 'revert')) {
      const id = patchId(route[1]!);
      return [200, route[2] === 'apply' ? await change.apply(id) : await change.revert(id)];
    }
    throw new Refusal(404, 'E_REFUSED', `no such request: ${req.method} ${path}`);
  };

  const respond = (res: ServerResponse, status: number, value: unknown): void => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(res.shouldKeepAlive ? {} : { connection: 'close' }) });
    res.end(text);
  };

  const server = createServer((req, res) => {
    const what = `${escapeForLog(req.method ?? '?', 16)} ${loggablePath(req.url)}`;
    handle(req, res).then(
      ([status, value]) => respond(res, status, value),
      (error: unknown) => {
        if (error instanceof Refusal) {
          log(`refused ${what}: ${error.status} ${escapeForLog(error.message)}`);
          respond(res, error.status, { error: { code: error.code, message: error.message } });
        } else if (error instanceof HotpatchError) {
          log(`refused ${what}: ${error.code} ${escapeForLog(error.message.split('\n')[0]!)}`);
          respond(res, statusOf(error), { error: error.toJSON() });
        } else {
          log(`error in ${what}: ${escapeForLog(String((error as Error)?.message))}`);
          respond(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error' } });
        }
      },
    );
  });
  const t = options.timeouts ?? {};
  server.headersTimeout = t.headers ?? 5_000;
  server.requestTimeout = t.request ?? 30_000;
  server.keepAliveTimeout = t.idle ?? 5_000;
  server.timeout = t.idle ?? 5_000; // a connection that sends nothing at all
  server.maxHeadersCount = 32;
  const connections = capConnections(server, options.maxConnections ?? 64);
  // Node checks the header and request timeouts on this interval (30 s by default).
  (server as unknown as { connectionsCheckingInterval: number }).connectionsCheckingInterval = 500;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable) socket.end(`HTTP/1.1 ${error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400} ${error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'Request Timeout' : 'Bad Request'}\r\nconnection: close\r\n\r\n`);
    socket.destroy();
  });

  let address: string;
  if (options.socket) {
    await claimSocketPath(options.socket);
    await listenOwnerOnly(server, options.socket);
    chmodSync(options.socket, 0o600);
    address = `unix:${options.socket}`;
  } else {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }
  return {
    address,
    get connections() {
      return connections();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
