import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest, type GuestEvent, type Patch } from '../src/engine/index.js';
import { patchInternals } from '../src/engine/patch.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';

// Ten functions f0..f9 (x + i), one v128 function, and a memory a hook can write and grow.
const GUEST = `(module
  (memory (export "memory") 1 4)
  ${Array.from({ length: 10 }, (_, i) => `(func (export "f${i}") (param i32) (result i32) (i32.add (local.get 0) (i32.const ${i})))`).join('\n  ')}
  (func (export "vec") (param v128) (result v128) (local.get 0))
  (func (export "lane") (param i32) (result i32) (i32x4.extract_lane 0 (call 10 (i32x4.splat (local.get 0))))))`;

let baseline: Baseline;
beforeAll(async () => {
  baseline = await prepare(await watToWasm(GUEST));
});

/** A patch making each target answer `value + i`; `extra` adds exports (hooks). */
async function patch(id: string, value: number, targets: number[], options: { cumulative?: boolean; sequence?: number; extra?: string; trapOn?: number } = {}): Promise<Uint8Array> {
  const trap = options.trapOn === undefined ? '' : `(if (i32.eq (local.get 0) (i32.const ${options.trapOn})) (then unreachable))`;
  const fns = targets.map((f) => `(func (export "r${f}") (param i32) (result i32) ${trap} (i32.const ${value + f}))`).join(' ');
  const wat = `(module (import "baseline" "memory" (memory 1 4)) ${fns} ${options.extra ?? ''})`;
  const manifest = { id, sequence: options.sequence ?? 1, cumulative: options.cumulative ?? false, targets: targets.map((f) => ({ function: `f${f}`, export: `r${f}` })) };
  return (await buildPatch({ wat, manifest, baseline: baseline.bytes })).bytes;
}

function commits(guest: Guest): GuestEvent[] {
  const seen: GuestEvent[] = [];
  for (const type of ['applied', 'reverted', 'rolled-back'] as const) guest.addEventListener(type, (event) => seen.push(event));
  return seen;
}

