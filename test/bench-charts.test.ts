import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chartKind, ranges, renderChart } from '../bench/_charts.js';
import type { Suite } from '../bench/_harness.js';

// Recorded results files (copies of bench/results/*.json as a run wrote them), so the chart code is
// checked without running a benchmark.
const recorded = (name: string): Suite => JSON.parse(readFileSync(new URL(`fixtures/bench/${name}.json`, import.meta.url), 'utf8')) as Suite;

/** The items of every mark group of a kind (`symbol`, `rect`, …) in a Vega SVG: one element per datum drawn. */
function items(svg: string, mark: string): number {
  return svg
    .split(`<g class="mark-${mark} role-mark`)
    .slice(1)
    .reduce((n, group) => n + (group.slice(0, group.indexOf('</g>')).match(/<path /g)?.length ?? 0), 0);
}

const texts = (svg: string): string[] => [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));

describe('benchmark charts', () => {
  it('pairs rows recorded as "… p50" / "… p99" back into one range per variant', () => {
    const suite = recorded('cross-thread');
    expect(chartKind(suite)).toBe('range');
    const pairs = ranges(suite);
    expect(pairs).toHaveLength(6);
    expect(pairs.find((r) => r.case.includes('interrupts') && r.variant.startsWith('WorkerGuest'))).toMatchObject({ p50: 14.92, p99: 593, label: '14.92 µs … 593 µs (1.53×)' });
  });

  it('draws cross-thread p50/p99 as SVG: one dot per variant and case, every series named', async () => {
    const suite = recorded('cross-thread');
    const svg = await renderChart(suite);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(items(svg, 'symbol')).toBe(6);
    const labels = texts(svg);
    for (const c of new Set(suite.rows.map((r) => r.case))) expect(labels).toContain(c);
    for (const v of ['raw: flag in shared memory + table.set (reference)', 'raw: inspector interrupt + table.set (reference)', 'WorkerGuest.apply (1-function patch)']) expect(labels).toContain(v);
    expect(labels).toContain('3.9 µs … 71.66 µs (3.89×)');
  });

  it('draws overhead per workload as one bar per workload and design, the reference as the 1× line', async () => {
    const suite = recorded('call-overhead');
    expect(chartKind(suite)).toBe('overhead');
    const svg = await renderChart(suite);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(items(svg, 'rect')).toBe(10);
    const labels = texts(svg);
    expect(labels).toEqual(expect.arrayContaining(['prepared (entry)', 'prepared (indirect)', '1.96×', '0.729×']));
    expect(labels).not.toContain('original');
  });

  it('draws first vs warm apply as distributions: one dot per process sample, every series named', async () => {
    const suite = recorded('first-apply');
    expect(chartKind(suite)).toBe('distribution');
    const svg = await renderChart(suite);
    expect(svg.startsWith('<svg')).toBe(true);
    const samples = suite.rows.reduce((n, r) => n + r.samplesUs!.length, 0);
    expect(samples).toBe(90);
    expect(items(svg, 'symbol')).toBe(samples);
    const labels = texts(svg);
    expect(labels).toEqual(
      expect.arrayContaining([
        'first write in a fresh process',
        'warm: median of 200 more in the same processes',
        'raw table.set (reference)',
        'guest.apply(patch), whole call',
        'guest.apply(patch), commit as the engine timed it',
      ]),
    );
  });
});
