import { createHash } from 'node:crypto';
import type { KvWatchEntry } from '@nats-io/kv';
import type { CommitOptions } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import type { PatchStore } from '../runtime/store.js';
import type { FleetConnection } from './connection.js';
import type { FleetGuest } from './guest.js';
import { appliedInOrder, HostLevel } from './_level.js';
import { checkName, decodeDoc, encodeDoc, type HostState, type HostStatus, type PatchRef, type RingDesired } from './types.js';

/** Options of `Agent.start`. */
export interface AgentOptions {
  /** The open fleet (`joinFleet`), with this host's credentials. */
  readonly fleet: FleetConnection;
  /** The guest this agent patches: it keeps its own policy (trusted keys, size, downgrades). */
  readonly guest: FleetGuest;
  /** This host's id (letters, digits, - and _): its status key and its credential. */
  readonly host: string;
  readonly ring: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** The host's patch store: restored at start, recorded after every change. */
  readonly store?: PatchStore | string;
  /** Health checks of every apply (probe, trap watch): a failure rolls back and is reported. */
  readonly applyOptions?: CommitOptions;
  /** The host's own health, asked at every heartbeat. */
  readonly health?: () => boolean;
  /** Heartbeat period (ms; default 5000): keep it under a third of the presence bucket's TTL. */
  readonly heartbeatMs?: number;
  /** Whether the fleet may revert this release's patch on this host (default true). */
  readonly allowRevert?: boolean;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

type Watch = AsyncIterable<KvWatchEntry> & { stop(): void };

interface Verdict {
  readonly state: HostState;
  readonly reason?: string;
}

/**
 * Joins a guest to a fleet: announces the host (ring, labels, baseline, applied level, health) with
 * heartbeats, watches its ring's desired state, fetches the patch built for its baseline, and
 * applies it through the guest's own policy and store, reporting what happened. Nothing the fleet
 * says can make the guest load a patch its policy refuses, or go below the level it runs.
 */
export class Agent extends EventTarget {
  readonly host: string;
  readonly ring: string;
  readonly #options: AgentOptions;
  readonly #fleet: FleetConnection;
  readonly #guest: FleetGuest;
  readonly #level: HostLevel;
  #desired: RingDesired | undefined;
  #status: HostStatus | undefined;
  /** Patches this host refused or could not apply, by id: not tried again for the same patch. */
  readonly #refused = new Map<string, Verdict>();
  #queue: Promise<void> = Promise.resolve();
  #pending = false;
  #unsaved = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #watch: Watch | undefined;

  private constructor(options: AgentOptions) {
    super();
    this.host = checkName('host id', options.host);
    this.ring = checkName('ring', options.ring);
    this.#options = options;
    this.#fleet = options.fleet;
    this.#guest = options.guest;
    this.#level = new HostLevel(options.store);
  }

  /**
   * Starts an agent: restores the host's recorded level, reports, and follows the ring's desired state.
   * @throws HotpatchError E_USAGE (bad host id or ring), E_STORE_UNSAFE, E_STORE_LOCKED, E_STORE_CORRUPT, E_DOWNGRADE (a recorded level below its floor), E_IO
   */
  static async start(options: AgentOptions): Promise<Agent> {
    const agent = new Agent(options);
    try {
      await agent.#level.restore(agent.#guest);
      agent.#guest.addEventListener('rolled-back', () => agent.#schedule());
      await agent.#beat();
      await agent.#startWatch();
    } catch (error) {
      // A host that could not join must not keep its store locked.
      agent.#watch?.stop();
      agent.#level.close();
      throw error;
    }
    agent.#schedule();
    agent.#timer = setInterval(() => void agent.#beat(), options.heartbeatMs ?? 5_000);
    agent.#timer.unref();
    return agent;
  }

  /** The last status this agent reported (or is about to). */
  get status(): HostStatus | undefined {
    return this.#status;
  }

