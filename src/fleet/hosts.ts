import type { KV } from '@nats-io/kv';
import type { FleetConnection } from './connection.js';
import { decodeDoc, type HostStatus } from './types.js';

/** What the fleet knows of its hosts at one moment: their last reports, and which are present now. */
export interface HostsSnapshot {
  readonly hosts: readonly HostStatus[];
  /** Hosts whose heartbeat has not expired. */
  readonly online: ReadonlySet<string>;
  readonly at: number;
}

async function keysOf(kv: KV): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}

/** Reads every host's last status and the presence bucket (expired heartbeats are gone from it). */
export async function readHosts(fleet: FleetConnection): Promise<HostsSnapshot> {
  const [statusKeys, presentKeys] = await Promise.all([keysOf(fleet.status), keysOf(fleet.presence)]);
  const entries = await Promise.all(statusKeys.map((k) => fleet.status.get(k)));
  const hosts: HostStatus[] = [];
  for (const entry of entries) {
    if (entry?.operation !== 'PUT') continue;
    try {
      hosts.push(decodeDoc<HostStatus>(entry.value, `status of ${entry.key}`));
    } catch {
      // A host's key that is not a status document is left out (and visible in the bucket).
    }
  }
  hosts.sort((a, b) => a.host.localeCompare(b.host));
  return { hosts, online: new Set(presentKeys), at: Date.now() };
}
