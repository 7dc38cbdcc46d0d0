// The engine's model-based test (engine-model.ts) on worker guests, through the contract alone:
// random load / apply (watched or not) / revert / cumulative / unload / trap / fail sequences,
// checked after every step against the reference model, as the in-thread guest is.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
// The runtime spawns compiled workers: from dist/, as the other runtime tests (npm test builds first).
import { WorkerGuest, type WorkerGuestOptions } from 'wasm-hotpatch/runtime';
import { modelFixture, opsArb, runModel } from './engine-model.js';

const open: WorkerGuest[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});

// Each step is about 14 requests to the worker (the step, 12 calls, a status).
const kinds: { name: string; runs: number; steps: number; options: WorkerGuestOptions }[] = [
  { name: 'an idle worker guest (served from its event loop)', runs: 15, steps: 100, options: {} },
  // `busy` never returns: every request reaches it by interrupt, applies and reverts take the fast path.
  { name: 'a busy worker guest (interrupts, fast path)', runs: 5, steps: 100, options: { run: { export: 'busy' } } },
];

describe('random sequences of operations match the reference model (worker guests)', () => {
  for (const kind of kinds) {
    it(`${kind.name}: ${kind.runs * kind.steps} steps`, async () => {
      const { baseline, pool, broken } = await modelFixture('entry', { extraWat: '(func $tick) (func (export "busy") (loop $l (call $tick) (br $l)))' });
      let steps = 0;
      await fc.assert(
        fc.asyncProperty(opsArb(false, kind.steps), async (ops) => {
          const guest = await WorkerGuest.start(baseline.bytes, kind.options);
          open.push(guest);
          try {
            steps += await runModel({ guest }, pool, broken, ops);
          } finally {
            await guest.close();
          }
        }),
        { numRuns: kind.runs },
      );
      expect(steps).toBe(kind.runs * kind.steps);
    });
  }
});
