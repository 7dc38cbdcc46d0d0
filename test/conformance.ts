// One set of cases, run through the one contract (`HotpatchGuest`) against every kind of guest:
// in-thread, worker (idle and busy), threaded. Each case asserts the same answers, errors and events.
import { describe, expect, it } from 'vitest';
import type { GuestEvent, HotpatchGuest, PatchPolicy } from 'wasm-hotpatch/engine';

export interface Fixture {
  /** A guest of a baseline with functions `a(i32) -> i32` and `b(i32) -> i32` (return x + 1, x + 2). */
  start(options?: { policy?: PatchPolicy }): Promise<HotpatchGuest>;
  /** A patch replacing the named functions with `x * value`. */
  patch(id: string, value: number, targets: string[], extra?: { sequence?: number; cumulative?: boolean; description?: string }): Promise<Uint8Array>;
}

const EVENTS = ['loaded', 'rejected', 'applied', 'reverted', 'hook-failed', 'rolled-back'] as const;

/** Every event the guest dispatches, in order, as `type patch`, with the commit figures of applied / reverted. */
export function recordEvents(g: HotpatchGuest): { seen: string[]; commits: Map<string, number> } {
  const seen: string[] = [];
  const commits = new Map<string, number>();
  for (const type of EVENTS) {
    g.addEventListener(type, (e: GuestEvent) => {
      seen.push(`${type} ${e.patch ?? '-'}`);
      if (e.commit !== undefined) commits.set(`${type} ${e.patch}`, e.commit);
    });
  }
  return { seen, commits };
}

async function using<T>(started: Promise<HotpatchGuest>, body: (g: HotpatchGuest) => Promise<T>): Promise<T> {
  const g = await started;
  try {
    return await body(g);
  } finally {
    await g.close();
  }
}

export function conformance(kind: string, fixture: Fixture): void {
  describe(`the guest contract: ${kind}`, () => {
    it('applies, stacks, reverts any patch, and keeps state', () =>
      using(fixture.start(), async (g) => {
        expect(await g.call('a', 5)).toBe(6);
        const p1 = (await g.load(await fixture.patch('p1', 10, ['a']))).id;
        const p2 = (await g.load(await fixture.patch('p2', 100, ['a', 'b']))).id;
        expect(await g.call('a', 5)).toBe(6); // loaded is not applied
        await g.apply(p1);
        await g.apply(p2);
        expect([await g.call('a', 5), await g.call('b', 5)]).toEqual([500, 500]);
        await g.revert(p1); // not the newest: nothing visible changes
        expect(await g.call('a', 5)).toBe(500);
        await g.revert(p2);
        expect([await g.call('a', 5), await g.call('b', 5)]).toEqual([6, 7]);
        expect((await g.status()).patches.map((p) => [p.id, p.state])).toEqual([
          ['p1', 'reverted'],
          ['p2', 'reverted'],
        ]);
      }));

    it('answers with the same shapes, and each commit figure is the one its event carried', () =>
      using(fixture.start(), async (g) => {
        const events = recordEvents(g);
        const loaded = await g.load(await fixture.patch('shape', 3, ['a', 'b'], { sequence: 4, description: 'triples' }));
        expect(loaded).toMatchObject({ id: 'shape', sequence: 4, cumulative: false, description: 'triples', targets: ['a', 'b'], duration: expect.any(Number) });
        const applied = await g.apply('shape');
        expect(applied).toMatchObject({ id: 'shape', state: 'applied', commit: expect.any(Number), duration: expect.any(Number) });
        expect(applied.commit).toBe(events.commits.get('applied shape'));
        const reverted = await g.revert('shape');
        expect(reverted).toMatchObject({ id: 'shape', state: 'reverted' });
        expect(reverted.commit).toBe(events.commits.get('reverted shape'));
        await expect(g.unload('shape')).resolves.toBeUndefined();
        const status = await g.status();
        expect(status).toMatchObject({ baseline: g.manifest.id, dispatch: g.manifest.dispatch, slots: g.manifest.slots, patches: [], functions: [] });
        expect(events.seen).toEqual(['loaded shape', 'applied shape', 'reverted shape']);
      }));

    it('rejects a bad patch with every problem, says so in an event, and changes nothing', () =>
      using(fixture.start(), async (g) => {
        const good = (await g.load(await fixture.patch('good', 3, ['a']))).id;
        await g.apply(good);
        const events = recordEvents(g);
        const bad = await fixture.patch('bad', 7, ['a']);
        await expect(g.load(bad.slice(0, bad.length - 10))).rejects.toMatchObject({ code: 'E_PATCH_REJECTED' });
        await expect(g.load(await fixture.patch('good', 4, ['b']))).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_ALREADY_APPLIED' })] });
        await expect(g.apply('nothing')).rejects.toMatchObject({ code: 'E_UNKNOWN_PATCH' });
        await expect(g.apply(good)).rejects.toMatchObject({ code: 'E_ALREADY_APPLIED' });
        await expect(g.revert('nothing')).rejects.toMatchObject({ code: 'E_UNKNOWN_PATCH' });
        await expect(g.unload(good)).rejects.toMatchObject({ code: 'E_ALREADY_APPLIED' });
        expect(events.seen).toEqual(['rejected -', 'rejected good']);
        expect(await g.call('a', 2)).toBe(6);
        expect((await g.status()).functions).toEqual([expect.objectContaining({ function: 'a', stack: ['good'] })]);
      }));

    it('applies a cumulative patch over earlier ones and refuses a downgrade', () =>
      using(fixture.start(), async (g) => {
        await g.apply((await g.load(await fixture.patch('one', 2, ['a'], { sequence: 1 }))).id);
        await g.apply((await g.load(await fixture.patch('two', 3, ['b'], { sequence: 2 }))).id);
        await g.apply((await g.load(await fixture.patch('three', 4, ['a'], { sequence: 3, cumulative: true }))).id);
        expect([await g.call('a', 5), await g.call('b', 5)]).toEqual([20, 7]);
        expect((await g.status()).patches.map((p) => p.state)).toEqual(['replaced', 'replaced', 'applied']);
        await expect(g.load(await fixture.patch('old', 9, ['b'], { sequence: 1 }))).rejects.toMatchObject({ problems: [expect.objectContaining({ code: 'E_DOWNGRADE' })] });
        // The default policy lets `force` through.
        await g.apply((await g.load(await fixture.patch('old', 9, ['b'], { sequence: 1 }), { force: true })).id, { force: true });
        expect(await g.call('b', 5)).toBe(45);
      }));

    it("holds the host's policy: a forced downgrade is refused where the policy says so", () =>
      using(fixture.start({ policy: { allowForcedDowngrade: false } }), async (g) => {
        await g.apply((await g.load(await fixture.patch('new', 4, ['a'], { sequence: 3, cumulative: true }))).id);
        await expect(g.load(await fixture.patch('old', 9, ['a'], { sequence: 1 }), { force: true })).rejects.toMatchObject({
          code: 'E_PATCH_REJECTED',
          problems: [expect.objectContaining({ code: 'E_DOWNGRADE' })],
        });
        expect(await g.call('a', 5)).toBe(20);
        expect((await g.status()).patches.map((p) => p.id)).toEqual(['new']);
      }));

    it('after close, every call rejects with E_CLOSED', async () => {
      const g = await fixture.start();
      const patch = await fixture.patch('late', 2, ['a']);
      await g.close();
      for (const call of [() => g.load(patch), () => g.apply('late'), () => g.revert('late'), () => g.unload('late'), () => g.status(), () => g.call('a', 1)]) {
        await expect(call()).rejects.toMatchObject({ code: 'E_CLOSED' });
      }
      await g.close(); // twice is harmless
    });
  });
}

