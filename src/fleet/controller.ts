import type { FleetConnection } from './connection.js';
import { readGate } from './gate.js';
import { type HostsSnapshot, readHosts } from './hosts.js';
import { listReleases, updateRelease } from './release.js';
import { decodeDoc, encodeDoc, type Release, type RingDesired, type RingProgress } from './types.js';

/** Options of `Controller.start`. */
export interface ControllerOptions {
  /** How often to read the gates (ms; default 1000). */
  readonly intervalMs?: number;
  /** The clock (tests and simulations). */
  readonly now?: () => number;
}

/** One step's outcome, for logs and tests. */
export interface StepResult {
  /** What this controller changed (others may have changed the rest). */
  readonly changes: readonly string[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

function withProgress(release: Release, ring: string, change: (p: RingProgress) => RingProgress): Release {
  return { ...release, progress: { ...release.progress, [ring]: change(release.progress[ring] ?? {}) } };
}

/**
 * Advances one rolling release by at most one step, each a compare-and-set on the release so that
 * a step another controller took (or an operator's pause) is seen and not taken again.
 */
async function advance(fleet: FleetConnection, release: Release, hosts: HostsSnapshot, now: number): Promise<string | undefined> {
  const ring = release.rings[release.current]!;
  const progress = release.progress[ring.name] ?? {};
  const still = (r: Release): boolean => r.state === 'rolling' && r.current === release.current;
  if (!progress.openedAt) {
    const previous = release.current === 0 ? undefined : release.progress[release.rings[release.current - 1]!.name]?.promotedAt;
    const from = previous ? Date.parse(previous) : Date.parse(release.createdAt);
    if (now < from + ring.deferMs) return undefined;
    const done = await updateRelease(fleet, release.id, (r) => (still(r) && !r.progress[ring.name]?.openedAt ? withProgress(r, ring.name, (p) => ({ ...p, openedAt: iso(now) })) : undefined));
    return done && `opened ring ${ring.name}`;
  }
  const gate = readGate(release, ring, hosts);
  if (gate.failed) {
    const done = await updateRelease(fleet, release.id, (r) =>
      still(r)
        ? withProgress({ ...r, state: 'paused', reason: `ring ${ring.name}: ${gate.failed}` }, ring.name, (p) => ({
            ...p,
            failed: gate.failed!,
            ...(r.rollbackOnFailure ? { rolledBackAt: iso(now) } : {}),
          }))
        : undefined,
    );
    return done && `paused: ring ${ring.name} failed its gate (${gate.failed})${release.rollbackOnFailure ? '; rolled the ring back' : ''}`;
  }
  if (!gate.holds) {
    if (!progress.holdingSince) return undefined;
    const done = await updateRelease(fleet, release.id, (r) => (still(r) ? withProgress(r, ring.name, ({ holdingSince: _, ...p }) => p) : undefined));
    return done && `ring ${ring.name} gate broke (${gate.good}/${gate.eligible})`;
  }
  if (!progress.holdingSince) {
    const done = await updateRelease(fleet, release.id, (r) => (still(r) && !r.progress[ring.name]?.holdingSince ? withProgress(r, ring.name, (p) => ({ ...p, holdingSince: iso(now) })) : undefined));
    return done && `ring ${ring.name} gate holds (${gate.good}/${gate.eligible}), soaking ${ring.soakMs} ms`;
  }
  if (now - Date.parse(progress.holdingSince) < ring.soakMs) return undefined;
  const done = await updateRelease(fleet, release.id, (r) => (still(r) ? promoted(r, now) : undefined));
  return done && `promoted ring ${ring.name} (${gate.good}/${gate.eligible} applied and healthy)${done.state === 'complete' ? '; release complete' : ''}`;
}

/** The release with its current ring promoted (and complete after the last). */
export function promoted(release: Release, now: number): Release {
  const ring = release.rings[release.current]!;
  const next = withProgress({ ...release, current: release.current + 1 }, ring.name, (p) => ({ ...p, promotedAt: iso(now) }));
  return next.current >= next.rings.length ? { ...next, state: 'complete', completedAt: iso(now) } : next;
}

/**
 * What every ring should run, derived from the releases alone: for each ring, the newest release
 * that opened it (reverted if it rolled back there or as a whole).
 */
export function ringDesires(releases: readonly Release[]): Map<string, RingDesired> {
  const desires = new Map<string, RingDesired>();
  for (const release of releases) {
    for (const ring of release.rings) {
      const progress = release.progress[ring.name];
      if (!progress?.openedAt) continue;
      const revert = release.state === 'rolled-back' || progress.rolledBackAt !== undefined;
      desires.set(ring.name, { ring: ring.name, release: release.id, action: revert ? 'revert' : 'apply', patches: release.patches, at: progress.rolledBackAt ?? progress.openedAt });
    }
  }
  return desires;
}

/** Writes each ring's desired state where it differs from what is there (idempotent: two controllers write the same). */
async function publishDesires(fleet: FleetConnection, releases: readonly Release[]): Promise<string[]> {
  const changes: string[] = [];
  for (const [ring, desired] of ringDesires(releases)) {
    const entry = await fleet.desired.get(`ring.${ring}`);
    const current = entry?.operation === 'PUT' ? decodeDoc<RingDesired>(entry.value, `ring.${ring}`) : undefined;
    if (current && current.release === desired.release && current.action === desired.action) continue;
    await fleet.desired.put(`ring.${ring}`, encodeDoc(desired));
    changes.push(`ring ${ring}: ${desired.action} ${desired.release}`);
  }
  return changes;
}

/**
 * One pass of the controller: read releases and hosts, take at most one step per rolling release,
 * publish the rings' desired state. It keeps nothing between passes, so any number of passes by
 * any number of controllers, killed at any point, add up to the same rollout.
 */
export async function controllerStep(fleet: FleetConnection, now = Date.now()): Promise<StepResult> {
  const changes: string[] = [];
  const releases = await listReleases(fleet);
  const hosts = await readHosts(fleet);
  for (const release of releases) {
    if (release.state !== 'rolling') continue;
    const change = await advance(fleet, release, hosts, now);
    if (change) {
      changes.push(`${release.id}: ${change}`);
      await fleet.audit('controller.step', { release: release.id, what: change });
    }
  }
  const after = changes.length > 0 ? await listReleases(fleet) : releases;
  for (const change of await publishDesires(fleet, after)) {
    changes.push(change);
    await fleet.audit('controller.ring', { what: change });
  }
  return { changes };
}

/** A controller running `controllerStep` on a timer and whenever a host reports. */
export class Controller extends EventTarget {
  readonly #fleet: FleetConnection;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #again = false;
  #busy = false;
  #closed = false;
  #watch: { stop(): void } | undefined;
  /** The last error a pass met (the next pass tries again). */
  lastError: Error | undefined;

  private constructor(fleet: FleetConnection, options: ControllerOptions) {
    super();
    this.#fleet = fleet;
    this.#now = options.now ?? Date.now;
  }

  /** Starts a controller on an open fleet (its credentials must allow writing desired state). */
  static async start(fleet: FleetConnection, options: ControllerOptions = {}): Promise<Controller> {
    const controller = new Controller(fleet, options);
    controller.#timer = setInterval(() => controller.poke(), options.intervalMs ?? 1_000);
    const watch = await fleet.status.watch({ include: 'updates' });
    controller.#watch = watch;
    void (async () => {
      for await (const _ of watch) controller.poke();
    })().catch((error: unknown) => {
      // Without the watch the timer still drives passes: slower, never stuck.
      controller.lastError = error as Error;
    });
    controller.poke();
    return controller;
  }

  /** Asks for a pass now (passes never overlap; one asked for during a pass runs after it). */
  poke(): void {
    if (this.#closed) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          const result = await controllerStep(this.#fleet, this.#now());
          this.lastError = undefined;
          for (const change of result.changes) this.dispatchEvent(new MessageEvent('change', { data: change }));
        } catch (error) {
          this.lastError = error as Error;
        }
      } while (this.#again && !this.#closed);
      this.#busy = false;
    })();
  }

  /** Stops the controller after the pass under way. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watch?.stop();
    await this.#running;
  }
}
