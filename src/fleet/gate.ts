import type { HostsSnapshot } from './hosts.js';
import type { Release, RingSpec } from './types.js';

/** How a ring of a release stands against its gate. */
export interface GateReading {
  readonly ring: string;
  /** Online hosts of the ring whose baseline the release carries a patch for. */
  readonly eligible: number;
  /** Of those, applied the release's patch and healthy. */
  readonly good: number;
  /** Hosts of the ring (online or not) that rolled the release's patch back or could not apply it. */
  readonly failures: number;
  /** Whether the share of good hosts reaches the ring's `minShare` (a ring with no eligible host holds). */
  readonly holds: boolean;
  /** Set when failures passed the ring's limit: why. */
  readonly failed?: string;
}

/** Reads a ring's gate from the hosts' reports: a pure function, so two controllers read the same. */
export function readGate(release: Release, ring: RingSpec, snapshot: HostsSnapshot): GateReading {
  const patchFor = new Map(release.patches.map((p) => [p.baseline, p.id]));
  let eligible = 0;
  let good = 0;
  const failed: string[] = [];
  for (const host of snapshot.hosts) {
    if (host.ring !== ring.name) continue;
    const patch = patchFor.get(host.baseline);
    if (patch === undefined) continue;
    const ours = host.release === release.id && host.desired === patch;
    if (ours && (host.state === 'rolled-back' || host.state === 'apply-failed')) failed.push(`${host.host} (${host.state}: ${host.reason ?? 'no reason given'})`);
    if (!snapshot.online.has(host.host)) continue;
    eligible++;
    if (ours && host.state === 'applied' && host.healthy && host.applied.some((a) => a.id === patch)) good++;
  }
  const holds = eligible === 0 || good / eligible >= ring.minShare;
  return {
    ring: ring.name,
    eligible,
    good,
    failures: failed.length,
    holds,
    ...(failed.length > ring.maxFailures
      ? { failed: `${failed.length} host${failed.length === 1 ? '' : 's'} failed (limit ${ring.maxFailures}): ${failed.slice(0, 5).join('; ')}${failed.length > 5 ? '; …' : ''}` }
      : {}),
  };
}