  /** Resolves once every change seen so far has been handled and reported. */
  async settled(): Promise<void> {
    let queue: Promise<void>;
    do {
      queue = this.#queue;
      await queue;
    } while (queue !== this.#queue);
  }

  /** Stops heartbeats and the watch; the host's presence expires by itself, its last status stays. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watch?.stop();
    await this.settled();
    this.#level.close();
  }

  /** `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #startWatch(): Promise<void> {
    this.#watch = (await this.#fleet.desired.watch({ key: `ring.${this.ring}` })) as Watch;
    this.#follow(this.#watch).catch(async (error: unknown) => {
      // The client recovers its watches across reconnects; one that ends in an error is reported
      // and started again, so the host never silently stops following its ring.
      if (this.#closed) return;
      await this.#report({ state: 'needs-check', reason: `lost the watch on ring ${this.ring}: ${(error as Error).message}` }).catch(() => {});
      setTimeout(() => void this.#startWatch().catch(() => {}), 1_000).unref();
    });
  }

  async #follow(watch: Watch): Promise<void> {
    for await (const entry of watch) {
      if (entry.operation !== 'PUT') this.#desired = undefined;
      else {
        try {
          this.#desired = decodeDoc<RingDesired>(entry.value, `desired state of ring ${this.ring}`);
        } catch {
          this.#desired = undefined; // reported as needs-check by #decide
        }
      }
      this.#schedule();
    }
  }

  /** Queues one convergence; changes that arrive meanwhile fold into the next one. */
  #schedule(): void {
    if (this.#pending || this.#closed) return;
    this.#pending = true;
    this.#queue = this.#queue.then(async () => {
      this.#pending = false;
      try {
        await this.#converge();
      } catch (error) {
        await this.#report({ state: 'needs-check', reason: `agent error: ${(error as Error).message}` });
      }
    });
  }

