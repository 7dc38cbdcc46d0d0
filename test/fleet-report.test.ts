import { describe, expect, it } from 'vitest';
import { complianceOf } from '../src/fleet/report.js';
import { renderReport } from '../src/fleet/render.js';
import type { HostStatus, Release } from '../src/fleet/types.js';

const t0 = Date.parse('2026-11-30T06:00:00Z');
const at = (s: number) => new Date(t0 + s * 1000).toISOString();
const ring = (name: string) => ({ name, soakMs: 0, minShare: 1, maxFailures: 0, deferMs: 0 });
const release: Release = {
  id: 'r9',
  description: 'fix',
  patches: [
    { baseline: 'aaaa', id: 'fix-a', sequence: 2, sha256: 'x', size: 1 },
    { baseline: 'bbbb', id: 'fix-b', sequence: 2, sha256: 'y', size: 1 },
  ],
  rings: [ring('test'), ring('broad')],
  rollbackOnFailure: true,
  state: 'rolling',
  current: 1,
  progress: { test: { openedAt: at(0), promotedAt: at(10) }, broad: { openedAt: at(10) } },
  createdAt: at(0),
};
const host = (id: string, r: string, baseline: string, state: HostStatus['state'], extra: Partial<HostStatus> = {}): HostStatus => ({
  host: id,
  ring: r,
  labels: {},
  baseline,
  applied: [],
  release: 'r9',
  state,
  healthy: true,
  since: at(0),
  at: at(30),
  ...extra,
});

describe('compliance report', () => {
  const hosts = [
    host('t-1', 'test', 'aaaa', 'applied', { applied: [{ id: 'fix-a', sequence: 2 }], since: at(4) }),
    host('t-2', 'test', 'bbbb', 'applied', { applied: [{ id: 'fix-b', sequence: 2 }], since: at(8) }),
    host('t-3', 'test', 'cccc', 'not-eligible', { reason: 'not eligible: needs baseline aaaa or bbbb' }),
    host('b-1', 'broad', 'aaaa', 'apply-failed', { reason: 'E_PATCH_REJECTED (E_UNSIGNED): unsigned' }),
    host('b-2', 'broad', 'aaaa', 'rolled-back', { reason: 'its health checks rolled it back: 1 trap', healthy: false }),
    host('b-3', 'broad', 'aaaa', 'applied', { applied: [{ id: 'fix-a', sequence: 2 }], since: at(20) }),
    host('b-4', 'broad', 'aaaa', 'unapplied', { release: 'r8' }),
    host('b-5', 'broad', 'aaaa', 'applied', { applied: [{ id: 'fix-a', sequence: 2 }] }),
  ];
  const report = complianceOf(release, { hosts, online: new Set(hosts.map((h) => h.host).filter((h) => h !== 'b-5')), at: t0 + 30_000 }, 0.5);

  it('puts every host in one precise state, naming offline and ineligible hosts with the reason', () => {
    const state = Object.fromEntries(report.hosts.map((h) => [h.host, h.state]));
    expect(state).toEqual({ 't-1': 'applied', 't-2': 'applied', 't-3': 'not-eligible', 'b-1': 'apply-failed', 'b-2': 'rolled-back', 'b-3': 'applied', 'b-4': 'unapplied', 'b-5': 'offline' });
    expect(report.hosts.find((h) => h.host === 'b-5')!.reason).toContain('last heard');
    expect(report.hosts.find((h) => h.host === 't-3')!.reason).toBe('needs baseline aaaa or bbbb');
    expect(report.hosts.find((h) => h.host === 'b-4')).toMatchObject({ release: 'r8', reason: 'ring broad not reached yet' });
    expect(report.byRing.map((r) => r.ring)).toEqual(['test', 'broad']);
    expect(report.byRing[1]!.counts).toMatchObject({ applied: 1, 'apply-failed': 1, 'rolled-back': 1, unapplied: 1, offline: 1 });
    expect(report.byBaseline.find((b) => b.baseline === 'bbbb')).toMatchObject({ patch: 'fix-b', counts: { applied: 1 } });
  });

  it('counts eligible hosts (online, baseline covered) and the time to the objective', () => {
    expect(report.eligible).toBe(6);
    expect(report.compliant).toBe(3);
    expect(report.curve).toEqual([
      [4000, 1 / 6],
      [8000, 2 / 6],
      [20000, 3 / 6],
    ]);
    expect(report.timeToObjective).toBe(20_000);
  });

  it('renders a table, the hosts needing attention, the compliance line and a chart', () => {
    const text = renderReport(report);
    expect(text).toContain('release r9 (rolling, at ring broad)');
    expect(text).toMatch(/^ring\s+applied\s+unapplied\s+failed/m);
    expect(text).toMatch(/b-1\s+broad\s+apply-failed\s+E_PATCH_REJECTED/);
    expect(text).toContain('compliant 3 of 6 eligible hosts (50.0%); 50% reached after 20.0 s');
    expect(text).toContain('since release');
    expect(text).toMatch(/100%\s+┼/);
    expect(text).toMatch(/50%\s+┤\s+╭/);
  });
});
