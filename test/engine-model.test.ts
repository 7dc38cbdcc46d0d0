import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Guest } from '../src/engine/index.js';
import { replace, spy } from '../src/testing/index.js';
import { modelFixture, opsArb, runModel, type Subject } from './engine-model.js';

/** In-thread guests: the contract through `guest.async`, plus stubs, spies and `lastCommit`. */
function subject(guest: Guest): Subject {
  return {
    guest: guest.async,
    replace: (f, value) => replace(guest, `f${f}`, () => value).patch.id,
    spy: (f) => spy(guest, `f${f}`).patch.id,
    lastCommit: () => guest.lastCommit,
  };
}

// 2 dispatch modes × 50 runs × 100 steps: at least 10,000 checked steps in every run of the suite.
const RUNS = 50;
const STEPS = 100;

describe('random sequences of operations match the reference model (in-thread guests)', () => {
  for (const dispatch of ['entry', 'indirect'] as const) {
    it(`${dispatch} dispatch: ${RUNS * STEPS} steps`, async () => {
      const { baseline, pool, broken } = await modelFixture(dispatch);
      let steps = 0;
      await fc.assert(
        fc.asyncProperty(opsArb(true, STEPS), async (ops) => {
          const guest = await Guest.instantiate(baseline.bytes, {}, { verifyBaseline: false });
          steps += await runModel(subject(guest), pool, broken, ops);
        }),
        { numRuns: RUNS },
      );
      expect(steps).toBeGreaterThanOrEqual(RUNS * STEPS);
    });
  }
});
