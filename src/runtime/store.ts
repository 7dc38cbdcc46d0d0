import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { HotpatchGuest } from '../engine/index.js';
import { HotpatchError } from '../errors.js';

/** The patch level of one baseline, as the store keeps it: which patches are applied, in order. */
export interface PatchLevel {
  /** Grows by one with every record: a restarted host can tell which level it came back to. */
  readonly generation: number;
  readonly applied: readonly { readonly id: string; readonly sha256: string }[];
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Writes a file so that it is either all there or not there: a temporary file, fsync, rename, fsync of the folder. */
function writeDurably(dir: string, name: string, data: Uint8Array | string): void {
  const tmp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * A directory that remembers which patches are applied to which baseline, so a restarted host
 * brings its guests back to the same patch level (like Windows keeping hotpatches across a reboot
 * until the next baseline). Crash-safe by ordering: patch files (content-addressed) are made
 * durable before the level that names them, and a level replaces the previous one atomically.
 */
export class PatchStore {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens (creating) a store, and clears temporary files a crash left behind. */
  static open(dir: string): PatchStore {
    for (const sub of ['patches', 'levels']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    for (const sub of ['patches', 'levels']) {
      for (const f of readdirSync(join(dir, sub))) if (f.endsWith('.tmp')) rmSync(join(dir, sub, f), { force: true });
    }
    return new PatchStore(dir);
  }

  /** Records a baseline's patch level: the applied patches' bytes, in apply order. */
  record(baseline: string, applied: readonly { readonly id: string; readonly bytes: Uint8Array }[]): PatchLevel {
    const entries = applied.map((p) => {
      const hash = sha256(p.bytes);
      // Content-addressed: an existing file with this name already holds these bytes.
      if (!readdirSync(join(this.dir, 'patches')).includes(`${hash}.wasm`)) writeDurably(join(this.dir, 'patches'), `${hash}.wasm`, p.bytes);
      return { id: p.id, sha256: hash };
    });
    const level: PatchLevel = { generation: (this.level(baseline)?.generation ?? 0) + 1, applied: entries };
    writeDurably(join(this.dir, 'levels'), `${baseline}.json`, JSON.stringify(level));
    return level;
  }

  /**
   * The recorded level of a baseline, or undefined when there is none.
   * @throws HotpatchError E_STORE_CORRUPT
   */
  level(baseline: string): PatchLevel | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'levels', `${baseline}.json`), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new HotpatchError('E_STORE_CORRUPT', `cannot read the patch level of ${baseline}: ${(error as Error).message}`, { cause: error });
    }
    try {
      const level = JSON.parse(text) as PatchLevel;
      if (!Number.isSafeInteger(level.generation) || !Array.isArray(level.applied)) throw new Error('fields');
      return level;
    } catch (cause) {
      throw new HotpatchError('E_STORE_CORRUPT', `the patch level of ${baseline} is not valid`, { cause });
    }
  }

  /**
   * A recorded patch's bytes, checked against their hash.
   * @throws HotpatchError E_STORE_CORRUPT
   */
  patch(sha: string): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(join(this.dir, 'patches', `${sha}.wasm`)));
    } catch (cause) {
      throw new HotpatchError('E_STORE_CORRUPT', `patch ${sha.slice(0, 12)}… is missing from the store`, { cause });
    }
    if (sha256(bytes) !== sha) throw new HotpatchError('E_STORE_CORRUPT', `patch ${sha.slice(0, 12)}… in the store does not match its hash`);
    return bytes;
  }

  /**
   * Brings a guest, in this thread or a worker, back to its baseline's recorded level: loads each
   * patch again (the guest's policy verifies signatures again) and applies them in their order.
   * @throws HotpatchError E_STORE_CORRUPT, and whatever load or apply refuses
   */
  async restore(guest: HotpatchGuest): Promise<PatchLevel | undefined> {
    const level = this.level(guest.manifest.id);
    if (!level) return undefined;
    for (const entry of level.applied) {
      const patch = await guest.load(this.patch(entry.sha256), { force: true });
      if (patch.id !== entry.id) throw new HotpatchError('E_STORE_CORRUPT', `the store's patch ${entry.sha256.slice(0, 12)}… is "${patch.id}", not "${entry.id}"`);
      await guest.apply(patch.id, { force: true });
    }
    return level;
  }
}
