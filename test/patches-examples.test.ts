import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffBuilds } from '../src/build/diff.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { artifacts, compileLeaderboard, framesRefusal, read } from '../patches/examples.js';
import { runCli } from './cli-run.js';

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

describe('patches/rust-shadow (Rust): a per-account counter the struct has no room for, in a shadow field', () => {
  it.each(['lock-after-3-rust', 'lock-after-3'])('%s: locks after 3 wrong PINs, accounts opened before it too; revert frees every counter and keeps the accounts', async (name) => {
    const guest = await Guest.instantiate(read('rust-shadow/accounts.baseline.wasm'), {}, { shadow: { malloc: 'shadow_malloc', free: 'shadow_free' } });
    const a = guest.exports as unknown as {
      account_open(id: number, pin: number, balance: bigint): number;
      login(acc: number, pin: number): number;
      balance(acc: number): bigint;
      logins(acc: number): number;
      account_id(acc: number): number;
    };
    const [alice, bob] = [a.account_open(1, 1234, 500n), a.account_open(2, 4321, 70n)];
    expect(a.login(alice, 1234)).toBe(1);
    for (let pin = 0; pin < 10; pin++) expect(a.login(bob, pin)).toBe(0); // the bug: guesses without end
    const patch = guest.apply(await guest.load(read(`rust-shadow/${name}.patch.wasm`)));
    expect([a.login(alice, 1), a.login(alice, 2), a.login(alice, 1234), a.login(alice, 3)]).toEqual([0, 0, 1, 0]); // a success resets the count
    expect([a.login(bob, 1), a.login(bob, 2), a.login(bob, 3), a.login(bob, 4321)]).toEqual([0, 0, 0, -1]); // locked, even with the PIN
    const shadow = guest.shadow!;
    expect(shadow.count(1)).toBe(2);
    const fields = [shadow.get(alice, 1), shadow.get(bob, 1)];
    guest.revert(patch);
    expect(shadow.count()).toBe(0);
    expect([a.account_id(alice), a.balance(alice), a.logins(alice), a.account_id(bob), a.balance(bob)]).toEqual([1, 500n, 2, 2, 70n]);
    expect(a.login(bob, 4321)).toBe(1); // the lock was the patch's
    guest.apply(patch); // applied again: a fresh counter, in memory the revert gave back to the guest's allocator
    expect(a.login(bob, 9)).toBe(0);
    expect(fields).toContain(shadow.get(bob, 1));
    expect(new Uint32Array((guest.exports.memory as WebAssembly.Memory).buffer, shadow.get(bob, 1), 1)[0]).toBe(1);
  });

  it("its README's commands: prepare, then diff names the function, the hook and the shadow imports", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rust-shadow-'));
    const at = (name: string): string => new URL(`../patches/rust-shadow/${name}`, import.meta.url).pathname;
    expect((await runCli(['prepare', at('accounts.wasm'), '-o', join(dir, 'accounts.baseline.wasm')])).code).toBe(0);
    const diff = await runCli(['diff', at('accounts.wasm'), at('accounts-fixed.wasm'), '--baseline', join(dir, 'accounts.baseline.wasm'), '-o', join(dir, 'lock.patch.wasm')]);
    expect(diff.code).toBe(0);
    expect(diff.stdout).toMatch(/changed +login\n +hooks +hotpatch_post_revert\n +shadow +hotpatch\.shadow\.get_or_alloc, hotpatch\.shadow\.free_all/);
  });

  it('the plain way, a new field in Account, is refused: it fills padding, so no offset or size moves, but the bytes are new', async () => {
    const old = read('rust-shadow/accounts.wasm');
    const result = await diffBuilds(old, read('rust-shadow/accounts-field.wasm'), { baseline: read('rust-shadow/accounts.baseline.wasm'), id: 'field' });
    expect(result).toMatchObject({
      hotpatchable: false,
      reasons: [
        {
          code: 'LAYOUT_CHANGED',
          item: 'padding 20–23 filled',
          message: expect.stringContaining('the access at offset 16 widened from 4 to 8 bytes in `account_open`; bytes 20–23, padding before, newly used by `login`'),
        },
      ],
    });
    const confirmed = await diffBuilds(old, read('rust-shadow/accounts-field.wasm'), { baseline: read('rust-shadow/accounts.baseline.wasm'), id: 'field', allowLayoutChange: true });
    expect(confirmed).toMatchObject({ hotpatchable: true, changed: ['account_open', 'login'], warnings: [{ code: 'LAYOUT_CHANGED' }] });
  });
});
