// diff carries a change to a function the baseline cannot patch (excluded as hot) through its
// callers, on clang output (test/fixtures/hot, built by test/fixtures/build.sh).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable, type NotHotpatchable } from '../src/build/diff.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { prepareProfile, readProfile } from '../src/prepare/profile.js';
import { runCli } from './cli-run.js';
import { fixture, wasmFixture } from './helpers.js';

type Vm = { run(n: number): number; step(op: number, a: number, b: number): number; steps(): bigint; depth(): number };

const vm = wasmFixture('hot/vm.wasm');
const fixed = wasmFixture('hot/vm-fixed.wasm');
const refused = wasmFixture('hot/vm-refused.wasm');

/** A baseline of vm.wasm without the `count` hottest functions of run(1000). */
async function hotBaseline(count: number) {
  const counting = await prepareProfile(vm);
  const { instance } = await WebAssembly.instantiate(counting.bytes as BufferSource);
  (instance.exports as unknown as Vm).run(1000);
  const profile = readProfile(counting, instance);
  return { profile, baseline: await prepare(vm, { excludeHot: { profile, count } }) };
}

describe('diff carries a change to an unpatchable function through its callers', () => {
  it('a fix in an excluded hot leaf is applied live and reverted, the guest state intact', async () => {
    const { baseline } = await hotBaseline(3); // push, pop, clamp
    expect(baseline.excludedHot!.map((h) => h.name)).toEqual(['push', 'pop', 'clamp']);
    const result = (await diffBuilds(vm, fixed, { baseline: baseline.bytes, id: 'fix-clamp' })) as Hotpatchable;
    expect(result.hotpatchable).toBe(true);
    // clamp (changed) and push (its only caller, excluded too) travel as helpers; push's callers,
    // step and run (clang inlined step into run), are patched to call them.
    expect(result.throughCallers).toEqual([
      { function: 'clamp', reason: expect.stringMatching(/^excluded as hot/), changed: true, callers: ['push'] },
      { function: 'push', reason: expect.stringMatching(/^excluded as hot/), changed: false, callers: ['step', 'run'] },
    ]);
    expect(result.changed).toEqual(['step', 'run']);
    expect(result.patch.manifest.targets.map((t) => t.function)).toEqual(['step', 'run']);

    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as unknown as Vm;
    const reference = (await WebAssembly.instantiate(fixed as BufferSource)).instance.exports as unknown as Vm;
    const before = e.run(500);
    expect(e.step(1, -3000, 0)).toBe(-3000); // the bug: clamp has no lower bound
    expect(e.steps()).toBe(501n);

    const patch = guest.apply(await guest.load(result.patch.bytes));
    expect(e.step(1, -3000, 0)).toBe(-1000);
    expect(e.run(500)).toBe(reference.run(500));
    expect(e.steps()).toBe(1002n); // the count the guest kept before the patch goes on
    expect(e.depth()).toBe(0);

    guest.revert(patch);
    expect(e.step(1, -3000, 0)).toBe(-3000);
    expect(e.run(500)).toBe(before);
    expect(e.steps()).toBe(1503n);
    guest.close();
  });

  it('the same for a function left out by --exclude, through a patchable caller at once', async () => {
    const baseline = await prepare(vm, { exclude: '^clamp$' });
    const result = (await diffBuilds(vm, fixed, { baseline: baseline.bytes, id: 'fix-clamp' })) as Hotpatchable;
    expect(result.throughCallers.map((t) => [t.function, t.callers])).toEqual([['clamp', ['push']]]);
    expect(result.changed).toEqual(['push']);
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as unknown as Vm;
    guest.apply(await guest.load(result.patch.bytes));
    expect(e.step(1, -3000, 0)).toBe(-1000);
    guest.close();
  });

  it('refuses, with every reason, when an excluded changed function is exported or called through a table', async () => {
    const { baseline } = await hotBaseline(8); // step and the op_* functions too
    const excluded = baseline.excludedHot!.map((h) => h.name);
    expect(excluded).toEqual(expect.arrayContaining(['op_sub', 'run']));
    const result = (await diffBuilds(vm, refused, { baseline: baseline.bytes, id: 'refused' })) as NotHotpatchable;
    expect(result.hotpatchable).toBe(false);
    const byItem = Object.fromEntries(result.reasons.map((r) => [r.item, r]));
    expect(Object.keys(byItem).sort()).toEqual(['op_sub', 'run']);
    expect(result.reasons.every((r) => r.code === 'NOT_PATCHABLE')).toBe(true);
    expect(byItem.op_sub!.message).toMatch(/in element segment 0 \(a function pointer in table 0\)/);
    // step was inlined into run, so the change to step's code is a change to run, the exported one.
    expect(byItem.run!.message).toMatch(/exported as `run`/);
  });

  it('the command line says which functions were carried through callers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callers-'));
    const { profile } = await hotBaseline(3);
    writeFileSync(join(dir, 'vm.profile.json'), JSON.stringify(profile));
    const base = join(dir, 'vm.baseline.wasm');
    expect((await runCli(['prepare', fixture('hot/vm.wasm'), '-o', base, '--exclude-hot', join(dir, 'vm.profile.json'), '--hot-count', '3'])).code).toBe(0);
    const out = await runCli(['diff', fixture('hot/vm.wasm'), fixture('hot/vm-fixed.wasm'), '--baseline', base, '-o', join(dir, 'fix.patch.wasm'), '--json']);
    expect(out.code).toBe(0);
    const json = JSON.parse(out.stdout);
    expect(json.changed).toEqual(['step', 'run']);
    expect(json.throughCallers.map((t: { function: string }) => t.function)).toEqual(['clamp', 'push']);
    const text = await runCli(['diff', fixture('hot/vm.wasm'), fixture('hot/vm-fixed.wasm'), '--baseline', base, '-o', join(dir, 'fix.patch.wasm')]);
    expect(text.stdout).toMatch(/through {2}clamp \(changed; not patchable: excluded as hot: 4000 calls .*\) carried as a helper; its callers push replaced/);
  });
});
