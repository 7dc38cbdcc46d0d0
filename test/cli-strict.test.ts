// A strict, helpful command line: typos are errors that name the nearest spelling, every command
// speaks JSON, help fits 80 columns, errors keep their own codes (issue 16).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { guard } from '../src/cli/_io.js';
import { Terminal } from './terminal.js';
import { files } from '../src/demo/account-service.js';
import { cli, runCli } from './cli-run.js';

const baseline = new URL('../patches/account-service/service.baseline.wasm', import.meta.url).pathname;
const patch = new URL('../patches/account-service/fix-name-overflow.patch.wasm', import.meta.url).pathname;
const COMMANDS = ['prepare', 'build', 'diff', 'inspect', 'keygen', 'sign', 'verify', 'serve', 'apply', 'revert', 'status', 'demo'];

const run = runCli;

describe('typos are errors with a suggestion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-strict-'));

  it('an unknown command', async () => {
    const r = await run(['prepar', files.service.pathname]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error E_USAGE: unknown command 'prepar' (did you mean prepare?); see wasm-hotpatch --help\n");
  });

  it('an unknown flag: nothing is written, exit 1', async () => {
    const out = join(dir, 'never.wasm');
    const r = await run(['prepare', files.service.pathname, '-o', out, '--exlude', '^mem']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error E_USAGE: unknown option '--exlude' (did you mean --exclude?); see wasm-hotpatch prepare --help\n");
    expect(() => readFileSync(out)).toThrow();
    const out2 = await run(['prepare', files.service.pathname, '--out', out]);
    expect(out2.code).toBe(1);
    expect(out2.stderr).toContain("unknown option '--out' (did you mean --output?)");
    expect(out2.stdout).toBe(''); // no wall of help
  });

  it('a stray argument, a missing required option, and the same as JSON', async () => {
    const stray = await run(['inspect', baseline, 'extra']);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/^error E_USAGE: too many arguments for 'inspect'/);
    const json = await run(['build', 'fix.wat', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'E_USAGE', message: expect.stringMatching(/^missing --manifest <file>: patch manifest/) } });
    expect(json.stderr).toBe('');
  });

  it('no command at all is a usage error after the help', async () => {
    const r = await run([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Usage: wasm-hotpatch');
  });
});

describe('help', () => {
  it('fits 80 columns, without trailing padding or colour, with an example and --json, for every command', async () => {
    const top = await run(['--help'], { NO_COLOR: undefined });
    for (const c of COMMANDS) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    for (const command of ['', ...COMMANDS]) {
      const help = command ? (await run([command, '--help'], { NO_COLOR: undefined })).stdout : top.stdout;
      for (const line of help.split('\n')) {
        expect(line.length, `${command}: ${line}`).toBeLessThanOrEqual(80);
        expect(line, `${command}: trailing spaces`).toBe(line.trimEnd());
      }
      expect(help).not.toContain('\x1b[');
      if (command) {
        expect(help, command).toMatch(/\nExamples?:\n {2}wasm-hotpatch /);
        expect(help, command).toContain('--json');
      }
    }
  });
});

