// Question: what does the guest feel of the first apply in a process that has never applied
// anything? Fresh processes, each timing its first and warm apply and revert of a 1-function patch
// on a ~1 MB real baseline, next to a raw first and warm `table.set` in the same process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diffBuilds } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { editOneConstant } from './_edit.js';
import { quick, round, type Row, type Suite } from './_harness.js';
import { sqlJsWasm } from './_libraries.js';

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q + 0.5))]!;
};

export default async function firstApply(): Promise<Suite> {
  const original = sqlJsWasm();
  const baseline = await prepare(original);
  const { bytes: fixed } = editOneConstant(original, 200);
  const diff = await diffBuilds(original, fixed, { baseline: baseline.bytes, id: 'first-apply' });
  if (!diff.hotpatchable) throw new Error('the one-constant edit should be hotpatchable');
  const dir = mkdtempSync(join(tmpdir(), 'first-apply-'));
  writeFileSync(join(dir, 'baseline.wasm'), baseline.bytes);
  writeFileSync(join(dir, 'patch.wasm'), diff.patch.bytes);

  const child = fileURLToPath(new URL('_first-apply-child.ts', import.meta.url));
  const processes = quick ? 4 : 20;
  const runs: Record<string, number>[] = [];
  for (let i = 0; i < processes; i++) {
    const line = execFileSync(process.execPath, ['--import', 'tsx', child, join(dir, 'baseline.wasm'), join(dir, 'patch.wasm'), i % 2 ? 'raw-first' : 'engine-first'], { encoding: 'utf8' });
    runs.push(JSON.parse(line.trim()) as Record<string, number>);
  }
  const row = (variant: string, key: string, reference: string): Row => ({
    case: `${(baseline.bytes.length / 1e6).toFixed(2)} MB sql.js baseline, 1-function patch, ${processes} fresh processes`,
    variant,
    medianUs: round(quantile(runs.map((r) => r[key]!), 0.5)),
    ratio: Number(quantile(runs.map((r) => r[key]! / r[reference]!), 0.5).toPrecision(3)),
    p99Us: round(quantile(runs.map((r) => r[key]!), 0.9)),
    samplesUs: runs.map((r) => round(r[key]!)),
  });
  return {
    name: 'First apply in a fresh process',
    question: 'The first apply and revert a process ever does, and warm ones (median of 200), next to a raw `table.set` of the same replacement on a second instance of the baseline in the same process, first and warm. Targets: first apply p50 ≤ 50 µs, warm ≤ 2 µs; revert likewise. Reference: the raw first / warm `table.set`.',
    rows: [
      row('raw table.set, first (reference)', 'rawFirstSet', 'rawFirstSet'),
      row('guest.apply, first', 'firstApply', 'rawFirstSet'),
      row('slot writes of that apply, as the engine timed them (lastCommit)', 'firstCommit', 'rawFirstSet'),
      row('guest.revert, first', 'firstRevert', 'rawFirstSet'),
      row('raw table.set, warm (reference)', 'rawWarmSet', 'rawWarmSet'),
      row('guest.apply, warm', 'warmApply', 'rawWarmSet'),
      row('guest.revert, warm', 'warmRevert', 'rawWarmSet'),
    ],
    notes: [
      'Each process loads the baseline through sql.js\'s own emscripten glue, loads the patch (compile, instantiate, everything `load` does ahead), then times. Half the processes time the raw `table.set` first, half the engine first, so neither gets a warmer process.',
      'The p99 column is the 90th percentile over processes. Ratios are per process: first apply ÷ first raw set in the same process.',
    ],
  };
}
