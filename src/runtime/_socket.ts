import { lstatSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { HotpatchError } from '../errors.js';

/** Whether something accepts connections at a Unix socket path (bounded: gives up after `ms`). */
function listening(path: string, ms = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (answer: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answer);
    };
    // A host too busy to accept within the bound is still a live host: never take its path.
    const timer = setTimeout(() => done(true), ms);
    probe.once('connect', () => done(true));
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'));
  });
}

/**
 * Makes a socket path free for a new host: nothing there is fine; a socket nobody listens on
 * (left by a crash) is removed; a live socket, or anything that is not a socket, is refused.
 * @throws HotpatchError E_ENDPOINT_IN_USE
 */
export async function claimSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new HotpatchError('E_ENDPOINT_IN_USE', `cannot check ${path}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
  if (!st.isSocket()) throw new HotpatchError('E_ENDPOINT_IN_USE', `${path} exists and is not a socket: refusing to delete it (choose another path, or remove it yourself)`);
  if (await listening(path)) throw new HotpatchError('E_ENDPOINT_IN_USE', `a host is already listening at ${path}: refusing to take it over (stop it first, or choose another path)`);
  rmSync(path, { force: true });
}

/**
 * Listens on a Unix socket that is owner-only from its creation: the umask is narrowed around the
 * bind (which Node does synchronously for paths), so there is no moment when others may connect.
 */
export async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new HotpatchError('E_ENDPOINT_IN_USE', `another host took ${path} meanwhile`, { cause: error }) : error),
    );
    const before = process.umask(0o177);
    try {
      server.listen(path, resolve);
    } finally {
      process.umask(before);
    }
  });
}
