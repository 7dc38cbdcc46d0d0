import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { files } from '../src/demo/account-service.js';
import { fixture } from './helpers.js';
import { runCli } from './cli-run.js';

const run = (...args: string[]) => runCli(args);

describe('the wasm-hotpatch command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const baseline = join(dir, 'service.baseline.wasm');
  const patch = join(dir, 'fix.patch.wasm');

  it('prepares, builds and inspects, in text and JSON', async () => {
    const prepared = await run('prepare', files.service.pathname, '-o', baseline, '--json');
    expect(prepared.code).toBe(0);
    const summary = JSON.parse(prepared.stdout);
    expect(summary).toMatchObject({ output: baseline, dispatch: 'entry', notPatchable: [] });
    expect(summary.patchable).toBe(summary.functions);
    expect(summary.functions).toBeGreaterThan(10);

    const built = await run('build', files.patchWat.pathname, '--manifest', files.patchManifest.pathname, '--baseline', baseline, '-o', patch);
    expect(built.code).toBe(0);
    expect(built.stdout).toContain('set_name ← set_name');

    const asBaseline = JSON.parse((await run('inspect', baseline, '--json')).stdout);
    expect(asBaseline).toMatchObject({ kind: 'baseline', id: summary.id });
    const asPatch = JSON.parse((await run('inspect', patch, '--json')).stdout);
    expect(asPatch).toMatchObject({ kind: 'patch', id: 'fix-name-overflow', baseline: summary.id });
    const plain = await run('inspect', fixture('c/workload.wasm'));
    expect(plain.stdout).toMatch(/prepare would make (\d+) of \1 functions patchable \(0 are imported\)/);
  });

  it('prepares with safepoints and quiescent consistency, and refuses unknown choices', async () => {
    const out = join(dir, 'service.safepoints.wasm');
    const prepared = await run('prepare', files.service.pathname, '-o', out, '--safepoints', 'loops,entries', '--interval', '200', '--consistency', 'quiescent', '--json');
    expect(prepared.code).toBe(0);
    expect(JSON.parse(prepared.stdout)).toMatchObject({ consistency: 'quiescent', safepoints: { loops: true, entries: true, interval: 256 } });
    const text = await run('prepare', files.service.pathname, '-o', out, '--safepoints', 'loops');
    expect(text.stdout).toContain('safepoints   loops every 1024');

    for (const args of [
      ['--safepoints', 'corners'],
      ['--consistency', 'eventual'],
      ['--interval', 'often'],
    ]) {
      const refused = await run('prepare', files.service.pathname, '-o', join(dir, 'never.wasm'), ...args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain('E_BAD_OPTIONS');
    }
  });

  it('fails with one readable line, a non-zero exit code and no output file', async () => {
    const notWasm = join(dir, 'not.wasm');
    writeFileSync(notWasm, 'hello');
    const out = join(dir, 'never.wasm');
    const result = await run('prepare', notWasm, '-o', out);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('E_NOT_WASM');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const json = await run('prepare', join(dir, 'missing.wasm'), '-o', out, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'E_IO' } });

    const badManifest = join(dir, 'bad.json');
    writeFileSync(badManifest, JSON.stringify({ id: 'x', sequence: 1, targets: [{ function: 'nope', export: 'set_name' }] }));
    const rejected = await run('build', files.patchWat.pathname, '--manifest', badManifest, '--baseline', baseline, '-o', out);
    expect(rejected.code).toBe(2);
    expect(rejected.stderr).toMatch(/E_PATCH_REJECTED: .*no function named "nope"/);
    expect(existsSync(out)).toBe(false);
  });

  it('diff: exit 0 and a patch, or exit 3 and every reason, never a partial file', async () => {
    const examples = new URL('../patches/', import.meta.url).pathname;
    const fix = join(dir, 'fix-c.patch.wasm');
    const ok = await run('diff', `${examples}account-service/service.wasm`, `${examples}account-service/service-fixed.wasm`, '--baseline', baseline, '-o', fix, '--id', 'fix-c', '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ hotpatchable: true, changed: ['set_name'], exactStatics: true, manifest: { id: 'fix-c' } });
    expect(JSON.parse((await run('inspect', fix, '--json')).stdout)).toMatchObject({ kind: 'patch', targets: [{ function: 'set_name' }] });

    const framesBaseline = `${examples}rust-frames-refused/frames.baseline.wasm`;
    const out = join(dir, 'frames.patch.wasm');
    const refused = await run('diff', `${examples}rust-frames-refused/frames.wasm`, `${examples}rust-frames-refused/frames-fixed.wasm`, '--baseline', framesBaseline, '-o', out, '--json');
    expect(refused.code).toBe(3);
    const answer = JSON.parse(refused.stdout);
    expect(answer.hotpatchable).toBe(false);
    expect(answer.reasons[0]).toEqual({ code: expect.any(String), item: expect.any(String), message: expect.any(String) });
    const text = await run('diff', `${examples}rust-frames-refused/frames.wasm`, `${examples}rust-frames-refused/frames-fixed.wasm`, '--baseline', framesBaseline, '-o', out);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^needs a new baseline: \d+ changes a patch cannot carry/);
    expect(existsSync(out)).toBe(false);

    const wrong = await run('diff', `${examples}rust-quota/quota.wasm`, `${examples}rust-quota/quota-fixed.wasm`, '--baseline', framesBaseline, '-o', out);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('E_WRONG_BUILD');
  });

  it('prints help with an example for every command', async () => {
    for (const command of ['prepare', 'build', 'diff', 'inspect', 'demo']) {
      const help = await run(command, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples?:\n {2}wasm-hotpatch/);
    }
  });
});
