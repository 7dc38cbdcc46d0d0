// Question: what does the guest feel of the first apply in a process that has never applied
// anything? Fresh processes, each timing its first and warm apply and revert of a 1-function patch
// on a ~1 MB real baseline, next to a raw first and warm `table.set` in the same process.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPatch } from '../src/build/build.js';
import { diffBuilds } from '../src/build/diff.js';
import { watToWasm } from '../src/build/wat.js';
import { prepare } from '../src/prepare/prepare.js';
import { editOneConstant } from './_edit.js';
import { quick, round, type Row, type Suite } from './_harness.js';
import { sqlJsWasm } from './_libraries.js';

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q + 0.5))]!;
};

/** Fresh processes each starting a busy worker guest and timing its first apply (host and worker both cold). */
async function workerRuns(processes: number): Promise<Record<'interrupts' | 'safepoints', Record<string, number>[]>> {
  const wat = readFileSync(new URL('../test/fixtures/service-loop.wat', import.meta.url), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'first-apply-worker-'));
  const child = fileURLToPath(new URL('_first-apply-worker.ts', import.meta.url));
  const out = { interrupts: [] as Record<string, number>[], safepoints: [] as Record<string, number>[] };
  for (const reach of ['interrupts', 'safepoints'] as const) {
    const baseline = await prepare(await watToWasm(wat), reach === 'safepoints' ? { safepoints: { interval: 256 } } : {});
    const { bytes } = await buildPatch({
      wat: '(module (func (export "handle") (param i32) (result i32) (i32.const 2)))',
      manifest: { id: 'v2', sequence: 1, targets: [{ function: 'handle', export: 'handle' }] },
      baseline: baseline.bytes,
    });
    writeFileSync(join(dir, `${reach}.baseline.wasm`), baseline.bytes);
    writeFileSync(join(dir, `${reach}.patch.wasm`), bytes);
    for (let i = 0; i < processes; i++) {
      const line = execFileSync(process.execPath, ['--import', 'tsx', child, join(dir, `${reach}.baseline.wasm`), join(dir, `${reach}.patch.wasm`), reach], { encoding: 'utf8' });
      out[reach].push(JSON.parse(line.trim()) as Record<string, number>);
    }
  }
  return out;
}

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
  const inThread = `${(baseline.bytes.length / 1e6).toFixed(2)} MB sql.js baseline, 1-function patch, ${processes} fresh processes`;
  const row = (variant: string, key: string, reference: string, samples = runs, name = inThread): Row => ({
    case: name,
    variant,
    medianUs: round(
      quantile(
        samples.map((r) => r[key]!),
        0.5,
      ),
    ),
    ratio: Number(
      quantile(
        samples.map((r) => r[key]! / r[reference]!),
        0.5,
      ).toPrecision(3),
    ),
    p99Us: round(
      quantile(
        samples.map((r) => r[key]!),
        0.9,
      ),
    ),
    samplesUs: samples.map((r) => round(r[key]!)),
  });
  const workers = await workerRuns(processes);
  return {
    name: 'First apply in a fresh process',
    question:
      "The first apply and revert a process ever does, and warm ones (median of 200), next to a raw `table.set` of the same replacement on a second instance of the baseline in the same process, first and warm. Targets: first apply p50 ≤ 50 µs, warm ≤ 2 µs; revert likewise; a busy worker guest's first apply acknowledged in ≤ 100 µs p50. Reference: the raw first / warm `table.set`; for workers, the warm apply in the same process.",
    rows: [
      row('raw table.set, first (reference)', 'rawFirstSet', 'rawFirstSet'),
      row('guest.apply, first', 'firstApply', 'rawFirstSet'),
      row('slot writes of that apply, as the engine timed them (lastCommit)', 'firstCommit', 'rawFirstSet'),
      row('guest.revert, first', 'firstRevert', 'rawFirstSet'),
      row('raw table.set, warm (reference)', 'rawWarmSet', 'rawWarmSet'),
      row('guest.apply, warm', 'warmApply', 'rawWarmSet'),
      row('guest.revert, warm', 'warmRevert', 'rawWarmSet'),
      ...(['interrupts', 'safepoints'] as const).flatMap((reach) => {
        const name = `busy worker guest reached by ${reach === 'interrupts' ? 'interrupts (no safepoints)' : 'safepoints (every 256 iterations)'}, ${processes} fresh processes`;
        return [
          row('WorkerGuest.apply, first, to the acknowledgement', 'firstApply', 'warmApply', workers[reach], name),
          row("slot writes of that apply, as the worker's engine timed them", 'firstCommit', 'warmApply', workers[reach], name),
          row('WorkerGuest.revert, first', 'firstRevert', 'warmApply', workers[reach], name),
          row('WorkerGuest.apply, warm (reference: median of 100)', 'warmApply', 'warmApply', workers[reach], name),
        ];
      }),
    ],
    notes: [
      "Each process loads the baseline through sql.js's own emscripten glue, loads the patch (compile, instantiate, everything `load` does ahead), then times. Half the processes time the raw `table.set` first, half the engine first, so neither gets a warmer process.",
      'The p99 column is the 90th percentile over processes. Ratios are per process: first apply ÷ first raw set in the same process.',
    ],
  };
}
