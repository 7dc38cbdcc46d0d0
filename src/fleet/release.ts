import { createHash } from 'node:crypto';
import { HotpatchError } from '../errors.js';
import { decodePatchManifest } from '../format/manifest.js';
import type { FleetConnection } from './connection.js';
import { checkName, decodeDoc, encodeDoc, type PatchRef, type Release, type RingSpec } from './types.js';

/** Options of `createRelease`. */
export interface ReleaseOptions {
  readonly id: string;
  readonly description?: string;
  /** Patch modules, at most one per baseline (each host gets the one built for its baseline). */
  readonly patches: readonly Uint8Array[];
  /** Rings in rollout order: names, or full specs; names get `ringDefaults`. */
  readonly rings: readonly (string | (Partial<RingSpec> & { readonly name: string }))[];
  readonly ringDefaults?: Partial<Omit<RingSpec, 'name'>>;
  /** Roll a ring back by itself when its gate fails (default true). */
  readonly rollbackOnFailure?: boolean;
}

const DEFAULT_RING: Omit<RingSpec, 'name'> = { soakMs: 60_000, minShare: 0.95, maxFailures: 0, deferMs: 0 };

const releaseKey = (id: string): string => `release.${id}`;

/**
 * Puts a patch's bytes in the fleet's object store under their SHA-256 and returns what a release names.
 * @throws HotpatchError E_MANIFEST_MISSING, E_MANIFEST_INVALID (not a patch module), E_IO
 */
export async function publishPatch(fleet: FleetConnection, bytes: Uint8Array): Promise<PatchRef> {
  const manifest = decodePatchManifest(bytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    if (!(await fleet.patches.info(sha256))) await fleet.patches.putBlob({ name: sha256, description: manifest.id }, bytes);
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot store patch ${manifest.id}: ${(cause as Error).message}`, { cause });
  }
  return { baseline: manifest.baseline, id: manifest.id, sequence: manifest.sequence, sha256, size: bytes.length };
}

/** Resolves ring names and partial specs to full specs, checking them. */
function ringSpecs(options: ReleaseOptions): RingSpec[] {
  if (options.rings.length === 0) throw new HotpatchError('E_USAGE', 'a release needs at least one ring');
  const specs = options.rings.map((r) => ({ ...DEFAULT_RING, ...options.ringDefaults, ...(typeof r === 'string' ? { name: r } : r) }));
  const seen = new Set<string>();
  for (const spec of specs) {
    checkName('ring', spec.name);
    if (seen.has(spec.name)) throw new HotpatchError('E_USAGE', `ring "${spec.name}" is named twice`);
    seen.add(spec.name);
    if (!(spec.minShare >= 0 && spec.minShare <= 1)) throw new HotpatchError('E_USAGE', `ring "${spec.name}": minShare must be between 0 and 1`);
    if (![spec.soakMs, spec.deferMs, spec.maxFailures].every((n) => Number.isFinite(n) && n >= 0))
      throw new HotpatchError('E_USAGE', `ring "${spec.name}": soak, deferral and failures must be numbers ≥ 0`);
  }
  return specs;
}

/**
 * Creates a release: stores its patches and writes the release, which the controller then rolls
 * out ring by ring. A paused release it follows is superseded (it stays as the record of what happened).
 * @throws HotpatchError E_USAGE (no patch, two for one baseline, bad rings), E_CONFLICT (the id exists, or a release is still rolling), E_IO
 */
export async function createRelease(fleet: FleetConnection, options: ReleaseOptions): Promise<Release> {
  checkName('release id', options.id);
  if (options.patches.length === 0) throw new HotpatchError('E_USAGE', 'a release carries at least one patch');
  const rings = ringSpecs(options);
  const refs = await Promise.all(options.patches.map((bytes) => publishPatch(fleet, bytes)));
  const baselines = new Set<string>();
  for (const ref of refs) {
    if (baselines.has(ref.baseline)) throw new HotpatchError('E_USAGE', `two patches for baseline ${ref.baseline.slice(0, 12)}…: a release carries one per baseline`);
    baselines.add(ref.baseline);
  }
  for (const other of await listReleases(fleet)) {
    if (other.state === 'rolling') throw new HotpatchError('E_CONFLICT', `release ${other.id} is still rolling: wait for it, pause it or roll it back first`);
  }
  const release: Release = {
    id: options.id,
    description: options.description ?? refs.map((r) => r.id).join(', '),
    patches: refs,
    rings,
    rollbackOnFailure: options.rollbackOnFailure ?? true,
    state: 'rolling',
    current: 0,
    progress: {},
    createdAt: new Date().toISOString(),
  };
  try {
    await fleet.desired.create(releaseKey(release.id), encodeDoc(release));
  } catch (cause) {
    throw new HotpatchError('E_CONFLICT', `release ${release.id} exists already`, { cause });
  }
  await fleet.audit('controller.release', { release: release.id, what: 'created', patches: refs, rings: rings.map((r) => r.name) });
  return release;
}

/** Every release in the fleet, oldest first. */
export async function listReleases(fleet: FleetConnection): Promise<Release[]> {
  const keys: string[] = [];
  for await (const key of await fleet.desired.keys('release.*')) keys.push(key);
  const entries = await Promise.all(keys.map((k) => fleet.desired.get(k)));
  const releases = entries.filter((e) => e && e.operation === 'PUT').map((e) => decodeDoc<Release>(e!.value, e!.key));
  return releases.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/**
 * One release.
 * @throws HotpatchError E_USAGE (no such release)
 */
export async function getRelease(fleet: FleetConnection, id: string): Promise<{ release: Release; revision: number }> {
  const entry = await fleet.desired.get(releaseKey(checkName('release id', id)));
  if (entry?.operation !== 'PUT') throw new HotpatchError('E_USAGE', `no release "${id}"`);
  return { release: decodeDoc<Release>(entry.value, entry.key), revision: entry.revision };
}

/**
 * Changes a release by compare-and-set on its revision: `change` sees the latest version and
 * returns the next one, or undefined to change nothing (its precondition no longer holds). When
 * another writer got there first, it reads again and asks `change` again; so of two controllers
 * deciding the same step, one writes it and the other sees it done.
 * @throws HotpatchError E_USAGE (no such release), E_CONFLICT (still contended after 20 tries)
 */
export async function updateRelease(fleet: FleetConnection, id: string, change: (release: Release) => Release | undefined): Promise<Release | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { release, revision } = await getRelease(fleet, id);
    const next = change(release);
    if (!next) return undefined;
    try {
      await fleet.desired.update(releaseKey(id), encodeDoc(next), revision);
      return next;
    } catch (error) {
      if (!/wrong last sequence/i.test((error as Error).message)) throw new HotpatchError('E_IO', `cannot update release ${id}: ${(error as Error).message}`, { cause: error });
    }
  }
  throw new HotpatchError('E_CONFLICT', `release ${id} kept changing under this update`);
}
