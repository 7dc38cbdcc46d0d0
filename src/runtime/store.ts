import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { HotpatchGuest } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { decodePatchManifest } from '../format/manifest.js';
import { lockFolder, nodeFs, ownerOnlyFolder, setAside, type StoreFs, writeDurably } from './_store-fs.js';
import { appliedInOrder } from './applied-order.js';

/** One recorded patch: its id, the hash of its bytes, and what the floor needs. */
export interface StoredPatch {
  readonly id: string;
  readonly sha256: string;
  readonly sequence: number;
  readonly cumulative: boolean;
}

/** The patch level of one baseline, as the store keeps it: which patches are applied, in order. */
export interface PatchLevel {
  /** Grows by one with every record: a restarted host can tell which level it came back to. */
  readonly generation: number;
  /** The highest sequence ever recorded for this baseline: nothing below it is applied or restored again. */
  readonly floor: number;
  readonly applied: readonly StoredPatch[];
}

/**
 * What the store needs of a guest, of any kind (the engine's one contract): its baseline, its
 * applied level, and load / apply to bring it back. An in-thread `Guest` passes `guest.async`.
 */
export type LevelGuest = Pick<HotpatchGuest, 'manifest' | 'status' | 'load' | 'apply'>;

/** Options of {@link PatchStore.open}. */
export interface StoreOptions {
  /** Take the writer lock (default true); false opens the store to read only. */
  readonly lock?: boolean;
  /** The file system calls used for writes (tests give one that fails like a full disk). */
  readonly fs?: StoreFs;
}

/** How many generations of a level are kept: the newest intact one is the level. */
const KEPT = 8;

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');
const levelName = (generation: number): string => `${String(generation).padStart(12, '0')}.json`;

/**
 * A directory that remembers which patches are applied to which baseline, so a restarted host
 * brings its guests back to the same patch level (like Windows keeping hotpatches across a reboot
 * until the next baseline). What it records is always read from the guest (`record(guest)`), so
 * it cannot drift from what is applied. It verifies and heals: every file is checked against its
 * hash when read, a damaged patch file is rewritten from bytes it was given, a damaged level is
 * set aside and the previous generation is used. A sequence floor survives restart and revert.
 * One writer at a time holds its lock.
 */
export class PatchStore {
  readonly dir: string;
  readonly #fs: StoreFs;
  readonly #unlock: (() => void) | undefined;
  /** Patches given to this store (id → entry and bytes): the source for healing and for record. */
  readonly #known = new Map<string, { entry: StoredPatch; bytes: Uint8Array }>();
  /** What was found damaged and set aside or rewritten, for the host's log. */
  readonly healed: string[] = [];

  private constructor(dir: string, fs: StoreFs, unlock: (() => void) | undefined) {
    this.dir = dir;
    this.#fs = fs;
    this.#unlock = unlock;
  }

  /**
   * Opens (creating, owner-only) a store, takes its writer lock and clears temporary files a crash left behind.
   * @throws HotpatchError E_STORE_UNSAFE (a folder others can write: says how to fix it), E_STORE_LOCKED, E_IO
   */
  static open(dir: string, options: StoreOptions = {}): PatchStore {
    ownerOnlyFolder(dir);
    for (const sub of ['patches', 'levels']) ownerOnlyFolder(join(dir, sub));
    const unlock = options.lock === false ? undefined : lockFolder(dir);
    if (unlock) for (const f of readdirSync(join(dir, 'patches'))) if (f.endsWith('.tmp')) rmSync(join(dir, 'patches', f), { force: true });
    return new PatchStore(dir, options.fs ?? nodeFs, unlock);
  }

