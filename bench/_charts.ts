// Charts of benchmark results, as SVG drawn by Vega-Lite in Node (no browser, no native code).
// One chart per suite, its kind read from the shape of its rows:
//   distribution — rows with samples (e.g. first vs warm apply, one sample per fresh process): box plots;
//   overhead     — suites asking what something costs ("Cost of …"): each workload's ratio to its reference;
//   range        — everything else: each variant's p50 and p99 on a log scale (rows recorded as
//                  "… p50" / "… p99" pairs, like the cross-thread suite's, are paired back up).
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { formatUs, type Suite } from './_harness.js';

/** How a suite is drawn. */
export type ChartKind = 'range' | 'overhead' | 'distribution';

const PERCENTILE = /^(.*) (p50|p99)$/;
const WIDTH = 420;
const FONT = 'Helvetica, Arial, sans-serif';

/** The kind of chart a suite's rows call for. */
export function chartKind(suite: Suite): ChartKind {
  if (suite.rows.some((r) => (r.samplesUs?.length ?? 0) > 0)) return 'distribution';
  if (/^Cost of\b/.test(suite.name)) return 'overhead';
  return 'range';
}

/** A variant's p50 (and p99 when recorded) in one case. */
export interface RangeDatum {
  readonly case: string;
  readonly variant: string;
  readonly p50: number;
  readonly p99: number | undefined;
  readonly label: string;
}

/** Each variant's p50..p99, pairing rows recorded separately as "<variant> p50" and "<variant> p99". */
export function ranges(suite: Suite): RangeDatum[] {
  const byKey = new Map<string, { case: string; variant: string; p50?: number; p99?: number; ratio?: number }>();
  for (const row of suite.rows) {
    const split = PERCENTILE.exec(row.variant);
    const variant = split ? split[1]! : row.variant;
    const key = `${row.case}\u0000${variant}`;
    const entry = byKey.get(key) ?? { case: row.case, variant };
    if (split?.[2] === 'p99') entry.p99 = row.medianUs;
    else {
      entry.p50 = row.medianUs;
      entry.ratio = row.ratio;
      if (row.p99Us !== undefined) entry.p99 = row.p99Us;
    }
    byKey.set(key, entry);
  }
  return [...byKey.values()]
    .filter((e) => e.p50 !== undefined)
    .map((e) => ({
      case: e.case,
      variant: e.variant,
      p50: e.p50!,
      p99: e.p99,
      label: `${formatUs(e.p50!)}${e.p99 !== undefined ? ` … ${formatUs(e.p99)}` : ''} (${e.ratio}×)`,
    }));
}

const unique = (xs: readonly string[]): string[] => [...new Set(xs)];

/** Variants in the order their case lists them (the reference first), across cases that list different ones. */
function variantOrder(data: readonly { case: string; variant: string }[]): string[] {
  const place = new Map<string, number>();
  for (const c of unique(data.map((d) => d.case))) {
    for (const [i, v] of unique(data.filter((d) => d.case === c).map((d) => d.variant)).entries()) place.set(v, Math.min(place.get(v) ?? i, i));
  }
  return [...place.keys()].sort((a, b) => place.get(a)! - place.get(b)!);
}

function wrap(text: string, width = 90): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

function frame(suite: Suite, subtitle: string): Pick<TopLevelSpec, '$schema' | 'title' | 'config' | 'background' | 'padding'> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: suite.name, subtitle: [...wrap(suite.question), subtitle], anchor: 'start', subtitleColor: '#555', font: FONT, subtitleFont: FONT },
    background: 'white',
    padding: 12,
    config: { font: FONT, view: { stroke: null }, mark: { invalid: null }, axis: { labelFont: FONT, titleFont: FONT }, header: { labelFont: FONT } },
  };
}

const caseHeader = { title: null, labelAngle: 0, labelAlign: 'left', labelAnchor: 'start', labelOrient: 'top', labelFontWeight: 'bold', labelFontSize: 12, labelLimit: 640 } as const;

