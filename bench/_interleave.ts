// An estimator for a machine whose speed is bimodal: many short rounds, every variant once per
// round in rotating order, each timed as the minimum of a few back-to-back runs; the ratio to the
// reference is taken within each round, then summarised over rounds. A slow phase of the machine
// hits every variant of the same round alike, so it cancels in the ratio instead of in the medians.
import { quick, round, type Row } from './_harness.js';

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.ceil(at)]! - s[lo]!) * (at - lo);
};

/** One timed run of `fn`, in microseconds. */
function time(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1000;
}

/**
 * Times each variant of a case interleaved: `rounds` rounds × every variant × `reps` runs (the
 * minimum counts), after `warmup` runs each so every variant has tiered up. The first variant is
 * the reference; ratio is the median over rounds of (variant / reference) in the same round, with
 * its interquartile range.
 */
export function interleave(
  caseName: string,
  variants: Record<string, () => unknown>,
  { rounds = quick ? 6 : 40, reps = quick ? 2 : 5, warmup = quick ? 3 : 20 }: { rounds?: number; reps?: number; warmup?: number } = {},
): Row[] {
  const names = Object.keys(variants);
  for (const name of names) for (let i = 0; i < warmup; i++) variants[name]!();
  const mins = new Map<string, number[]>(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length]!;
      let best = Number.POSITIVE_INFINITY;
      for (let k = 0; k < reps; k++) best = Math.min(best, time(variants[name]!));
      mins.get(name)!.push(best);
    }
  }
  const reference = mins.get(names[0]!)!;
  return names.map((name) => {
    const samples = mins.get(name)!;
    const ratios = samples.map((s, i) => s / reference[i]!);
    return {
      case: caseName,
      variant: name,
      medianUs: round(quantile(samples, 0.5)),
      ratio: Number(quantile(ratios, 0.5).toPrecision(3)),
      ratioIqr: [Number(quantile(ratios, 0.25).toPrecision(3)), Number(quantile(ratios, 0.75).toPrecision(3))] as const,
    };
  });
}
