import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HotpatchError } from '../errors.js';

/** The file system calls the store makes: swapped in tests for one that fails like a full disk. */
export interface StoreFs {
  openSync: typeof openSync;
  writeSync: (fd: number, data: Uint8Array) => number;
  fsyncSync: typeof fsyncSync;
  closeSync: typeof closeSync;
  renameSync: typeof renameSync;
}

/** Node's own file system. */
export const nodeFs: StoreFs = { openSync, writeSync: (fd, data) => writeSync(fd, data), fsyncSync, closeSync, renameSync };

/**
 * Writes a file so that it is either all there or not there: a temporary file, fsync, rename,
 * fsync of the folder. A failure removes the temporary file and leaves the old file as it was.
 * @throws HotpatchError E_IO (disk full, no file descriptors, …)
 */
export function writeDurably(fs: StoreFs, dir: string, name: string, data: Uint8Array | string): void {
  const tmp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes.subarray(off));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, join(dir, name));
    const dirFd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dirFd);
    } finally {
      fs.closeSync(dirFd);
    }
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new HotpatchError('E_IO', `cannot write ${join(dir, name)}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
}

/**
 * Makes (or checks) a folder only its owner can write: created 0700; an existing one must belong
 * to this user and not be writable by group or others, or a local user could rewrite the level.
 * @throws HotpatchError E_STORE_UNSAFE (with the command that fixes it)
 */
export function ownerOnlyFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new HotpatchError('E_STORE_UNSAFE', `${dir} is not a folder (a symbolic link or a file): give the store a real folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new HotpatchError('E_STORE_UNSAFE', `store folder ${dir} belongs to user ${st.uid}, not to this user (${uid}): use a folder of your own`);
  if ((st.mode & 0o022) !== 0) {
    throw new HotpatchError('E_STORE_UNSAFE', `store folder ${dir} is writable by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}), so someone else could change the recorded patch level: run \`chmod 700 ${dir}\``);
  }
}

/** Whether process `pid` is alive (signal 0 tests without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the store's writer lock: a `lock` file made exclusively, holding the owner's pid. A lock
 * whose process has died is stale and taken over; a live one is refused.
 * @returns a function that releases the lock
 * @throws HotpatchError E_STORE_LOCKED (naming the holder), E_IO
 */
export function lockFolder(dir: string): () => void {
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, Buffer.from(`${process.pid}\n`));
      closeSync(fd);
      return () => {
        if (readPid(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new HotpatchError('E_IO', `cannot lock ${dir}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
    }
    const holder = readPid(path);
    if (holder !== undefined && holder !== process.pid && alive(holder)) {
      throw new HotpatchError('E_STORE_LOCKED', `the store ${dir} is in use by process ${holder}: one writer at a time (stop that host first)`);
    }
    if (holder === process.pid) throw new HotpatchError('E_STORE_LOCKED', `the store ${dir} is already open in this process: close it first`);
    // Stale: its process is gone (or the file is empty from a crash between create and write).
    rmSync(path, { force: true });
  }
  throw new HotpatchError('E_STORE_LOCKED', `cannot take the lock of ${dir}: another process keeps taking it`);
}

function readPid(path: string): number | undefined {
  try {
    const fd = openSync(path, 'r');
    try {
      if (fstatSync(fd).size > 32) return undefined;
    } finally {
      closeSync(fd);
    }
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Moves a damaged file aside (kept for inspection, never read again). */
export function setAside(path: string): void {
  try {
    renameSync(path, `${path}.damaged`);
  } catch {
    rmSync(path, { force: true });
  }
}