function rangeSpec(suite: Suite): TopLevelSpec {
  const data = ranges(suite).map((d) => ({ ...d, end: d.p99 ?? d.p50 }));
  const x = { type: 'quantitative', scale: { type: 'log' }, title: 'µs (log scale)', axis: { grid: true, gridColor: '#eee', tickCount: 5 } } as const;
  return {
    ...frame(suite, 'dot: median (p50); line to the bar: p99. In brackets: median as a multiple of the reference in the same run.'),
    data: { values: data },
    facet: { row: { field: 'case', type: 'nominal', sort: unique(data.map((d) => d.case)), header: caseHeader } },
    spec: {
      width: WIDTH,
      height: { step: 20 },
      encoding: {
        y: { field: 'variant', type: 'nominal', sort: variantOrder(data), title: null, axis: { labelLimit: 1000 } },
        color: { field: 'variant', type: 'nominal', legend: null, sort: variantOrder(data) },
      },
      layer: [
        { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x: { field: 'p50', ...x }, x2: { field: 'end' } } },
        { mark: { type: 'point', filled: true, size: 70, opacity: 1 }, encoding: { x: { field: 'p50', ...x } } },
        { mark: { type: 'tick', thickness: 2, size: 14 }, encoding: { x: { field: 'p99', ...x } } },
        { mark: { type: 'text', align: 'left', dx: 8, fontSize: 10, color: '#333' }, encoding: { x: { field: 'end', ...x }, text: { field: 'label' } } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

function overheadSpec(suite: Suite): TopLevelSpec {
  const references = new Set(unique(suite.rows.map((r) => r.case)).map((c) => suite.rows.find((r) => r.case === c)!));
  const data = suite.rows.filter((r) => !references.has(r)).map((r) => ({ case: r.case, variant: r.variant, ratio: r.ratio, label: `${r.ratio}×` }));
  const variants = variantOrder(data);
  return {
    ...frame(suite, `each workload's median as a multiple of its reference (${unique([...references].map((r) => r.variant)).join(' / ')}) in the same run; 1× = no cost.`),
    data: { values: data },
    width: WIDTH,
    height: { step: 16 },
    encoding: {
      y: { field: 'case', type: 'nominal', sort: unique(data.map((d) => d.case)), title: null, axis: { labelLimit: 1000 } },
      yOffset: { field: 'variant', type: 'nominal', sort: variants },
      color: { field: 'variant', type: 'nominal', sort: variants, title: null, legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 } },
    },
    layer: [
      { mark: { type: 'bar', height: { band: 0.9 } }, encoding: { x: { field: 'ratio', type: 'quantitative', title: '× reference', scale: { zero: true }, axis: { grid: true, gridColor: '#eee' } } } },
      { mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#333' }, encoding: { x: { field: 'ratio', type: 'quantitative' }, text: { field: 'label' } } },
      { data: { values: [{ one: 1 }] }, mark: { type: 'rule', color: '#999', strokeDash: [4, 3] }, encoding: { x: { field: 'one', type: 'quantitative' }, yOffset: null, y: null, color: null } },
    ],
  } as TopLevelSpec;
}

function distributionSpec(suite: Suite): TopLevelSpec {
  const data = suite.rows.flatMap((r) => (r.samplesUs ?? [r.medianUs]).map((us) => ({ case: r.case, variant: r.variant, us })));
  const variants = variantOrder(data);
  const x = { field: 'us', type: 'quantitative', scale: { type: 'log' }, title: 'µs (log scale)', axis: { grid: true, gridColor: '#eee', tickCount: 5 } } as const;
  return {
    ...frame(suite, 'box: quartiles and median, whiskers: min to max; dots: every sample.'),
    data: { values: data },
    facet: { row: { field: 'case', type: 'nominal', sort: unique(data.map((d) => d.case)), header: caseHeader } },
    spec: {
      width: WIDTH,
      height: { step: 26 },
      encoding: {
        y: { field: 'variant', type: 'nominal', sort: variants, title: null, axis: { labelLimit: 1000 } },
        color: { field: 'variant', type: 'nominal', sort: variants, legend: null },
      },
      layer: [
        { mark: { type: 'boxplot', extent: 'min-max', size: 14, opacity: 0.5 }, encoding: { x } },
        { mark: { type: 'point', filled: true, size: 14, opacity: 0.8 }, encoding: { x } },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/** The Vega-Lite spec of a suite's chart. */
export function chartSpec(suite: Suite): TopLevelSpec {
  const kind = chartKind(suite);
  return kind === 'distribution' ? distributionSpec(suite) : kind === 'overhead' ? overheadSpec(suite) : rangeSpec(suite);
}

// Vega-Lite warns about every layered facet with independent scales (each layer filters its own
// fork of the data); those forks are of one data set here, so that warning alone is dropped.
const LAYERED_FACET = /faceted independent scales that union domain/;
const logger = {
  level(): number {
    return 2;
  },
  warn(...args: unknown[]) {
    if (!args.some((a) => LAYERED_FACET.test(String(a)))) process.stderr.write(`charts: ${args.join(' ')}\n`);
    return logger;
  },
  error(...args: unknown[]): never {
    throw new Error(`chart spec: ${args.join(' ')}`);
  },
  info: () => logger,
  debug: () => logger,
};

/** A suite's chart as standalone SVG text. */
export async function renderChart(suite: Suite): Promise<string> {
  const view = new View(parse(compile(chartSpec(suite), { logger: logger as never }).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
