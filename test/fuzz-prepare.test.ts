import { describe, expect, it } from 'vitest';
import { caseKind, fuzzPrepare } from './fuzz-prepare.js';

// Fixed case seeds (binaryen translate-to-fuzz where seed % 3 != 0, legacy exception handling
// where seed % 3 == 0) and one random seed per run; `npm run fuzz -- prepare` runs 200 modules.
const FIXED = [1, 3, 6, 9, 12, 15, 18, 21];

describe('prepare, differentially fuzzed (fast slice)', () => {
  it('original and baseline agree on every call, in every dispatch mode, with safepoints, quiescent counting and a patch wrapping every original', async () => {
    const random = Math.floor(Math.random() * 2 ** 31);
    const report = await fuzzPrepare([...FIXED, random]);
    const replay = `random case seed ${random} (${caseKind(random)}); replay one case: npm run fuzz -- prepare-case <seed>`;
    expect(report.failures, replay).toEqual([]);
    // Not vacuous: modules were compared, calls made, the patch ran and was switched at safepoints.
    expect(report.compared, replay).toBeGreaterThanOrEqual(FIXED.length - 1);
    expect(report.calls).toBeGreaterThan(1000);
    expect(report.wrapped).toBeGreaterThan(1000);
    expect(report.switches).toBeGreaterThan(10);
  }, 180_000); // binaryen's wasm-opt starts in a child process: seconds per module on a busy machine
});
