import { HotpatchError } from '../errors.js';

/** Names of the JetStream buckets and subjects a fleet lives in (fixed, so credentials can name them). */
export const BUCKETS = {
  /** KV, history kept: `release.<id>` (a release and its progress), `ring.<name>` (what a ring's hosts should run). */
  desired: 'fleet_desired',
  /** KV: `<host>`, each host's last report (kept while the host is away, so the report can name it). */
  status: 'fleet_status',
  /** KV with a TTL: `<host>`, heartbeats; a host whose entry expired is offline. */
  presence: 'fleet_presence',
  /** Object store: patch bytes, named by their SHA-256. */
  patches: 'fleet_patches',
  /** Stream of every change: `fleet.audit.controller.<what>`, `fleet.audit.host.<host>`. */
  audit: 'FLEET_AUDIT',
} as const;

/** The audit stream's subjects. */
export const AUDIT_SUBJECT = 'fleet.audit';

/** One patch a release carries: the build for one baseline. */
export interface PatchRef {
  /** The baseline id the patch was built for. */
  readonly baseline: string;
  readonly id: string;
  readonly sequence: number;
  /** SHA-256 (hex) of the patch bytes; also the object's name in the patch store. */
  readonly sha256: string;
  readonly size: number;
}

/** A ring of a release: its hosts are those whose agent announces this ring name. */
export interface RingSpec {
  readonly name: string;
  /** How long the gate must hold (applied and healthy share at or above `minShare`) before promotion. */
  readonly soakMs: number;
  /** Share of eligible, online hosts that must be applied and healthy (0..1). */
  readonly minShare: number;
  /** The gate fails when more hosts than this rolled back or failed to apply. */
  readonly maxFailures: number;
  /** Time to wait after the previous ring was promoted before this one starts (Autopatch's deferral). */
  readonly deferMs: number;
}

/** Where a release is. */
export type ReleaseState = 'rolling' | 'paused' | 'complete' | 'rolled-back';

/** Progress of one ring within a release. */
export interface RingProgress {
  /** When the controller wrote the ring's desired state (ISO time). */
  readonly openedAt?: string;
  /** Since when the gate has held without a break. */
  readonly holdingSince?: string;
  readonly promotedAt?: string;
  readonly rolledBackAt?: string;
  readonly failed?: string;
}

/** A release: patches for one or more baselines, rolled out ring by ring. The controller's only state. */
export interface Release {
  readonly id: string;
  readonly description: string;
  readonly patches: readonly PatchRef[];
  readonly rings: readonly RingSpec[];
  /** Roll a ring back by itself when its gate fails (else only pause). */
  readonly rollbackOnFailure: boolean;
  readonly state: ReleaseState;
  /** Index of the ring being rolled out (rings before it were promoted); `rings.length` when complete. */
  readonly current: number;
  readonly progress: Readonly<Record<string, RingProgress>>;
  readonly createdAt: string;
  readonly completedAt?: string;
  readonly reason?: string;
}

/** What a ring's hosts should run: written by the controller only. */
export interface RingDesired {
  readonly ring: string;
  readonly release: string;
  /** `apply`: run the patch for your baseline; `revert`: take this release's patch back out. */
  readonly action: 'apply' | 'revert';
  readonly patches: readonly PatchRef[];
  readonly at: string;
}

/** A host's state against its ring's desired state (livepatch's machine states). */
export type HostState = 'idle' | 'unapplied' | 'applied' | 'apply-failed' | 'rolled-back' | 'needs-check' | 'not-eligible';

/** A host's own report: written by its agent only, to its own key. */
export interface HostStatus {
  readonly host: string;
  readonly ring: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly baseline: string;
  /** Patches applied now, bottom first (the host's applied level). */
  readonly applied: readonly { readonly id: string; readonly sequence: number }[];
  /** The release the ring's desired state names, and the patch meant for this host. */
  readonly release?: string;
  readonly desired?: string;
  readonly state: HostState;
  /** Why, for every state but applied and idle: an error code and message, or what is needed. */
  readonly reason?: string;
  /** The host's own health verdict (its probe and trap watch). */
  readonly healthy: boolean;
  /** When the state last changed (ISO). */
  readonly since: string;
  readonly at: string;
}

/** A heartbeat: present while the host is up; the bucket's TTL removes it when the host stops. */
export interface Presence {
  readonly host: string;
  readonly at: string;
}

const HOST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Checks a host id or ring name: it becomes part of a subject and a credential, so only
 * letters, digits, `-` and `_`.
 * @throws HotpatchError E_USAGE
 */
export function checkName(what: string, name: string): string {
  if (!HOST_ID.test(name)) throw new HotpatchError('E_USAGE', `${what} "${name}" must be 1–64 letters, digits, - or _`);
  return name;
}

/**
 * Decodes a JSON document from a bucket.
 * @throws HotpatchError E_STORE_CORRUPT
 */
export function decodeDoc<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (cause) {
    throw new HotpatchError('E_STORE_CORRUPT', `${what} is not valid JSON`, { cause });
  }
}

/** Encodes a document for a bucket. */
export const encodeDoc = (doc: unknown): string => JSON.stringify(doc);
