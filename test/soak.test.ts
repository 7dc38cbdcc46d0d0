import { describe, expect, it } from 'vitest';
import { soak } from './soak.js';

describe('soak (slice; npm run soak for 100,000 cycles)', () => {
  it('apply / revert / cumulative cycles under traffic keep every invariant', async () => {
    const report = await soak(3000, 7);
    expect(report.violations).toEqual([]);
    expect(report.requests).toBe(1_200_000);
  });
});
