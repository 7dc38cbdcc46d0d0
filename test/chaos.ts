// Chaos for hosts: `npm run chaos` (after the long store-kill and attack tests). Kills `serve` at
// random moments during apply + record, floods its endpoint, fills its disk (a small tmpfs, when
// this machine lets us mount one) and stops it with SIGTERM while its guest is stuck. Prints each
// check and the figures the README quotes; exits non-zero if anything was lost.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointRequest } from '../src/runtime/endpoint-client.js';
import { rolePatch } from './host-fixtures.js';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const baseline = new URL('../patches/account-service/service.baseline.wasm', import.meta.url).pathname;
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function serve(args: string[]): Promise<ChildProcess> {
  const host = spawn(process.execPath, [cli, 'serve', baseline, '--allow-unsigned', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  host.stderr!.resume();
  await new Promise<void>((resolve, reject) => {
    host.stdout!.once('data', () => resolve());
    host.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  return host;
}

const stop = async (host: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') => {
  const exited = new Promise((r) => host.once('exit', r));
  host.kill(signal);
  await exited;
};

const applied = async (to: string) => ((await endpointRequest(to, 'GET', '/status')) as { patches: { id: string; state: string }[] }).patches.filter((p) => p.state === 'applied').map((p) => p.id).sort();

/** Kills the host at random moments while a client applies and reverts; after each restart the level is the last answered one or the one in flight. */
async function killsDuringApply(rounds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-kill-'));
  const socket = join(dir, 'host.sock');
  const to = `unix:${socket}`;
  // Same sequence: neither is below the floor the other sets, so any order may be applied.
  const patches = { 'role-a': await rolePatch('role-a', 2), 'role-b': await rolePatch('role-b', 2, { value: 7 }) };
  let acked = new Set<string>();
  let inFlight: Set<string> | undefined;
  let lost = 0;
  for (let round = 0; round < rounds; round++) {
    const host = await serve(['--socket', socket, '--store', join(dir, 'store')]);
    const now = await applied(to);
    const fits = (set: Set<string> | undefined) => set !== undefined && [...set].sort().join() === now.join();
    if (round > 0 && !fits(acked) && !fits(inFlight)) lost++;
    acked = new Set(now);
    let running = true;
    const client = (async () => {
      for (let i = 0; running; i++) {
        const id = Object.keys(patches)[i % 2] as keyof typeof patches;
        const next = new Set(acked);
        try {
          if (acked.has(id)) {
            next.delete(id);
            inFlight = next;
            await endpointRequest(to, 'POST', `/patches/${id}/revert`);
          } else {
            next.add(id);
            inFlight = next;
            await endpointRequest(to, 'POST', '/patches', { body: patches[id] }).catch(() => {});
            await endpointRequest(to, 'POST', `/patches/${id}/apply`);
          }
          acked = next;
        } catch {
          return;
        }
      }
    })();
    await new Promise((r) => setTimeout(r, Math.random() * 400));
    running = false;
    await stop(host);
    await client;
  }
  check(lost === 0, `${rounds} kills of serve during apply + record: every restart came back at the last answered level or the one in flight (${lost} lost)`);
}

/** One GET /status from the operator; true when answered 200. */
function operatorCall(port: number, token: string): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/status', headers: { authorization: `Bearer ${token}` }, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ok: res.statusCode === 200, ms: performance.now() - t0 }));
    });
    req.on('error', () => resolve({ ok: false, ms: performance.now() - t0 }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** An unauthenticated flood (many clients in parallel) against an operator's sequential requests. */
async function flood(seconds: number, clients: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-flood-'));
  writeFileSync(join(dir, 'token'), 'operator-secret');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const host = await serve(['--port', String(port), '--token-file', join(dir, 'token')]);
  let flooded = 0;
  let running = true;
  const attackers = Array.from({ length: clients }, async () => {
    while (running) {
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/status?token=guess', headers: { authorization: 'Bearer guess' }, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.end();
      });
      flooded++;
    }
  });
  const results: { ok: boolean; ms: number }[] = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    results.push(await operatorCall(port, 'operator-secret'));
    await new Promise((r) => setTimeout(r, 20));
  }
  running = false;
  await Promise.all(attackers);
  await stop(host, 'SIGTERM');
  const ok = results.filter((r) => r.ok).length;
  console.log(`figure: unauthenticated flood (${clients} clients, ${flooded} requests in ${seconds} s) vs operator: ${ok}/${results.length} operator requests answered 200 (${((100 * ok) / results.length).toFixed(1)}%), p50 ${median(results.map((r) => r.ms)).toFixed(1)} ms, max ${Math.max(...results.map((r) => r.ms)).toFixed(0)} ms`);
  check(ok === results.length, 'the operator is never locked out by an unauthenticated flood');
}

/** Many silent connections: how many the host holds, and whether it reaps them and keeps answering. */
async function silentConnections(count: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-conn-'));
  writeFileSync(join(dir, 'token'), 'operator-secret');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const host = await serve(['--port', String(port), '--token-file', join(dir, 'token')]);
  const sockets: Socket[] = [];
  let closedByHost = 0;
  for (let i = 0; i < count; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => closedByHost++);
    sockets.push(s);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const heldAfter1s = count - closedByHost;
  const during = await operatorCall(port, 'operator-secret');
  await new Promise((r) => setTimeout(r, 6000));
  const heldAfter7s = count - closedByHost;
  const after = await operatorCall(port, 'operator-secret');
  for (const s of sockets) s.destroy();
  await stop(host, 'SIGTERM');
  console.log(`figure: ${count} silent connections: ${heldAfter1s} held after 1 s (cap 64), ${heldAfter7s} after 7 s (idle timeout 5 s); operator during: ${during.ok ? '200' : 'refused'}, after: ${after.ok ? '200' : 'refused'}`);
  check(heldAfter1s <= 64 && heldAfter7s === 0 && after.ok, 'silent connections are capped and reaped; the operator gets through afterwards');
}

/** A full disk (a small tmpfs) under the store: the apply is undone or answered "applied, not recorded", never lost. */
async function diskFull(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chaos-disk-'));
  const mnt = join(dir, 'small');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    console.log('skip disk full on tmpfs: this machine does not let us mount one (the tests use a failing fs shim instead)');
    return;
  }
  const socket = join(dir, 'host.sock');
  const to = `unix:${socket}`;
  try {
    const host = await serve(['--socket', socket, '--store', join(mnt, 'store')]);
    try {
      // Fill the disk, leaving no room for a patch file.
      try {
        writeFileSync(join(mnt, 'filler'), new Uint8Array(64 * 1024));
      } catch {
        /* full: that is the point */
      }
      const loaded = await endpointRequest(to, 'POST', '/patches', { body: await rolePatch('role-fix', 2) }).then(
        () => 'loaded',
        (e: { code: string }) => e.code,
      );
      const status = await applied(to);
      check(loaded === 'E_IO' && status.length === 0, `disk full on a 64 KiB tmpfs: the load is refused (${loaded}) and nothing is applied`);
    } finally {
      await stop(host, 'SIGTERM');
    }
  } finally {
    execFileSync('umount', [mnt]);
  }
}

/** SIGTERM to a host whose guest is stuck in a looping hook: how long until it exits. */
async function sigtermStuck(runs: number): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'chaos-term-'));
    const socket = join(dir, 'host.sock');
    const host = await serve(['--socket', socket, '--timeout', '60000']);
    await endpointRequest(`unix:${socket}`, 'POST', '/patches', { body: await rolePatch('loops', 1, { preApply: '(loop $l (br $l)) (i32.const 0)' }) });
    void endpointRequest(`unix:${socket}`, 'POST', '/patches/loops/apply').catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await stop(host, 'SIGTERM');
    times.push(performance.now() - t0);
  }
  console.log(`figure: SIGTERM to exit with the guest stuck in a hook: median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms (${runs} runs)`);
  check(Math.max(...times) < 5000, 'SIGTERM stops a host whose guest is stuck');
}

const rounds = Number(process.argv[2] ?? 40);
await killsDuringApply(rounds);
await flood(5, 64);
await silentConnections(500);
await diskFull();
await sigtermStuck(10);
if (failures.length > 0) {
  console.log(`${failures.length} chaos check(s) failed`);
  process.exit(1);
}