export interface ShadowFixture {
  /**
   * A guest of the sessions baseline (test/fixtures/layout: `session_new`, `request`, `frees`),
   * offering shadow state over its `malloc` and `free` through the kind's `shadow` option
   * (`false`: not offering it).
   */
  start(shadow?: { malloc?: string; free?: string } | false): Promise<HotpatchGuest>;
  /** The patch `diff` makes from `sessions-shadow.c`: a request budget per session in a shadow field (id 1). */
  patch(): Promise<Uint8Array>;
}

/** Shadow state (`hotpatch.shadow`) offered the same way by every guest kind that has it. */
export function shadowConformance(kind: string, fixture: ShadowFixture): void {
  describe(`shadow state: ${kind}`, () => {
    it('a C patch attaches a field to sessions made before it; revert frees every field through the guest; the data stays', () =>
      using(fixture.start(), async (g) => {
        const [a, b] = [(await g.call('session_new', 1, 10)) as number, (await g.call('session_new', 2, 20)) as number];
        expect(await g.call('request', a)).toBe(1);
        const id = (await g.load(await fixture.patch())).id;
        await g.apply(id);
        const requests = async (s: number, n: number) => {
          const out: unknown[] = [];
          for (let i = 0; i < n; i++) out.push(await g.call('request', s));
          return out;
        };
        expect(await requests(a, 4)).toEqual([2, 3, 4, -1]); // a budget of 3, in a field the struct has no room for
        expect(await requests(b, 1)).toEqual([1]);
        await g.revert(id);
        expect(await g.call('frees')).toBe(2); // the post-revert hook's free_all: one field per session
        expect(await requests(a, 2)).toEqual([5, 6]); // the session's own data is intact
        await g.apply(id); // a fresh budget: the old fields were freed, not kept
        expect(await requests(a, 4)).toEqual([7, 8, 9, -1]);
      }));

    it('a guest that does not offer it rejects the patch at load, naming the import, and runs on unchanged', () =>
      using(fixture.start(false), async (g) => {
        const s = (await g.call('session_new', 1, 10)) as number;
        await expect(g.load(await fixture.patch())).rejects.toMatchObject({
          code: 'E_PATCH_REJECTED',
          problems: expect.arrayContaining([expect.objectContaining({ message: expect.stringContaining('hotpatch.shadow') })]),
        });
        expect((await g.status()).patches).toEqual([]);
        expect([await g.call('request', s), await g.call('request', s)]).toEqual([1, 2]);
      }));

    it('an allocator the guest does not export is refused at start with the same code', async () => {
      await expect(fixture.start({ malloc: 'no_such_malloc' })).rejects.toMatchObject({ code: 'E_IMPORT_UNRESOLVED', message: expect.stringContaining('no function no_such_malloc') });
    });
  });
}