describe('the slot writer', () => {
  it('records the commit of every apply and revert, loop and committer alike, and reports the same figure everywhere', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const events = commits(guest);
    expect(guest.lastCommit).toBe(0);
    // 1 target: the JS loop; 9 targets: the committer; a cumulative patch: push plus restores.
    for (const [id, targets, cumulative] of [
      ['small', [0], false],
      ['large', [0, 1, 2, 3, 4, 5, 6, 7, 8], false],
      ['all', [9], true],
    ] as const) {
      await guest.load(await patch(id, 100, [...targets], { cumulative }));
      const answer = await guest.async.apply(id);
      expect(events.at(-1)).toMatchObject({ type: 'applied', patch: id });
      expect(answer.commit).toBe(events.at(-1)!.commit);
      expect(guest.lastCommit).toBe(answer.commit);
    }
    const answer = await guest.async.revert('all');
    expect(events.at(-1)).toMatchObject({ type: 'reverted', patch: 'all', commit: answer.commit });
    expect(guest.lastCommit).toBe(answer.commit);
  });

  it("shares one committer among a guest's patches: regions given back at unload are reused, and each patch still switches exactly its own slots", async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
    const runs = (): number[] => range(0, 10).map((f) => e[`f${f}`]!(0));
    const a = await guest.load(await patch('a', 100, range(0, 8)));
    const b = await guest.load(await patch('b', 200, range(1, 9)));
    const c = await guest.load(await patch('c', 300, range(2, 10)));
    guest.unload(b); // its region is free again
    const d = await guest.load(await patch('d', 400, range(0, 9))); // does not fit there
    const f = await guest.load(await patch('f', 500, range(1, 9))); // fits there
    for (const [p, targets, value] of [
      [a, range(0, 8), 100],
      [c, range(2, 10), 300],
      [d, range(0, 9), 400],
      [f, range(1, 9), 500],
    ] as const) {
      guest.apply(p);
      expect(runs()).toEqual(range(0, 10).map((i) => ((targets as readonly number[]).includes(i) ? value + i : i)));
      guest.revert(p);
      expect(runs()).toEqual(range(0, 10));
    }
    // An unloaded patch applied by reference, after its region went to another patch: the loop writes it.
    expect(b.state).toBe('loaded');
    guest.apply(b);
    expect(runs()).toEqual(range(0, 10).map((i) => (i >= 1 && i < 9 ? 200 + i : i)));
    guest.revert(b);
    expect(runs()).toEqual(range(0, 10));
  });

  it('gives a committer region back when a load fails after staging it (two loads of one id at once: the second is stale)', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const at = (p: Patch): number => (patchInternals(p)!.committer as unknown as { at: number }).at;
    const eight = [0, 1, 2, 3, 4, 5, 6, 7];
    const first = await guest.load(await patch('first', 100, eight));
    const twice = await patch('twice', 200, eight);
    const [one, other] = await Promise.allSettled([guest.load(twice), guest.load(twice)]);
    expect([one.status, other.status].sort()).toEqual(['fulfilled', 'rejected']);
    const loaded = (one.status === 'fulfilled' ? one : (other as PromiseFulfilledResult<Patch>)).value;
    const next = await guest.load(await patch('next', 300, eight));
    // Without the stale load's region given back, `next` would take a fourth region (24).
    expect([at(first), ...[at(loaded), at(next)].sort((x, y) => x - y)]).toEqual([0, 8, 16]);
    guest.apply(next);
    expect([e.f0!(0), e.f7!(0), e.f8!(0)]).toEqual([300, 307, 8]);
  });

  it("keeps a watched patch's watch when another patch over the same function is applied and reverted", async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const watched = await guest.load(await patch('watched', 100, [1, 2], { trapOn: 13 }));
    guest.apply(watched, { watch: { traps: 1 } });
    guest.apply(await guest.load(await patch('over', 200, [1])));
    guest.revert('over');
    expect(e.f1!(7)).toBe(101);
    expect(() => e.f1!(13)).toThrow('unreachable');
    expect(watched.state).toBe('rolled-back');
    expect([e.f1!(7), e.f2!(7)]).toEqual([8, 9]);
  });

  it('refuses a watch on a v128 function before the switch, with nothing changed', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const bytes = (
      await buildPatch({
        wat: '(module (func (export "v") (param v128) (result v128) (i32x4.add (local.get 0) (local.get 0))))',
        manifest: { id: 'simd', sequence: 1, targets: [{ function: 'vec', export: 'v' }] },
        baseline: baseline.bytes,
      })
    ).bytes;
    const p = await guest.load(bytes);
    const events = commits(guest);
    expect(() => guest.apply(p, { watch: {} })).toThrowError(expect.objectContaining({ code: 'E_UNSUPPORTED_FEATURE' }));
    expect([p.state, guest.status().functions, events, e.lane!(3)]).toEqual(['loaded', [], [], 3]);
    guest.apply(p); // unwatched it goes in
    expect(e.lane!(3)).toBe(6);
  });

  it('refuses a probe that names no export before the switch', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const p = await guest.load(await patch('probed', 100, [0]));
    expect(() => guest.apply(p, { probe: 'nothing' })).toThrowError(expect.objectContaining({ code: 'E_USAGE' }));
    expect([p.state, (guest.exports.f0 as (x: number) => number)(1)]).toEqual(['loaded', 1]);
  });
});

describe('loading the same bytes again', () => {
  it('parses a manifest text once: every load of it shares one frozen manifest, in any guest, and every check still runs', async () => {
    const bytes = await patch('again', 100, [0, 1]);
    const one = await Guest.instantiate(baseline.bytes);
    const two = await Guest.instantiate(baseline.bytes);
    const first = await one.load(bytes);
    one.unload(first);
    const second = await one.load(bytes);
    const other = await two.load(bytes);
    expect(second.manifest).toBe(first.manifest);
    expect(other.manifest).toBe(first.manifest);
    expect(Object.isFrozen(first.manifest) && Object.isFrozen(first.manifest.targets) && Object.isFrozen(first.manifest.targets[0])).toBe(true);
    expect(() => {
      (first.manifest.targets as unknown as { function: string }[])[0]!.function = 'f9';
    }).toThrow(TypeError);
    one.apply(second);
    expect((one.exports.f1 as (x: number) => number)(0)).toBe(101);
    // A guest of another baseline: the cached manifest is checked against it, and refused, each time.
    const elsewhere = await Guest.instantiate((await prepare(await watToWasm('(module (func (export "f0") (param i32) (result i32) (local.get 0)))'))).bytes);
    for (let i = 0; i < 2; i++) await expect(elsewhere.load(bytes)).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_BASELINE_MISMATCH' })] });
  });
});

