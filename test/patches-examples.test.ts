import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffBuilds } from '../src/build/diff.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { artifacts, compileLeaderboard, framesRefusal, read } from '../patches/examples.js';

describe('patches/: the checked-in baselines and patches are what the tools make today', () => {
  it.each(artifacts.map((a) => [a.path, a] as const))('%s', async (_path, artifact) => {
    const made = await artifact.make();
    expect(Buffer.from(made).equals(Buffer.from(read(artifact.path))), 'stale: run npx tsx patches/build-artifacts.ts').toBe(true);
  });
});

describe('patches/rust-quota (Rust): the u32 overflow in reserve', () => {
  it('lets a tenant hide a 4 GiB reservation until the patch is applied; revert brings the bug back; state is kept', async () => {
    const guest = await Guest.instantiate(read('rust-quota/quota.baseline.wasm'));
    const q = guest.exports as unknown as { reserve(t: number, n: number): number; release(t: number, n: number): number; used(t: number): number; granted(): bigint };
    expect(q.reserve(1, 4096)).toBe(0);
    expect(q.reserve(1, 0xffff_f000)).toBe(0); // wraps: accepted, and usage wraps to 0
    expect(q.used(1)).toBe(0);
    expect(q.granted()).toBe(4096n + 0xffff_f000n);
    q.reserve(2, 1000);
    const patch = guest.apply(await guest.load(read('rust-quota/fix-quota-overflow.patch.wasm')));
    expect([q.used(2), q.granted()]).toEqual([1000, 4096n + 0xffff_f000n + 1000n]);
    expect(q.reserve(3, 4096)).toBe(0);
    expect(q.reserve(3, 0xffff_f000)).toBe(-1);
    expect(q.reserve(3, (1 << 20) - 4096)).toBe(0);
    expect(q.reserve(3, 1)).toBe(-1);
    guest.revert(patch);
    expect(q.reserve(4, 0xffff_ffff)).toBe(-1);
    expect(q.reserve(4, 1)).toBe(0);
    expect(q.reserve(4, 0xffff_ffff)).toBe(0); // the old wrap is back
  });
});

describe('patches/as-leaderboard (AssemblyScript, compiled now): slot 16 overwrites the lock', () => {
  it('diffs, patches and behaves like the fixed build on setScore and like the old one elsewhere', async () => {
    const { old, fixed } = await compileLeaderboard();
    const baseline = await prepare(old);
    const result = await diffBuilds(old, fixed, { baseline: baseline.bytes, id: 'fix-slot-bound' });
    expect(result).toMatchObject({ hotpatchable: true, changed: ['setScore'], exactStatics: false });
    if (!result.hotpatchable) return;
    const guest = await Guest.instantiate(baseline.bytes);
    const b = guest.exports as unknown as { setScore(s: number, v: number): number; best(): number; lock(): void; locked(): number };
    b.setScore(3, 70);
    expect(b.setScore(16, 1)).toBe(0); // the exploit: freeze a live season
    expect(b.locked()).toBe(1);
    expect(b.setScore(4, 90)).toBe(-2);
    const fresh = await Guest.instantiate(baseline.bytes);
    const f = fresh.exports as unknown as typeof b;
    f.setScore(3, 70);
    const patch = fresh.apply(await fresh.load(result.patch.bytes));
    expect(f.setScore(16, 1)).toBe(-1);
    expect(f.locked()).toBe(0);
    expect(f.setScore(4, 90)).toBe(0);
    expect(f.best()).toBe(90);
    fresh.revert(patch);
    expect(f.setScore(16, 1)).toBe(0); // the old bound is back
    expect(f.locked()).toBe(1);
  });
});

describe('patches/rust-frames-refused (Rust): a fix that needs a new baseline', () => {
  it('is refused with every reason, and the README shows them', async () => {
    const reasons = await framesRefusal();
    const codes = new Set(reasons.map((r) => r.code));
    expect([...codes].sort()).toEqual(['DATA_CHANGED', 'FUNCTION_REMOVED', 'GLOBAL_CHANGED', 'STATIC_MOVED']);
    expect(reasons.filter((r) => r.code === 'FUNCTION_REMOVED').map((r) => r.item)).toContainEqual(expect.stringMatching(/slice_end_index_len_fail/));
    const readme = readFileSync(new URL('../patches/rust-frames-refused/README.md', import.meta.url), 'utf8');
    for (const code of codes) expect(readme).toContain(code);
  });
});