  /** Releases the writer lock. */
  close(): void {
    this.#unlock?.();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Keeps a patch's bytes (content-addressed, verified, rewritten if the stored copy is damaged),
   * so a later `record` can name it; call it with every patch you load into a recorded guest.
   * @throws HotpatchError E_MANIFEST_MISSING / E_MANIFEST_INVALID (not a patch), E_IO
   */
  add(bytes: Uint8Array): StoredPatch {
    const manifest = decodePatchManifest(bytes);
    const entry: StoredPatch = { id: manifest.id, sha256: sha256(bytes), sequence: manifest.sequence, cumulative: manifest.cumulative };
    this.#known.set(entry.id, { entry, bytes: bytes.slice() });
    this.#ensurePatchFile(entry.sha256, bytes);
    return entry;
  }

  /** Writes a patch file unless an intact one is there; a damaged one is replaced. */
  #ensurePatchFile(hash: string, bytes: Uint8Array): void {
    const path = join(this.dir, 'patches', `${hash}.wasm`);
    if (existsSync(path)) {
      if (sha256(readFileSync(path)) === hash) return;
      this.healed.push(`patch ${hash.slice(0, 12)}… did not match its hash: rewritten`);
    }
    writeDurably(this.#fs, join(this.dir, 'patches'), `${hash}.wasm`, bytes);
  }

  /** The floor of a baseline: no patch below it is applied or restored (0 when nothing was recorded). */
  floor(baseline: string): number {
    return this.level(baseline)?.floor ?? 0;
  }

  /**
   * Refuses a patch below the baseline's floor (Windows keeps the latest sequence number for good).
   * @throws HotpatchError E_DOWNGRADE
   */
  admit(baseline: string, patch: { readonly id: string; readonly sequence: number }): void {
    const level = this.level(baseline);
    if (!level || patch.sequence >= level.floor || level.applied.some((a) => a.id === patch.id)) return;
    throw new HotpatchError('E_DOWNGRADE', `patch "${patch.id}" has sequence ${patch.sequence}, below this host's floor ${level.floor} (the highest sequence it ever applied): refused`);
  }

  /**
   * Records the guest's applied level: read from the guest, in apply order, so what is recorded
   * is what is applied whichever way each patch came in. Every patch must have been given to
   * this store (`add`) or be in the recorded level already.
   * @throws HotpatchError E_STORE_UNKNOWN_PATCH, E_DOWNGRADE, E_STORE_CORRUPT, E_IO (nothing recorded)
   */
  async record(guest: LevelGuest): Promise<PatchLevel> {
    const baseline = guest.manifest.id;
    // A level that cannot be read does not block the next one: it is set aside, and the new one follows the highest generation.
    const previous = this.#intactLevels(baseline, 1, false)[0];
    const applied = appliedInOrder(await guest.status()).map((id) => this.#entryOf(id, previous));
    for (const entry of applied) {
      const bytes = this.#known.get(entry.id)?.bytes;
      if (bytes && this.#known.get(entry.id)!.entry.sha256 === entry.sha256) this.#ensurePatchFile(entry.sha256, bytes);
      else this.patch(entry.sha256);
    }
    const floor = Math.max(previous?.floor ?? 0, ...applied.map((a) => a.sequence));
    const level: PatchLevel = { generation: Math.max(previous?.generation ?? 0, this.#highestGeneration(baseline)) + 1, floor, applied };
    this.#writeLevel(baseline, level);
    return level;
  }

  #entryOf(id: string, previous: PatchLevel | undefined): StoredPatch {
    const entry = this.#known.get(id)?.entry ?? previous?.applied.find((a) => a.id === id);
    if (!entry) throw new HotpatchError('E_STORE_UNKNOWN_PATCH', `patch "${id}" is applied but its bytes were never given to the store (store.add): cannot record it`);
    return entry;
  }

  #writeLevel(baseline: string, level: PatchLevel): void {
    const dir = join(this.dir, 'levels', baseline);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const body = JSON.stringify(level);
    writeDurably(this.#fs, dir, levelName(level.generation), JSON.stringify({ ...level, check: sha256(body) }));
    const files = readdirSync(dir)
      .filter((f) => /^\d{12}\.json$/.test(f))
      .sort();
    for (const old of files.slice(0, Math.max(0, files.length - KEPT))) rmSync(join(dir, old), { force: true });
  }

  #highestGeneration(baseline: string): number {
    const dir = join(this.dir, 'levels', baseline);
    if (!existsSync(dir)) return 0;
    return Math.max(
      0,
      ...readdirSync(dir)
        .map((f) => /^(\d{12})\.json(\.damaged)?$/.exec(f)?.[1])
        .filter(Boolean)
        .map(Number),
    );
  }

  /**
   * The recorded level of a baseline: its newest intact generation (damaged ones are set aside
   * and named in `healed`), or undefined when none was recorded.
   * @throws HotpatchError E_STORE_CORRUPT (levels were recorded and none is intact)
   */
  level(baseline: string): PatchLevel | undefined {
    const levels = this.#intactLevels(baseline, 1);
    return levels[0];
  }

  /** Up to `count` intact levels, newest first; damaged ones on the way are set aside. */
  #intactLevels(baseline: string, count: number, strict = true): PatchLevel[] {
    const dir = join(this.dir, 'levels', baseline);
    if (!existsSync(dir)) return [];
    const files = readdirSync(dir)
      .filter((f) => /^\d{12}\.json$/.test(f))
      .sort()
      .reverse();
    const found: PatchLevel[] = [];
    for (const f of files) {
      const level = parseLevel(readFileSync(join(dir, f), 'utf8'));
      if (level) found.push(level);
      else {
        this.healed.push(`level ${f} of ${baseline.slice(0, 12)}… is damaged: set aside, the previous generation is used`);
        if (this.#unlock) setAside(join(dir, f));
      }
      if (found.length === count) break;
    }
    if (strict && found.length === 0 && files.length > 0) throw new HotpatchError('E_STORE_CORRUPT', `every recorded level of ${baseline.slice(0, 12)}… is damaged`);
    return found;
  }

  /**
   * A recorded patch's bytes, checked against their hash; a damaged file is rewritten from bytes
   * this store was given.
   * @throws HotpatchError E_STORE_CORRUPT
   */
  patch(sha: string): Uint8Array {
    let bytes: Uint8Array | undefined;
    try {
      bytes = new Uint8Array(readFileSync(join(this.dir, 'patches', `${sha}.wasm`)));
    } catch {
      bytes = undefined;
    }
    if (bytes && sha256(bytes) === sha) return bytes;
    const known = [...this.#known.values()].find((k) => k.entry.sha256 === sha);
    if (known) {
      this.#ensurePatchFile(sha, known.bytes);
      return known.bytes;
    }
    throw new HotpatchError('E_STORE_CORRUPT', `patch ${sha.slice(0, 12)}… is ${bytes ? 'damaged (does not match its hash)' : 'missing'} in the store`);
  }

  /**
   * Brings a guest of any kind back to its baseline's recorded level: loads each patch again (the
   * guest's policy verifies signatures again) and applies them in their order. A level that brings
   * back a patch below the previous generation's floor is refused (a level file put back by hand).
   * @throws HotpatchError E_STORE_CORRUPT, E_DOWNGRADE, and whatever load or apply refuses
   */
  async restore(guest: LevelGuest): Promise<PatchLevel | undefined> {
    const [level, before] = this.#intactLevels(guest.manifest.id, 2);
    if (!level) return undefined;
    if (before && level.floor < before.floor)
      throw new HotpatchError('E_DOWNGRADE', `the recorded level's floor ${level.floor} is below the previous generation's ${before.floor}: refused (was the level edited?)`);
    for (const entry of level.applied) {
      if (before && entry.sequence < before.floor && !before.applied.some((a) => a.id === entry.id)) {
        throw new HotpatchError('E_DOWNGRADE', `the recorded level brings back patch "${entry.id}" (sequence ${entry.sequence}) below the floor ${before.floor}: refused (was the level edited?)`);
      }
    }
    for (const entry of level.applied) {
      const bytes = this.patch(entry.sha256);
      // force: the engine's own downgrade check looks at what is applied now, and this order was checked when recorded.
      const patch = await guest.load(bytes, { force: true });
      if (patch.id !== entry.id) throw new HotpatchError('E_STORE_CORRUPT', `the store's patch ${entry.sha256.slice(0, 12)}… is "${patch.id}", not "${entry.id}"`);
      this.#known.set(entry.id, { entry, bytes });
      await guest.apply(patch.id, { force: true });
    }
    return level;
  }
}

/** A level file's content, or undefined when it is torn, damaged or not a level. */
function parseLevel(text: string): PatchLevel | undefined {
  try {
    const { check, ...level } = JSON.parse(text) as PatchLevel & { check: string };
    if (!Number.isSafeInteger(level.generation) || !Number.isSafeInteger(level.floor) || !Array.isArray(level.applied)) return undefined;
    return sha256(JSON.stringify(level)) === check ? level : undefined;
  } catch {
    return undefined;
  }
}
