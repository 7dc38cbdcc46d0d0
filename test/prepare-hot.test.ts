// Profile-guided exclusion (issue 15): a counting build, its profile, and a baseline that leaves
// the hottest functions without the entry check.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HotpatchError } from '../src/errors.js';
import { prepare } from '../src/prepare/prepare.js';
import { parseProfile, prepareProfile, readProfile } from '../src/prepare/profile.js';
import { runCli } from './cli-run.js';
import { fixture, wasmFixture } from './helpers.js';

type Vm = { run(n: number): number; step(op: number, a: number, b: number): number; steps(): bigint; depth(): number };

const vm = wasmFixture('hot/vm.wasm');

async function profileOf(n: number) {
  const counting = await prepareProfile(vm);
  const { instance } = await WebAssembly.instantiate(counting.bytes as BufferSource);
  (instance.exports as unknown as Vm).run(n);
  return readProfile(counting, instance);
}

const codeOf = async (p: Promise<unknown> | (() => unknown)): Promise<string | undefined> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (error) {
    return error instanceof HotpatchError ? error.code : String(error);
  }
  return undefined;
};

describe('profile-guided exclusion', () => {
  it('the counting build behaves as the original and counts every entry', async () => {
    const counting = await prepareProfile(vm);
    const original = (await WebAssembly.instantiate(vm as BufferSource)).instance.exports as unknown as Vm;
    const { instance } = await WebAssembly.instantiate(counting.bytes as BufferSource);
    const counted = instance.exports as unknown as Vm;
    expect(counted.run(300)).toBe(original.run(300));
    expect(counted.steps()).toBe(original.steps());
    const profile = readProfile(counting, instance);
    const calls = Object.fromEntries(profile.functions.map((f) => [f.name, f.calls]));
    // Each step pushes four times (each push clamps) and pops four times; clang inlined `step` into `run`.
    expect(calls).toMatchObject({ run: 1, push: 1200, pop: 1200, clamp: 1200, op_add: 100, op_sub: 100, op_mul: 100, get_steps: 1 });
    expect(calls.step).toBeUndefined();
    expect(profile.functions.slice(0, 3).map((f) => f.name)).toEqual(['push', 'pop', 'clamp']);
    expect(profile.total).toBe(1 + 3 * 1200 + 300 + 1);
    expect(parseProfile(JSON.stringify(profile))).toEqual(profile);
  });

  it('prepare leaves the hottest functions without the entry check and says why', async () => {
    const baseline = await prepare(vm, { excludeHot: { profile: await profileOf(1000), count: 3 } });
    expect(baseline.excludedHot!.map((h) => [h.name, h.calls, h.rank])).toEqual([
      ['push', 4000, 1],
      ['pop', 4000, 2],
      ['clamp', 4000, 3],
    ]);
    const fn = (name: string) => baseline.manifest.functions.find((f) => f.name === name)!;
    expect(fn('clamp').slot).toBeUndefined();
    expect(fn('clamp').reason).toMatch(/^excluded as hot: 4000 calls \(\d+\.\d% of the profile's, rank 3\)$/);
    expect(fn('step').slot).toBeDefined();
    expect(baseline.manifest.slots).toBe(7);
    // The baseline still computes what the original does.
    const original = (await WebAssembly.instantiate(vm as BufferSource)).instance.exports as unknown as Vm;
    const prepared = (await WebAssembly.instantiate(baseline.bytes as BufferSource)).instance.exports as unknown as Vm;
    expect(prepared.run(500)).toBe(original.run(500));
  });

  it('refuses a bad profile, a profile of another build and a bad count with typed errors', async () => {
    const profile = await profileOf(10);
    expect(await codeOf(() => parseProfile('{not json'))).toBe('E_BAD_PROFILE');
    expect(await codeOf(() => parseProfile({ format: 'other', functions: 3 }))).toBe('E_BAD_PROFILE');
    expect(await codeOf(() => parseProfile({ ...profile, functions: [{ index: -1, name: 'x', calls: 1, size: 1 }] }))).toBe('E_BAD_PROFILE');
    const other = wasmFixture('hot/vm-fixed.wasm');
    expect(await codeOf(prepare(other, { excludeHot: { profile, count: 3 } }))).toBe('E_BAD_PROFILE');
    expect(await codeOf(prepare(vm, { excludeHot: { profile: { ...profile, functions: [{ index: 99, name: 'x', calls: 1, size: 1 }] }, count: 3 } }))).toBe('E_BAD_PROFILE');
    expect(await codeOf(prepare(vm, { excludeHot: { profile, count: -1 } }))).toBe('E_BAD_OPTIONS');
    expect(await codeOf(prepareProfile((await prepare(vm)).bytes))).toBe('E_ALREADY_PREPARED');
    const { instance } = await WebAssembly.instantiate(vm as BufferSource);
    expect(await codeOf(async () => readProfile(await prepareProfile(vm), instance))).toBe('E_BAD_PROFILE');
  });

  it('the command line: --profile, then --exclude-hot with --hot-count, --json says what was excluded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hot-'));
    const counting = join(dir, 'vm.counting.wasm');
    const made = await runCli(['prepare', fixture('hot/vm.wasm'), '-o', counting, '--profile', '--json']);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ counting: true, functions: 10 });
    // The workload runs on the counting build (here, in this process) and the profile is written.
    const build = { ...(await prepareProfile(vm)), bytes: new Uint8Array(readFileSync(counting)) };
    const { instance } = await WebAssembly.instantiate(build.bytes as BufferSource);
    (instance.exports as unknown as Vm).run(100);
    writeFileSync(join(dir, 'vm.profile.json'), JSON.stringify(readProfile(build, instance)));

    const out = join(dir, 'vm.baseline.wasm');
    const prepared = await runCli(['prepare', fixture('hot/vm.wasm'), '-o', out, '--exclude-hot', join(dir, 'vm.profile.json'), '--hot-count', '3', '--json']);
    expect(prepared.code).toBe(0);
    const summary = JSON.parse(prepared.stdout);
    expect(summary.excludedHot.map((h: { name: string }) => h.name)).toEqual(['push', 'pop', 'clamp']);
    expect(summary.patchable).toBe(7);
    expect(summary.notPatchable.find((f: { name: string }) => f.name === 'pop').reason).toMatch(/excluded as hot: 400 calls/);

    writeFileSync(join(dir, 'bad.json'), '[1, 2');
    const bad = await runCli(['prepare', fixture('hot/vm.wasm'), '-o', out, '--exclude-hot', join(dir, 'bad.json'), '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe('E_BAD_PROFILE');
    const mixed = await runCli(['prepare', fixture('hot/vm.wasm'), '-o', out, '--profile', '--only', 'x']);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain('--profile writes a counting build');
  });
});
