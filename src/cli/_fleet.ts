import { readFileSync } from 'node:fs';
import { HotpatchError } from '../errors.js';
import { type FleetConnectOptions, type FleetConnection, joinFleet } from '../fleet/connection.js';

/** Arguments every fleet command shares: where the server is, and whose credentials. */
export const fleetArgs = {
  server: { type: 'string', value: 'url', description: "NATS server URL (default: the credentials file's, else HOTPATCH_FLEET, else nats://127.0.0.1:4222)" },
  creds: { type: 'string', value: 'file', description: 'a credentials file written by `wasm-hotpatch fleet init`' },
} as const;

/**
 * Connection options from the shared arguments.
 * @throws HotpatchError E_IO (unreadable credentials)
 */
export function connectOptions(args: { server?: string; creds?: string }, name: string): FleetConnectOptions {
  let creds: { servers?: string; user?: string; pass?: string; inboxPrefix?: string } = {};
  if (args.creds) {
    try {
      creds = JSON.parse(readFileSync(args.creds, 'utf8'));
    } catch (cause) {
      throw new HotpatchError('E_IO', `cannot read credentials ${args.creds}: ${(cause as Error).message}`, { cause });
    }
  }
  const servers = args.server ?? creds.servers ?? process.env.HOTPATCH_FLEET ?? 'nats://127.0.0.1:4222';
  return { servers, name, ...(creds.user ? { user: creds.user, pass: creds.pass ?? '' } : {}), ...(creds.inboxPrefix ? { inboxPrefix: creds.inboxPrefix } : {}) };
}

/** Runs a body with an open fleet, closing it after. */
export async function withFleet<T>(args: { server?: string; creds?: string }, name: string, body: (fleet: FleetConnection) => Promise<T>): Promise<T> {
  const fleet = await joinFleet(connectOptions(args, name));
  try {
    return await body(fleet);
  } finally {
    await fleet.close();
  }
}

/**
 * A duration: a number of milliseconds, or a number with ms, s, m, h or d.
 * @throws HotpatchError E_USAGE
 */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new HotpatchError('E_USAGE', `${what}: "${text}" is not a duration (e.g. 500ms, 30s, 10m, 2h, 3d)`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms'];
  return Number(m[1]) * unit;
}

/** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