  async #converge(): Promise<void> {
    const desired = this.#desired;
    const baseline = this.#guest.manifest.id;
    const mine = desired?.patches.find((p) => p.baseline === baseline);
    let verdict: Verdict;
    if (!desired) verdict = { state: 'idle' };
    else if (!mine) verdict = { state: 'not-eligible', reason: `not eligible: needs baseline ${[...new Set(desired.patches.map((p) => p.baseline))].join(' or ')} (this host runs ${baseline})` };
    else if (desired.action === 'revert') verdict = await this.#revert(desired, mine);
    else verdict = await this.#apply(mine);
    await this.#report(verdict);
  }

  async #revert(desired: RingDesired, mine: PatchRef): Promise<Verdict> {
    const status = await this.#guest.status();
    const reason = `release ${desired.release} rolled back in ring ${desired.ring}`;
    const own = status.patches.find((p) => p.id === mine.id);
    if (own?.state === 'rolled-back') return { state: 'rolled-back', reason: `its health checks rolled it back: ${own.rollback?.reason ?? 'no reason given'}; ${reason}` };
    if (own?.state !== 'applied') return { state: 'rolled-back', reason };
    if (this.#options.allowRevert === false) return { state: 'needs-check', reason: `${reason}, but this host does not let the fleet revert patches` };
    await this.#guest.revert(mine.id);
    await this.#level.record(this.#guest);
    await this.#audit('reverted', { patch: mine.id, release: desired.release });
    return { state: 'rolled-back', reason };
  }

  async #apply(mine: PatchRef): Promise<Verdict> {
    const status = await this.#guest.status();
    const known = status.patches.find((p) => p.id === mine.id);
    if (known?.state === 'applied') return { state: 'applied' };
    if (known?.state === 'rolled-back') return { state: 'rolled-back', reason: `its health checks rolled it back: ${known.rollback?.reason ?? 'no reason given'}` };
    const refused = this.#refused.get(mine.id);
    if (refused) return refused;
    const newer = appliedInOrder(status).find((p) => p.sequence > mine.sequence);
    if (newer) return this.#refuse(mine, `E_DOWNGRADE: sequence ${mine.sequence} is older than applied patch "${newer.id}" (sequence ${newer.sequence})`);
    let bytes: Uint8Array;
    try {
      bytes = await this.#fetch(mine);
    } catch (error) {
      // The bytes may come back (a store being repaired): ask again at the next heartbeat.
      return { state: 'needs-check', reason: describe(error) };
    }
    try {
      this.#level.admit(this.#guest.manifest.id, bytes);
      if (!known) await this.#guest.load(bytes);
      this.#level.loaded(bytes);
      await this.#guest.apply(mine.id, this.#options.applyOptions);
    } catch (error) {
      await this.#level.record(this.#guest);
      if (error instanceof HotpatchError && error.code === 'E_ROLLED_BACK') return { state: 'rolled-back', reason: describe(error) };
      return this.#refuse(mine, describe(error));
    }
    await this.#level.record(this.#guest);
    await this.#audit('applied', { patch: mine.id });
    return { state: 'applied' };
  }

  #refuse(mine: PatchRef, reason: string): Verdict {
    const verdict: Verdict = { state: 'apply-failed', reason };
    this.#refused.set(mine.id, verdict);
    return verdict;
  }

  /**
   * The patch's bytes from the object store, checked against the digest the desired state names.
   * @throws HotpatchError E_IO, E_DIGEST_MISMATCH
   */
  async #fetch(ref: PatchRef): Promise<Uint8Array> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.#fleet.patches.getBlob(ref.sha256);
    } catch (cause) {
      throw new HotpatchError('E_DIGEST_MISMATCH', `patch ${ref.id} could not be read from the fleet's store: ${(cause as Error).message}`, { cause });
    }
    if (!bytes) throw new HotpatchError('E_IO', `patch ${ref.id} (${ref.sha256.slice(0, 12)}…) is not in the fleet's store`);
    if (sha256(bytes) !== ref.sha256) throw new HotpatchError('E_DIGEST_MISMATCH', `patch ${ref.id}: the store's bytes do not match the release's digest ${ref.sha256.slice(0, 12)}…`);
    return bytes;
  }

  /** Writes this host's status (only on change, or when an earlier write did not get through). */
  async #report(verdict: Verdict): Promise<void> {
    const status = await this.#guest.status();
    const previous = this.#status;
    const healthy = (this.#options.health?.() ?? true) && verdict.state !== 'rolled-back';
    const next: HostStatus = {
      host: this.host,
      ring: this.ring,
      labels: this.#options.labels ?? {},
      baseline: this.#guest.manifest.id,
      applied: appliedInOrder(status).map((p) => ({ id: p.id, sequence: p.sequence })),
      ...(this.#desired ? { release: this.#desired.release } : {}),
      ...(this.#mine() ? { desired: this.#mine()! } : {}),
      state: verdict.state,
      ...(verdict.reason ? { reason: verdict.reason } : {}),
      healthy,
      since: previous && previous.state === verdict.state && previous.release === this.#desired?.release ? previous.since : new Date().toISOString(),
      at: new Date().toISOString(),
    };
    const changed = !previous || !sameReport(previous, next);
    this.#status = next;
    if (!changed && !this.#unsaved) return;
    try {
      await this.#fleet.status.put(this.host, encodeDoc(next));
      this.#unsaved = false;
      this.dispatchEvent(new Event('status'));
    } catch {
      this.#unsaved = true; // the next heartbeat tries again
    }
  }

  #mine(): string | undefined {
    return this.#desired?.patches.find((p) => p.baseline === this.#guest.manifest.id)?.id;
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#fleet.presence.put(this.host, encodeDoc({ host: this.host, at: new Date().toISOString() }));
    } catch {
      // Disconnected: the client reconnects by itself; the next beat says we are back.
    }
    const stale = this.#status && (this.#unsaved || this.#status.state === 'needs-check' || (this.#options.health?.() ?? true) !== this.#status.healthy);
    if (stale) this.#schedule();
  }

  async #audit(what: string, record: Record<string, unknown>): Promise<void> {
    await this.#fleet.audit(`host.${this.host}`, { host: this.host, what, ...record }).catch(() => {});
  }
}

/** An error as one line, with the codes of the problems a rejection carries. */
function describe(error: unknown): string {
  if (!(error instanceof HotpatchError)) return (error as Error)?.message ?? String(error);
  const codes = [...new Set(error.problems.map((p) => p.code))].filter((c) => c !== error.code);
  return `${error.code}${codes.length > 0 ? ` (${codes.join(', ')})` : ''}: ${error.message}`;
}

function sameReport(a: HostStatus, b: HostStatus): boolean {
  return a.state === b.state && a.reason === b.reason && a.release === b.release && a.healthy === b.healthy && a.desired === b.desired && JSON.stringify(a.applied) === JSON.stringify(b.applied);
}
