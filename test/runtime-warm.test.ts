// Loading into a running worker guest warms the cross-thread round trip with rehearsed applies and
// reverts that the guest serves without touching its patch level: nothing but the load is seen,
// no function switched meanwhile, and the first apply after it is an ordinary one.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPatch, prepare, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';
import { fixture } from './helpers.js';

const open: WorkerGuest[] = [];
afterAll(async () => {
  for (const g of open.splice(0)) await g.close();
});

describe('load warms the round trip to a running guest', () => {
  for (const reach of ['interrupts', 'safepoints'] as const) {
    it(`${reach}: the load is all the guest and the host see, and the first apply after it is served as usual`, async () => {
      const baseline = await prepare(await watToWasm(readFileSync(fixture('service-loop.wat'), 'utf8')), reach === 'safepoints' ? { safepoints: { interval: 256 } } : {});
      const { bytes } = await buildPatch({
        wat: '(module (func (export "handle") (param i32) (result i32) (i32.const 2)))',
        manifest: { id: 'v2', sequence: 1, targets: [{ function: 'handle', export: 'handle' }] },
        baseline: baseline.bytes,
      });
      const guest = await WorkerGuest.start(baseline.bytes, {
        imports: new URL(fixture('service-loop-imports.mjs'), 'file://'),
        run: { export: 'serve', args: [-1] },
        interrupts: reach === 'interrupts',
      });
      open.push(guest);
      const seen: string[] = [];
      for (const type of ['loaded', 'applied', 'reverted', 'rejected', 'rolled-back', 'hook-failed'] as const) guest.addEventListener(type, () => seen.push(type));
      const before = await guest.status();
      await guest.load(bytes);
      expect(seen).toEqual(['loaded']);
      const loaded = await guest.status();
      expect(loaded.patches.map((p) => [p.id, p.state])).toEqual([['v2', 'loaded']]);
      expect(loaded.functions).toEqual(before.functions);
      // The service loop ran all along: no request was ever handled by v2 while load rehearsed.
      expect(await guest.call('handled_by_v2')).toBe(0);
      expect(await guest.call('version')).toBe(1);
      const applied = await guest.apply('v2');
      expect(applied).toMatchObject({ id: 'v2', state: 'applied' });
      expect(guest.lastServed?.servedAt).toBe(reach === 'interrupts' ? 'interrupt' : 'safepoint');
      expect(seen).toEqual(['loaded', 'applied']);
      expect((await guest.status()).functions.map((f) => [f.function, f.patch])).toEqual([['handle', 'v2']]);
    });
  }
});
