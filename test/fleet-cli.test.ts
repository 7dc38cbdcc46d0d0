import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { generateKeys } from '../src/build/sign.js';
import { fleetPatches } from '../src/demo/fleet-patches.js';
import { startNatsServer, type NatsServer } from '../src/fleet/server.js';
import type { ComplianceReport } from '../src/fleet/report.js';

const run = promisify(execFile);
const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'fleet-cli-'));
const children: ChildProcess[] = [];
let server: NatsServer | undefined;

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const wasm = (...args: string[]) => run(process.execPath, [cli, ...args], { env: { ...process.env, NO_COLOR: '1' } });
const start = (...args: string[]): ChildProcess => {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: 'ignore' });
  children.push(child);
  return child;
};

describe('wasm-hotpatch fleet and agent', () => {
  it('init, a controller and two agents as processes, a release, a report', async () => {
    await wasm('fleet', 'init', '--out', join(dir, 'creds'), '--hosts', 'cli-1,cli-2');
    expect(statSync(join(dir, 'creds', 'agents', 'cli-1.json')).mode & 0o777).toBe(0o600);
    const config = readFileSync(join(dir, 'creds', 'server.conf'), 'utf8').replace(/jetstream \{[^}]*\}\n/, '');
    server = await startNatsServer({ config });
    const creds = (name: string) => ['--server', server!.url, '--creds', join(dir, 'creds', `${name}.json`)];
    const keys = generateKeys();
    writeFileSync(join(dir, 'release.pub'), keys.publicKey);
    const patches = await fleetPatches(keys.privateKey);
    writeFileSync(join(dir, 'fix.wasm'), patches.fix);
    const baseline = new URL('../patches/account-service/service.baseline.wasm', import.meta.url).pathname;

    start('fleet', 'controller', ...creds('controller'), '--interval', '100ms', '--presence-ttl', '3s');
    const controllerCreds = creds('controller');
    await vi.waitFor(() => wasm('fleet', 'status', ...controllerCreds), { timeout: 15_000, interval: 100 });
    for (const [host, ring] of [
      ['cli-1', 'test'],
      ['cli-2', 'broad'],
    ])
      start('agent', baseline, '--host', host!, '--ring', ring!, ...creds(`agents/${host}`), '--trust', join(dir, 'release.pub'), '--heartbeat', '500ms');

    const released = await wasm('fleet', 'release', 'cli-r1', '--patch', join(dir, 'fix.wasm'), '--rings', 'test,broad', '--soak', '200ms', '--min-share', '1', ...controllerCreds);
    expect(released.stdout).toContain('released cli-r1: name-check-2');
    const report = await vi.waitFor(
      async () => {
        const { stdout } = await wasm('fleet', 'report', '--json', ...controllerCreds);
        const parsed = JSON.parse(stdout) as ComplianceReport;
        if (parsed.release?.state !== 'complete' || parsed.compliant !== 2) throw new Error(stdout);
        return parsed;
      },
      { timeout: 30_000, interval: 200 },
    );
    expect(report.byRing.map((r) => [r.ring, r.counts.applied])).toEqual([
      ['test', 1],
      ['broad', 1],
    ]);
    const text = (await wasm('fleet', 'report', ...controllerCreds)).stdout;
    expect(text).toContain('compliant 2 of 2 eligible hosts (100.0%)');
    expect(text).toMatch(/ring\s+applied/);
    const status = (await wasm('fleet', 'status', ...controllerCreds)).stdout;
    expect(status).toMatch(/cli-r1\s+complete\s+test \(promoted\) → broad \(promoted\)/);
    const audit = (await wasm('fleet', 'audit', '--filter', 'host.>', ...controllerCreds)).stdout;
    expect(audit).toContain('host.cli-1');
    await expect(wasm('fleet', 'pause', 'cli-r1', ...controllerCreds)).rejects.toMatchObject({ stderr: expect.stringContaining('E_REFUSED') });
  });
});
