// The package as users get it (issue 16): `npm pack`, installed into an empty project, runs the
// demo, every `npx wasm-hotpatch` command of the README, and the README's example, copied out of
// the package. Packs the dist/ that `npm test` has just built.
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

/**
 * Every `npx wasm-hotpatch` command in the README's sh blocks, as one line each, without its
 * optional [parts] and comments. The fleet section's commands need a NATS server, a controller
 * and agents: test/fleet-cli.test.ts runs them as processes against a real nats-server.
 */
function readmeCommands(): string[] {
  const commands: string[] = [];
  const local = readme.slice(0, readme.indexOf('\n## Fleets'));
  for (const [, block] of local.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block!.split('\n')) {
      const text = line.replace(/\s#.*$/, '');
      if (text.startsWith('npx wasm-hotpatch')) commands.push(text);
      else if (/^\s+\S/.test(text) && commands.length > 0) commands[commands.length - 1] += ` ${text.trim()}`;
    }
  }
  return commands.map((c) =>
    c
      .replace(/\[[^\]]*\]/g, '')
      .replace(/\s+/g, ' ')
      .trim(),
  );
}

/** The README's text block right after the sentence that names the example. */
function readmeExampleOutput(): string {
  const after = readme.slice(readme.indexOf('patches/account-service/example.ts` prints:'));
  return /```\n([\s\S]*?)```/.exec(after)![1]!;
}

describe('the packed package, installed into an empty project', () => {
  const project = mkdtempSync(join(tmpdir(), 'installed-'));
  const npx = (args: string[], options: { timeout?: number } = {}) =>
    exec('npx', ['--no-install', ...args], { cwd: project, env: { ...process.env, NO_COLOR: '1' }, timeout: options.timeout ?? 60_000 });

  beforeAll(async () => {
    const packDir = mkdtempSync(join(tmpdir(), 'pack-'));
    const packed = JSON.parse((await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: root })).stdout) as { filename: string }[];
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'try-wasm-hotpatch', private: true, type: 'module' }));
    await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(packDir, packed[0]!.filename)], { cwd: project, timeout: 120_000 });
  }, 180_000);

  it('runs the demo: JSON summary, and plain lines when piped', async () => {
    const summary = JSON.parse((await npx(['wasm-hotpatch', 'demo', '--seconds', '1', '--json'])).stdout);
    expect(summary).toMatchObject({ dropped: 0, exploitsSucceeded: { patched: 0 }, bankTotalKept: true, ranUntilStopped: true });
    const plain = (await npx(['wasm-hotpatch', 'demo', '--seconds', '1'])).stdout;
    expect(plain).toContain('applied  "fix-name-overflow" in the running guest');
    expect(plain).toContain('dropped: 0');
    expect(plain).not.toContain('\x1b[');
  });

  it("runs every npx wasm-hotpatch command of the README, on the package's own example files", async () => {
    const examples = join(project, 'node_modules/wasm-hotpatch/patches/account-service');
    for (const [name, from] of [
      ['app.wasm', 'service.wasm'],
      ['app-fixed.wasm', 'service-fixed.wasm'],
      ['fix.wat', 'fix-name-overflow.wat'],
      ['fix.json', 'fix-name-overflow.json'],
    ]) {
      copyFileSync(join(examples, from!), join(project, name!));
    }
    const socket = join(mkdtempSync(join(tmpdir(), 'sock-')), 'app.sock');
    const commands = readmeCommands().map((c) => c.replaceAll('/tmp/app.sock', socket));
    expect(commands.map((c) => c.split(' ')[2])).toEqual(['prepare', 'prepare', 'prepare', 'build', 'diff', 'keygen', 'sign', 'verify', 'serve', 'apply', 'status', 'revert']);
    let host: ReturnType<typeof spawn> | undefined;
    try {
      for (const command of commands) {
        const args = command.split(' ').slice(1);
        if (args[1] === 'serve') {
          mkdirSync(join(project, 'patch-level'), { recursive: true });
          // Its own process group: npx does not pass SIGTERM on to the command it runs.
          host = spawn('npx', ['--no-install', ...args], { cwd: project, env: { ...process.env, NO_COLOR: '1' }, detached: true });
          const line = await new Promise<string>((resolve, reject) => {
            host!.stdout!.once('data', (d) => resolve(String(d)));
            host!.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
          });
          expect(line).toContain(`serving baseline`);
          continue;
        }
        if (command.includes('--exclude-hot')) await profileWorkload(project);
        const { stdout } = await npx(args);
        expect(stdout, command).not.toBe('');
      }
    } finally {
      if (host?.pid !== undefined && host.exitCode === null) {
        const exited = new Promise((resolve) => host!.once('exit', resolve));
        process.kill(-host.pid, 'SIGTERM');
        await exited;
      }
    }
  });

  it("runs the README's example, copied out of the package into the project, with the README's output", async () => {
    const examples = join(project, 'node_modules/wasm-hotpatch/patches/account-service');
    const dir = join(project, 'example');
    mkdirSync(dir, { recursive: true });
    for (const file of ['example.ts', 'service.wasm', 'fix-name-overflow.wat', 'fix-name-overflow.json']) copyFileSync(join(examples, file), join(dir, file));
    const { stdout } = await exec(process.execPath, ['--import', tsx, 'example/example.ts'], { cwd: project });
    expect(stdout).toBe(readmeExampleOutput());
  });

  it('a file missing from the installation is an I/O error naming it, not a usage error', async () => {
    const wasm = join(project, 'node_modules/wasm-hotpatch/patches/account-service/service.wasm');
    renameSync(wasm, `${wasm}.away`);
    try {
      const failed = await npx(['wasm-hotpatch', 'demo', '--seconds', '1', '--json']).then(
        () => ({ code: 0, stdout: '{}' }),
        (e: { code: number; stdout: string }) => e,
      );
      expect(failed.code).toBe(2);
      expect(JSON.parse(failed.stdout).error).toMatchObject({ code: 'E_IO', message: expect.stringContaining('service.wasm: ENOENT') });
    } finally {
      renameSync(`${wasm}.away`, wasm);
    }
  });
});

/** The README's profiling snippet, run in the project against the installed package: a workload on the counting build, its profile written. */
async function profileWorkload(project: string): Promise<void> {
  const script = `
    import { readFileSync, writeFileSync } from 'node:fs';
    import { prepareProfile, readProfile } from 'wasm-hotpatch';
    const counting = await prepareProfile(readFileSync('app.wasm'));
    const { instance } = await WebAssembly.instantiate(counting.bytes);
    instance.exports.init();
    instance.exports.simulate(2000);
    writeFileSync('app.profile.json', JSON.stringify(readProfile(counting, instance)));`;
  await exec(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
}
