// One set of attach / revert cases, run against every kind of guest (in-thread and worker).
import { describe, expect, it } from 'vitest';

/** What the cases need from a guest, whichever kind it is. */
export interface GuestUnderTest {
  load(bytes: Uint8Array): Promise<string>;
  apply(id: string): Promise<void>;
  revert(id: string): Promise<void>;
  status(): Promise<{ patches: readonly { id: string; state: string }[]; functions: readonly { function: string; stack: readonly string[] }[] }>;
  call(name: string, ...args: unknown[]): Promise<unknown>;
  close(): Promise<void>;
}

export interface Fixture {
  /** A guest of a baseline with functions `a(i32) -> i32` and `b(i32) -> i32` (return x + 1, x + 2). */
  start(): Promise<GuestUnderTest>;
  /** A patch replacing the named functions with `x * value`. */
  patch(id: string, value: number, targets: string[], extra?: { sequence?: number; cumulative?: boolean }): Promise<Uint8Array>;
}

export function conformance(kind: string, fixture: Fixture): void {
  describe(`attach / revert conformance: ${kind}`, () => {
    it('applies, stacks, reverts any patch, and keeps state', async () => {
      const g = await fixture.start();
      try {
        expect(await g.call('a', 5)).toBe(6);
        const p1 = await g.load(await fixture.patch('p1', 10, ['a']));
        const p2 = await g.load(await fixture.patch('p2', 100, ['a', 'b']));
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
      } finally {
        await g.close();
      }
    });

    it('rejects a bad patch with every problem and changes nothing', async () => {
      const g = await fixture.start();
      try {
        const good = await g.load(await fixture.patch('good', 3, ['a']));
        await g.apply(good);
        const bad = await fixture.patch('bad', 7, ['a']);
        const broken = bad.slice(0, bad.length - 10);
        await expect(g.load(broken)).rejects.toMatchObject({ code: 'E_PATCH_REJECTED' });
        await expect(g.load(await fixture.patch('good', 4, ['b']))).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_ALREADY_APPLIED' })] });
        expect(await g.call('a', 2)).toBe(6);
        expect((await g.status()).functions).toEqual([expect.objectContaining({ function: 'a', stack: ['good'] })]);
      } finally {
        await g.close();
      }
    });

    it('applies a cumulative patch over earlier ones and refuses a downgrade', async () => {
      const g = await fixture.start();
      try {
        await g.apply(await g.load(await fixture.patch('one', 2, ['a'], { sequence: 1 })));
        await g.apply(await g.load(await fixture.patch('two', 3, ['b'], { sequence: 2 })));
        await g.apply(await g.load(await fixture.patch('three', 4, ['a'], { sequence: 3, cumulative: true })));
        expect([await g.call('a', 5), await g.call('b', 5)]).toEqual([20, 7]);
        await expect(g.load(await fixture.patch('old', 9, ['b'], { sequence: 1 }))).rejects.toMatchObject({ problems: [expect.objectContaining({ code: 'E_DOWNGRADE' })] });
      } finally {
        await g.close();
      }
    });
  });
}