describe('errors keep their codes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-codes-'));

  it('a missing file is E_IO (exit 2), not a usage error', async () => {
    const r = await run(['inspect', join(dir, 'missing.wasm')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error E_IO: cannot read .*missing\.wasm: ENOENT\n$/);
    const demo = await run(['demo', '--seconds', 'soon', '--json']);
    expect(demo.code).toBe(1);
    expect(JSON.parse(demo.stdout).error.code).toBe('E_USAGE');
  });

  it('anything unexpected is E_INTERNAL (exit 2), never passed off as a usage error', async () => {
    const written: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => written.push(String(chunk)) > 0);
    try {
      await guard(true, async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'slots')");
      });
    } finally {
      write.mockRestore();
    }
    const exitCode = process.exitCode;
    process.exitCode = undefined;
    expect(exitCode).toBe(2);
    expect(JSON.parse(written.join(''))).toMatchObject({ error: { code: 'E_INTERNAL', message: expect.stringContaining("(reading 'slots') (a bug in wasm-hotpatch") } });
  });

  it('prepare refuses to overwrite its input', async () => {
    const input = join(dir, 's.wasm');
    copyFileSync(files.service, input);
    const before = readFileSync(input);
    for (const output of [input, join(dir, '.', 's.wasm')]) {
      const r = await run(['prepare', input, '-o', output]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('is the input: prepare writes a new file and keeps the original build');
      expect(readFileSync(input).equals(before)).toBe(true);
    }
  });

  it('key mix-ups say which key the option needs', async () => {
    const stem = join(dir, 'release');
    expect((await run(['keygen', '-o', stem])).code).toBe(0);
    const signed = join(dir, 'fix.patch.wasm');
    copyFileSync(patch, signed);
    const wrongPrivate = await run(['verify', signed, '--trust', `${stem}.key`]);
    expect(wrongPrivate.code).toBe(1);
    expect(wrongPrivate.stderr).toBe(`error E_USAGE: ${stem}.key is a private key; --trust needs the public key (.pub; keygen writes both)\n`);
    const wrongPublic = await run(['sign', signed, '--key', `${stem}.pub`]);
    expect(wrongPublic.code).toBe(1);
    expect(wrongPublic.stderr).toContain(`${stem}.pub is a public key; --key needs the private key (.key`);
    expect((await run(['sign', signed, '--key', `${stem}.key`])).code).toBe(0);
    expect(JSON.parse((await run(['verify', signed, '--trust', `${stem}.pub`, '--json'])).stdout)).toMatchObject({ verified: true });
    writeFileSync(join(dir, 'garbage.pub'), 'not a key');
    const garbage = await run(['verify', signed, '--trust', join(dir, 'garbage.pub')]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toContain('E_BAD_SIGNATURE: not an Ed25519 public key');
  });
});

describe('serve --json', () => {
  it('prints one JSON line when serving and one when stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-serve-'));
    const socket = join(dir, 'host.sock');
    const host = spawn(process.execPath, [cli, 'serve', baseline, '--socket', socket, '--allow-unsigned', '--json']);
    let out = '';
    const exited = new Promise<number | null>((resolve) => host.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        host.stdout.on('data', (d) => {
          out += String(d);
          if (out.includes('\n')) resolve();
        });
        host.once('exit', () => reject(new Error(`serve exited early: ${out}`)));
      });
      expect(JSON.parse(out.split('\n')[0]!)).toMatchObject({ event: 'serving', address: `unix:${socket}`, restored: null });
      const applied = await run(['apply', patch, '--to', `unix:${socket}`, '--json']);
      expect(JSON.parse(applied.stdout)).toMatchObject({ id: 'fix-name-overflow' });
    } finally {
      host.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(
      out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).event),
    ).toEqual(['serving', 'stopped']);
  });
});

describe('colour', () => {
  const inspect = `node dist/cli/main.js inspect ${baseline}`;

  it('in a terminal, unless NO_COLOR is set; never when piped', async () => {
    const screens: string[] = [];
    for (const env of [{ NO_COLOR: '' }, { NO_COLOR: '1' }]) {
      const term = new Terminal(100, 30, inspect, env);
      try {
        await term.waitForExit();
        screens.push(term.screen(false, true));
      } finally {
        term.close();
      }
    }
    expect(screens[0]).toContain('\x1b[2m() -> (i32)'); // signatures dimmed, as the terminal shows them
    expect(screens[1]).toContain('() -> (i32)');
    expect(screens[1]).not.toContain('\x1b[');
    const piped = await run(['inspect', baseline], { NO_COLOR: undefined });
    expect(piped.stdout).toContain('baseline');
    expect(piped.stdout).not.toContain('\x1b[');
  });
});
