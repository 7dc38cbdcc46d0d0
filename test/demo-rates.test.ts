// Per-phase rates: the first rate after a switch counts only what happened since the switch.
import { describe, expect, it } from 'vitest';
import { PhaseRates } from '../src/demo/_rates.js';

describe('the demo rates', () => {
  it('never straddle a switch: the first rate after applying counts only patched requests', () => {
    const rates = new PhaseRates({ served: 0, escalations: 0 }, 0);
    rates.update({ served: 1000, escalations: 50 }, 250);
    expect(rates.escalations).toBe(200);
    // The fix goes in at 300 ms, after 10 more escalations; none after it.
    rates.restart({ served: 1200, escalations: 60 }, 300);
    expect(rates.escalations).toBeUndefined();
    rates.update({ served: 1300, escalations: 60 }, 350); // not half a window yet
    expect(rates.requests).toBeUndefined();
    rates.update({ served: 1700, escalations: 60 }, 425);
    expect(rates.escalations).toBe(0);
    expect(rates.requests).toBe(4000);
  });

  it('moves once a window has passed, or when forced at the end', () => {
    const rates = new PhaseRates({ served: 0, escalations: 0 }, 0);
    rates.update({ served: 250, escalations: 0 }, 250);
    rates.update({ served: 300, escalations: 0 }, 300);
    expect(rates.requests).toBe(1000);
    rates.update({ served: 400, escalations: 0 }, 350, true);
    expect(rates.requests).toBe(1500);
  });
});
