import { plot } from 'asciichart';
import { type ComplianceReport, REPORT_STATES, type ReportState } from './report.js';

const SHORT: Record<ReportState, string> = {
  applied: 'applied',
  unapplied: 'unapplied',
  'apply-failed': 'failed',
  'rolled-back': 'rolled-back',
  'needs-check': 'check',
  'not-eligible': 'not-elig',
  offline: 'offline',
};

/** Milliseconds as people read them. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** A rings × states table (the live panel's body, and the report's first table). */
export function renderRingTable(report: ComplianceReport): string {
  const head = ['ring', ...REPORT_STATES.map((s) => SHORT[s]), 'total'];
  const rows = report.byRing.map(({ ring, counts }) => [ring, ...REPORT_STATES.map((s) => String(counts[s] || '·')), String(REPORT_STATES.reduce((n, s) => n + counts[s], 0))]);
  return table([head, ...rows]);
}

/** Columns padded to their widest cell; the first column left-aligned, the rest right-aligned. */
function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The compliance line every summary ends with. */
export function complianceLine(report: ComplianceReport): string {
  const pct = report.eligible === 0 ? 100 : (100 * report.compliant) / report.eligible;
  const time =
    report.timeToObjective === undefined ? `${Math.round(report.objective * 100)}% not reached yet` : `${Math.round(report.objective * 100)}% reached after ${formatDuration(report.timeToObjective)}`;
  return `compliant ${report.compliant} of ${report.eligible} eligible hosts (${pct.toFixed(1)}%); ${time}`;
}

/** The share of eligible hosts compliant over time, as a terminal line chart. */
export function renderCurve(report: ComplianceReport, width = 60): string {
  if (report.curve.length === 0) return '';
  const end = Math.max(report.curve[report.curve.length - 1]![0], 1);
  const series: number[] = [];
  let i = 0;
  let share = 0;
  for (let x = 0; x <= width; x++) {
    const t = (end * x) / width;
    while (i < report.curve.length && report.curve[i]![0] <= t) share = report.curve[i++]![1];
    series.push(share * 100);
  }
  const chart = plot(series, { height: 8, min: 0, max: 100, format: (y: number) => `${y.toFixed(0).padStart(4)}% ` });
  return `${chart}\n${' '.repeat(7)}0${formatDuration(end).padStart(width)}  since release`;
}

/** The whole report as text: rings × states, baselines, hosts that need attention by name, the curve. */
export function renderReport(report: ComplianceReport): string {
  const out: string[] = [];
  const r = report.release;
  out.push(r ? `release ${r.id} (${r.state}${r.ring && r.state !== 'complete' ? `, at ring ${r.ring}` : ''}): ${r.description}` : 'no release yet');
  out.push('', renderRingTable(report), '');
  out.push(
    table([
      ['baseline', 'patch', ...REPORT_STATES.map((s) => SHORT[s])],
      ...report.byBaseline.map((b) => [`${b.baseline.slice(0, 12)}…`, b.patch ?? '—', ...REPORT_STATES.map((s) => String(b.counts[s] || '·'))]),
    ]),
  );
  const named = report.hosts.filter((h) => h.state !== 'applied' && h.state !== 'unapplied');
  if (named.length > 0) {
    out.push('', 'hosts needing attention:');
    for (const h of named.slice(0, 50)) out.push(`  ${h.host.padEnd(16)} ${h.ring.padEnd(10)} ${h.state.padEnd(13)} ${h.reason ?? ''}`);
    if (named.length > 50) out.push(`  … and ${named.length - 50} more (--json lists all)`);
  }
  out.push('', complianceLine(report));
  const curve = renderCurve(report);
  if (curve) out.push('', curve);
  return out.join('\n');
}