describe('hooks tell the truth', () => {
  it('a vetoing pre-apply hook that grew memory: no function switched, and the error says what the hook left', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const hook = '(func (export "hotpatch_pre_apply") (result i32) (i32.store (i32.const 0) (i32.const 99)) (drop (memory.grow (i32.const 1))) (i32.const 7))';
    const p = await guest.load(await patch('vetoer', 100, [0], { extra: hook }));
    const error = (() => {
      try {
        guest.apply(p);
      } catch (err) {
        return err as Error & { code: string };
      }
      return undefined;
    })();
    expect(error?.code).toBe('E_VETOED');
    expect(error?.message).toMatch(/refused with 7; no function was switched; the hook ran in the guest and what it wrote to memory or globals stays \(it grew memory "memory" from 1 to 2 pages\)/);
    expect([p.state, e.f0!(1), guest.lastCommit]).toEqual(['loaded', 1, 0]);
  });
});

describe('read-only patch state and a one-way guest lifecycle', () => {
  it("a patch's state cannot be set from outside the engine", async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const p = await guest.load(await patch('ro', 100, [0]));
    expect(() => {
      (p as unknown as { state: string }).state = 'applied';
    }).toThrow(TypeError);
    expect(p.state).toBe('loaded');
  });

  it('a closed guest refuses loads, applies and reverts, in-thread and through the contract', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const bytes = await patch('late', 100, [0]);
    guest.apply(await guest.load(bytes));
    await guest.async.close();
    expect(guest.closed).toBe(true);
    expect(() => guest.revert('late')).toThrowError(expect.objectContaining({ code: 'E_CLOSED' }));
    await expect(guest.load(bytes)).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(guest.async.apply('late')).rejects.toMatchObject({ code: 'E_CLOSED' });
    expect((guest.exports.f0 as (x: number) => number)(1)).toBe(100); // what was applied stays
  });
});

describe('warm: a rehearsal of apply and revert that changes nothing', () => {
  it('is heard by no listener and leaves the patch level, lastCommit and every function as they were, slot 0 patched or not; load rehearses the same way', async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    const e = guest.exports as Record<string, (x: number) => number>;
    const first = guest.manifest.functions.find((f) => f.slot === 0)!.name;
    const seen: string[] = [];
    for (const type of ['loaded', 'applied', 'reverted', 'rejected', 'rolled-back', 'hook-failed'] as const) guest.addEventListener(type, () => seen.push(type));
    const before = { status: guest.status(), lastCommit: guest.lastCommit, value: e[first]!(1) };
    guest.warm(3);
    expect(seen).toEqual([]);
    expect({ status: guest.status(), lastCommit: guest.lastCommit, value: e[first]!(1) }).toEqual(before);

    // Slot 0 owned by a cumulative patch of a high sequence: the rehearsal is no downgrade, and puts back what the slot holds.
    const index = Number(first.slice(1));
    // load rehearses too (V8 may have flushed the path since the guest was made): only `loaded` is heard.
    await guest.load(await patch('over', 100, [index], { cumulative: true, sequence: 9 }));
    expect(seen).toEqual(['loaded']);
    expect(guest.lastCommit).toBe(before.lastCommit);
    guest.apply('over');
    seen.length = 0;
    const patched = { status: guest.status(), lastCommit: guest.lastCommit, value: e[first]!(1) };
    expect(patched.value).toBe(100 + index);
    guest.warm(3);
    expect(seen).toEqual([]);
    expect({ status: guest.status(), lastCommit: guest.lastCommit, value: e[first]!(1) }).toEqual(patched);
    guest.revert('over');
    expect(e[first]!(1)).toBe(before.value);
  });
});
