import { describe, expect, it } from 'vitest';
import { fuzz } from './fuzz.js';

describe('fuzzing load and instantiate (fast slice; npm run fuzz for 100,000)', () => {
  it('every mutated patch or baseline is a typed rejection or a correct accept; rejections change nothing', async () => {
    const report = await fuzz(1500, 20261121);
    expect(report.failures).toEqual([]);
    expect(report.rejected).toBeGreaterThan(1000);
    expect(Object.keys(report.codes).length).toBeGreaterThan(5);
  });
});
