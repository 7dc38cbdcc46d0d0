// Command groups (`wasm-hotpatch fleet <command>`): subcommands are as strict and as helpful as
// top-level commands — typos named with the nearest spelling, the hint naming the whole command,
// --json on each, help within 80 columns with an example.
import { describe, expect, it } from 'vitest';
import { defineCommand, defineGroup, toCommander } from '../src/cli/_command.js';
import { runCli } from './cli-run.js';

const FLEET = ['init', 'controller', 'release', 'promote', 'pause', 'resume', 'rollback', 'status', 'report', 'audit'];

const run = (args: string[]) => runCli(args);

describe('a command group', () => {
  it('an unknown subcommand names the nearest one; none at all is a usage error after the help', async () => {
    const typo = await run(['fleet', 'relase', 'fix-7']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toBe("error E_USAGE: unknown command 'relase' (did you mean release?); see wasm-hotpatch fleet --help\n");
    const none = await run(['fleet']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('Usage: wasm-hotpatch fleet');
  });

  it("a subcommand's unknown flag, stray argument and missing option, in text and JSON, hint at the whole command", async () => {
    const flag = await run(['fleet', 'release', 'fix-7', '--patch', 'a.wasm', '--rings', 'test', '--sok', '1m']);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toBe("error E_USAGE: unknown option '--sok' (did you mean --soak?); see wasm-hotpatch fleet release --help\n");
    const stray = await run(['fleet', 'status', 'extra']);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/^error E_USAGE: too many arguments for 'status'.*; see wasm-hotpatch fleet status --help\n$/);
    const missing = await run(['fleet', 'release', 'fix-7', '--rings', 'test', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({
      error: { code: 'E_USAGE', message: 'missing --patch <files>: patch files, comma-separated (one per baseline); see wasm-hotpatch fleet release --help' },
    });
    expect(missing.stderr).toBe('');
    const agent = await run(['agent', 'app.wasm', '--host', 'web-1']);
    expect(agent.stderr).toBe("error E_USAGE: missing --ring <name>: this host's ring; see wasm-hotpatch agent --help\n");
  });

  it('help lists every subcommand, and each fits 80 columns with an example and --json', async () => {
    const group = await run(['fleet', '--help']);
    expect(group.code).toBe(0);
    for (const c of FLEET) expect(group.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect((await run(['--help'])).stdout).toMatch(/^ {2}fleet +Release patches to a fleet of hosts in rings$/m);
    for (const path of [...FLEET.map((c) => ['fleet', c]), ['agent']]) {
      const help = (await run([...path, '--help'])).stdout;
      for (const line of help.split('\n')) expect(line.length, `${path.join(' ')}: ${line}`).toBeLessThanOrEqual(80);
      expect(help, path.join(' ')).toMatch(new RegExp(`\\nExamples?:\\n {2}wasm-hotpatch ${path.join(' ')} `));
      expect(help, path.join(' ')).toContain('--json');
    }
  });

  it("runs the subcommand with its own arguments; a --no-<x> flag is read as given, not as commander's negation", async () => {
    const seen: unknown[] = [];
    const sub = defineCommand({
      name: 'go',
      description: 'Go.',
      examples: ['wasm-hotpatch g go x --no-rollback'],
      args: { id: { type: 'positional', description: 'an id', required: true }, 'no-rollback': { type: 'boolean', description: 'keep going' } },
      async run(args) {
        seen.push(args);
      },
    });
    const group = toCommander(defineGroup({ name: 'g', description: 'A group.', commands: [sub] }));
    await group.parseAsync(['go', 'x', '--no-rollback', '--json'], { from: 'user' });
    await group.parseAsync(['go', 'y'], { from: 'user' });
    process.exitCode = undefined;
    expect(seen).toEqual([
      { id: 'x', 'no-rollback': true, json: true },
      { id: 'y', 'no-rollback': false, json: false },
    ]);
  });
});
