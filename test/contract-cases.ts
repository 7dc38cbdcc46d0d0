// The contract's cases: every kind of guest (in-thread through `guest.async`, worker, threaded)
// answers them with the same results. A guest kind runs them with `contractCases(kind, fixture)`.
import { describe, expect, it } from 'vitest';
import type { GuestEvent, HotpatchGuest, PatchPolicy } from '../src/engine/index.js';

export interface ContractFixture {
  /** A guest of a baseline with `a(i32) -> i32` and `b(i32) -> i32` (x + 1, x + 2), under `policy`. */
  start(policy?: PatchPolicy): Promise<HotpatchGuest>;
  /** A patch replacing the named functions with `x * value`. */
  patch(id: string, value: number, targets: string[], extra?: { sequence?: number; cumulative?: boolean }): Promise<Uint8Array>;
}

export function contractCases(kind: string, fixture: ContractFixture): void {
  describe(`the guest contract: ${kind}`, () => {
    it('answers load, apply and revert with the same shapes, and the commit of each is its event’s', async () => {
      const g = await fixture.start();
      const events: GuestEvent[] = [];
      g.addEventListener('applied', (e) => events.push(e));
      g.addEventListener('reverted', (e) => events.push(e));
      try {
        const loaded = await g.load(await fixture.patch('p', 10, ['a'], { sequence: 3 }));
        expect(loaded).toEqual({ id: 'p', sequence: 3, cumulative: false, description: expect.any(String), targets: ['a'], duration: expect.any(Number) });
        const applied = await g.apply('p');
        expect(applied).toEqual({ id: 'p', state: 'applied', commit: events.at(-1)!.commit, duration: expect.any(Number) });
        expect(await g.call('a', 5)).toBe(50);
        const reverted = await g.revert('p');
        expect(reverted).toEqual({ id: 'p', state: 'reverted', commit: events.at(-1)!.commit, duration: expect.any(Number) });
        expect(events.map((e) => [e.type, e.patch])).toEqual([['applied', 'p'], ['reverted', 'p']]);
        await g.unload('p');
        await expect(g.apply('p')).rejects.toMatchObject({ code: 'E_UNKNOWN_PATCH' });
        expect((await g.status()).patches).toEqual([]);
      } finally {
        await g.close();
      }
    });

    it("holds the host's policy: no forced downgrade when it forbids forcing, no patch over its size", async () => {
      const g = await fixture.start({ allowForcedDowngrade: false, maxPatchSize: 4096 });
      try {
        await g.load(await fixture.patch('old', 2, ['b'], { sequence: 1 }));
        await g.apply((await g.load(await fixture.patch('new', 3, ['a'], { sequence: 5, cumulative: true }))).id);
        await expect(g.load(await fixture.patch('older', 4, ['b'], { sequence: 2 }), { force: true })).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_DOWNGRADE' })] });
        await expect(g.apply('old', { force: true })).rejects.toMatchObject({ code: 'E_DOWNGRADE' });
        const big = await fixture.patch('big', 5, ['a', 'b'], { sequence: 9 });
        const padded = new Uint8Array(5000);
        padded.set(big);
        await expect(g.load(padded)).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_PATCH_TOO_LARGE' })] });
        expect([await g.call('a', 5), await g.call('b', 5)]).toEqual([15, 7]);
      } finally {
        await g.close();
      }
    });

    it('refuses everything after close', async () => {
      const g = await fixture.start();
      const bytes = await fixture.patch('late', 2, ['a']);
      await g.close();
      await g.close(); // harmless
      await expect(g.load(bytes)).rejects.toMatchObject({ code: 'E_CLOSED' });
      await expect(g.apply('late')).rejects.toMatchObject({ code: 'E_CLOSED' });
      await expect(g.status()).rejects.toMatchObject({ code: 'E_CLOSED' });
      await expect(g.call('a', 1)).rejects.toMatchObject({ code: 'E_CLOSED' });
    });
  });
}
