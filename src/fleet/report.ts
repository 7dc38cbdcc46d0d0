import { HotpatchError } from '../errors.js';
import type { FleetConnection } from './connection.js';
import { type HostsSnapshot, readHosts } from './hosts.js';
import { listReleases } from './release.js';
import type { HostState, Release } from './types.js';

/** A host's state in a compliance report: its own report's state, or offline. */
export type ReportState = Exclude<HostState, 'idle'> | 'offline';

/** Report states in the order tables and charts show them. */
export const REPORT_STATES: readonly ReportState[] = ['applied', 'unapplied', 'apply-failed', 'rolled-back', 'needs-check', 'not-eligible', 'offline'];

/** One host in a compliance report. */
export interface ReportHost {
  readonly host: string;
  readonly ring: string;
  readonly baseline: string;
  /** The release the host's ring asks for now (a newer or older one than the report's, possibly). */
  readonly release?: string;
  readonly state: ReportState;
  /** The patch this host should run for the release (none when not eligible). */
  readonly patch?: string;
  /** The host's applied level: its newest applied patch. */
  readonly level?: string;
  readonly reason?: string;
  /** When the host last reported (offline hosts: when they were last heard). */
  readonly lastSeen: string;
}

/** Hosts by ring, baseline and state against one release, with what it took to get there. */
export interface ComplianceReport {
  readonly at: string;
  readonly release?: Pick<Release, 'id' | 'state' | 'createdAt' | 'completedAt' | 'description'> & { readonly ring?: string };
  readonly hosts: readonly ReportHost[];
  readonly byRing: readonly { readonly ring: string; readonly counts: Readonly<Record<ReportState, number>> }[];
  readonly byBaseline: readonly { readonly baseline: string; readonly patch?: string; readonly counts: Readonly<Record<ReportState, number>> }[];
  /** Online hosts the release carries a patch for. */
  readonly eligible: number;
  /** Of those, running the patch. */
  readonly compliant: number;
  readonly objective: number;
  /** Milliseconds from the release's creation until `objective` of eligible hosts ran it (if reached). */
  readonly timeToObjective?: number;
  /** Share of eligible hosts compliant over time since the release: [ms, share] points. */
  readonly curve: readonly (readonly [number, number])[];
}

const zero = (): Record<ReportState, number> => Object.fromEntries(REPORT_STATES.map((s) => [s, 0])) as Record<ReportState, number>;

/** Each host's state against a release, from the hosts' reports. */
function hostRows(release: Release | undefined, snapshot: HostsSnapshot): ReportHost[] {
  const patchFor = new Map(release?.patches.map((p) => [p.baseline, p.id]) ?? []);
  return snapshot.hosts.map((h) => {
    const patch = patchFor.get(h.baseline);
    const level = h.applied[h.applied.length - 1]?.id;
    const base = { host: h.host, ring: h.ring, baseline: h.baseline, ...(h.release ? { release: h.release } : {}), ...(patch ? { patch } : {}), ...(level ? { level } : {}), lastSeen: h.at };
    if (!snapshot.online.has(h.host)) return { ...base, state: 'offline', reason: `last heard ${h.at} (${h.state}${h.reason ? `: ${h.reason}` : ''})` };
    if (release && !patch) return { ...base, state: 'not-eligible', reason: `needs baseline ${[...patchFor.keys()].join(' or ')}` };
    if (patch && h.applied.some((a) => a.id === patch)) return h.healthy ? { ...base, state: 'applied' } : { ...base, state: 'needs-check', reason: h.reason ?? 'the host reports itself unhealthy' };
    if (release && h.release === release.id && h.state !== 'idle' && h.state !== 'applied') return { ...base, state: h.state, ...(h.reason ? { reason: h.reason } : {}) };
    return { ...base, state: 'unapplied', ...(release && h.release !== release.id ? { reason: `ring ${h.ring} not reached yet` } : {}) };
  });
}

/** When each compliant host got there, as the share of eligible hosts over time since the release. */
function curveOf(release: Release | undefined, rows: readonly ReportHost[], snapshot: HostsSnapshot, eligible: number): [number, number][] {
  if (!release || eligible === 0) return [];
  const start = Date.parse(release.createdAt);
  const since = new Map(snapshot.hosts.map((h) => [h.host, Date.parse(h.since)]));
  const times = rows
    .filter((r) => r.state === 'applied')
    .map((r) => Math.max(0, (since.get(r.host) ?? start) - start))
    .sort((a, b) => a - b);
  return times.map((t, i) => [t, (i + 1) / eligible]);
}

/** Builds a compliance report from a snapshot: a pure function (the CLI, the demo and tests share it). */
export function complianceOf(release: Release | undefined, snapshot: HostsSnapshot, objective = 0.95): ComplianceReport {
  const rows = hostRows(release, snapshot);
  const byRing = new Map<string, Record<ReportState, number>>();
  const byBaseline = new Map<string, Record<ReportState, number>>();
  for (const row of rows) {
    (byRing.get(row.ring) ?? byRing.set(row.ring, zero()).get(row.ring)!)[row.state]++;
    (byBaseline.get(row.baseline) ?? byBaseline.set(row.baseline, zero()).get(row.baseline)!)[row.state]++;
  }
  const ringOrder = release?.rings.map((r) => r.name) ?? [];
  const rank = (ring: string): number => (ringOrder.includes(ring) ? ringOrder.indexOf(ring) : ringOrder.length);
  const eligible = rows.filter((r) => r.patch !== undefined && r.state !== 'offline').length;
  const compliant = rows.filter((r) => r.state === 'applied').length;
  const curve = curveOf(release, rows, snapshot, eligible);
  const reached = curve.find(([, share]) => share >= objective);
  const patchFor = new Map(release?.patches.map((p) => [p.baseline, p.id]) ?? []);
  return {
    at: new Date(snapshot.at).toISOString(),
    ...(release
      ? {
          release: {
            id: release.id,
            state: release.state,
            createdAt: release.createdAt,
            description: release.description,
            ...(release.completedAt ? { completedAt: release.completedAt } : {}),
            ...(release.rings[release.current] ? { ring: release.rings[release.current]!.name } : {}),
          },
        }
      : {}),
    hosts: rows,
    byRing: [...byRing].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)).map(([ring, counts]) => ({ ring, counts })),
    byBaseline: [...byBaseline].map(([baseline, counts]) => ({ baseline, ...(patchFor.get(baseline) ? { patch: patchFor.get(baseline)! } : {}), counts })),
    eligible,
    compliant,
    objective,
    ...(reached ? { timeToObjective: reached[0] } : {}),
    curve,
  };
}

/**
 * Reads the fleet and reports compliance against a release (default: the newest).
 * @throws HotpatchError E_USAGE (no such release)
 */
export async function complianceReport(fleet: FleetConnection, options: { release?: string; objective?: number } = {}): Promise<ComplianceReport> {
  const releases = await listReleases(fleet);
  const release = options.release ? releases.find((r) => r.id === options.release) : releases[releases.length - 1];
  if (options.release && !release) throw new HotpatchError('E_USAGE', `no release "${options.release}"`);
  return complianceOf(release, await readHosts(fleet), options.objective);
}
