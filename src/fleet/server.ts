import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HotpatchError } from '../errors.js';

/** A nats-server this process started: its URL, and how to stop it. */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** The JetStream store folder (kept across `restart`, removed by `stop`). */
  readonly storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(options?: { keepStore?: boolean }): Promise<void>;
  /** Stops and starts it again on the same port and store: for fault tests. */
  restart(): Promise<void>;
}

/** Options of `startNatsServer`. */
export interface NatsServerOptions {
  /** The server binary (default: `nats-server` on PATH, then /usr/sbin/nats-server). */
  readonly binary?: string;
  /** Extra configuration (a nats-server config file's text), e.g. the users `fleet init` writes. */
  readonly config?: string;
  /** A port to use (default: a free loopback port). */
  readonly port?: number;
}

/** One line saying how to get nats-server, for messages. */
export const INSTALL_HINT = 'nats-server is not installed: apt-get install -y nats-server (Debian), or see https://docs.nats.io/running-a-nats-service/introduction/installation';

/** The nats-server binary to run, or undefined when none is installed. */
export function findNatsServer(binary?: string): string | undefined {
  for (const candidate of binary ? [binary] : ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

/** A free TCP port on loopback, as the kernel hands one out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Waits until the server answers on its port (it prints nothing we can rely on across versions). */
async function waitListening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new HotpatchError('E_IO', `nats-server exited with ${child.exitCode}: ${log().trim().split('\n').slice(-3).join(' | ')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('data', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new HotpatchError('E_TIMEOUT', `nats-server did not listen on 127.0.0.1:${port} within 10 s`);
}

/**
 * Starts a nats-server with JetStream on a loopback port and a temporary store, for tests, the
 * demo and benchmarks; production runs its own.
 * @throws HotpatchError E_IO (not installed, or it exited), E_TIMEOUT
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binary = findNatsServer(options.binary);
  if (!binary) throw new HotpatchError('E_IO', INSTALL_HINT);
  const storeDir = mkdtempSync(join(tmpdir(), 'hotpatch-nats-'));
  const port = options.port ?? (await freePort());
  const configFile = join(storeDir, 'server.conf');
  writeFileSync(configFile, `${options.config ?? ''}\n`, { mode: 0o600 });
  let child: ChildProcess;
  let output = '';
  const launch = async (): Promise<void> => {
    output = '';
    child = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(storeDir, 'js'), '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitListening(port, child, () => output);
  };
  const halt = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  // A crashed test or demo must not leave its server behind.
  const orphaned = (): void => void child.kill('SIGKILL');
  process.once('exit', orphaned);
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop(stopOptions = {}) {
      await halt();
      process.off('exit', orphaned);
      if (!stopOptions.keepStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await launch();
    },
  };
}
