import { Bench } from 'tinybench';
import { progress } from './_progress.js';

/** One row of a result table: a variant's median time and its ratio to the reference in the same run. */
export interface Row {
  readonly case: string;
  readonly variant: string;
  /** Median over rounds of each round's median latency, in microseconds. */
  readonly medianUs: number;
  /** Median over rounds of (variant / reference) measured in the same round. */
  readonly ratio: number;
  readonly p99Us?: number;
  /** Every sample, in microseconds, where a suite keeps them (e.g. one per fresh process): drawn as a distribution. */
  readonly samplesUs?: readonly number[];
  /** Interquartile range of the per-round ratios (interleaved suites): the spread the ratio comes with. */
  readonly ratioIqr?: readonly [number, number];
  /** A size in bytes, for suites that measure sizes rather than time (the median column shows it). */
  readonly bytes?: number;
}

export interface Suite {
  readonly name: string;
  readonly question: string;
  readonly rows: Row[];
  readonly notes: string[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Quick mode (`BENCH_QUICK=1`) runs fewer rounds, for smoke-testing the suites. */
export const quick = process.env.BENCH_QUICK === '1';

/**
 * Times each variant of a case side by side: `rounds` rounds, every variant once per round in
 * rotating order, so drift and noise hit all variants alike. The first variant is the reference.
 */
export async function compare(
  caseName: string,
  variants: Record<string, { fn: () => unknown; beforeEach?: () => void; afterEach?: () => void }>,
  { rounds = quick ? 2 : 6, time = quick ? 50 : 250, iterations = quick ? 4 : 64 }: { rounds?: number; time?: number; iterations?: number } = {},
): Promise<Row[]> {
  const names = Object.keys(variants);
  const perRound = new Map<string, { p50: number; p99: number }[]>(names.map((n) => [n, []]));
  progress().case(caseName, rounds * names.length);
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    // Slow tasks (prepare, diff: 50–800 ms each) pass a small minimum of iterations, or one round
    // would take minutes; fast ones run for `time` ms whatever the minimum.
    const bench = new Bench({ time, warmupTime: time / 4, iterations, warmupIterations: Math.min(iterations, 8) });
    bench.addEventListener('cycle', () => progress().step());
    for (const name of order) {
      const v = variants[name]!;
      bench.add(name, v.fn, { ...(v.beforeEach ? { beforeEach: v.beforeEach } : {}), ...(v.afterEach ? { afterEach: v.afterEach } : {}) });
    }
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed') throw new Error(`${caseName} / ${task.name}: ${result.state} ${'error' in result ? String(result.error) : ''}`);
      perRound.get(task.name)!.push({ p50: result.latency.p50, p99: result.latency.p99 });
    }
  }
  const reference = perRound.get(names[0]!)!;
  return names.map((name) => {
    const samples = perRound.get(name)!;
    return {
      case: caseName,
      variant: name,
      medianUs: round(median(samples.map((s) => s.p50)) * 1000),
      ratio: Number(median(samples.map((s, i) => s.p50 / reference[i]!.p50)).toPrecision(3)),
      p99Us: round(median(samples.map((s) => s.p99)) * 1000),
    };
  });
}

export function round(x: number, digits = 2): number {
  const f = 10 ** (x >= 100 ? 0 : digits);
  return Math.round(x * f) / f;
}

/** A markdown table of a suite's rows. */
export function markdown(suite: Suite): string {
  const lines = [
    `### ${suite.name}`,
    '',
    suite.question,
    '',
    '| case | variant | median | ratio to reference |',
    '| --- | --- | ---: | ---: |',
    ...suite.rows.map(
      (r) => `| ${r.case} | ${r.variant} | ${r.bytes === undefined ? formatUs(r.medianUs) : formatBytes(r.bytes)} | ${r.ratio}×${r.ratioIqr ? ` (${r.ratioIqr[0]}–${r.ratioIqr[1]})` : ''} |`,
    ),
    '',
    ...suite.notes.map((n) => `- ${n}`),
  ];
  return `${lines.join('\n')}\n`;
}

export function formatBytes(bytes: number): string {
  return bytes >= 1e6 ? `${round(bytes / 1e6, 2)} MB` : `${round(bytes / 1e3, 1)} KB`;
}

export function formatUs(us: number): string {
  if (us >= 1000) return `${round(us / 1000, 2)} ms`;
  return `${round(us, 2)} µs`;
}
