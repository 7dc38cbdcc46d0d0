// Question: how long is the first apply in a process, when nothing of the engine has run yet, next
// to a warm one and to a raw `table.set`? Each sample is a fresh process; raw and engine processes
// alternate, so drift hits both alike.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quick, round, type Row, type Suite } from './_harness.js';
import { syntheticBaseline, syntheticPatch } from './_guests.js';
import { progress } from './_progress.js';

const PROCESSES = quick ? 3 : 15;
const child = fileURLToPath(new URL('./_first-apply-child.ts', import.meta.url));

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const pct = (xs: readonly number[], p: number): number => sorted(xs)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

function row(name: string, variant: string, samples: number[], reference: number[]): Row {
  return {
    case: name,
    variant,
    medianUs: round(pct(samples, 50)),
    ratio: Number((pct(samples, 50) / pct(reference, 50)).toPrecision(3)),
    p99Us: round(pct(samples, 99)),
    samplesUs: samples.map((x) => round(x)),
  };
}

export default async function firstApply(): Promise<Suite> {
  const dir = mkdtempSync(join(tmpdir(), 'first-apply-'));
  try {
    const baseline = await syntheticBaseline(1000);
    writeFileSync(join(dir, 'baseline.wasm'), baseline.bytes);
    writeFileSync(join(dir, 'patch.wasm'), await syntheticPatch(baseline, 1));
    const run = (mode: string) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', child, join(dir, 'baseline.wasm'), join(dir, 'patch.wasm'), mode], { encoding: 'utf8' }));
    const raw: { first: number; warm: number }[] = [];
    const engine: { first: number; warm: number; firstCommit: number; warmCommit: number }[] = [];
    progress().case(`${PROCESSES} fresh processes each, raw and engine alternating`, PROCESSES * 2);
    for (let i = 0; i < PROCESSES; i++) {
      raw.push(run('raw'));
      progress().step();
      engine.push(run('engine'));
      progress().step();
    }
    const first = 'first write in a fresh process';
    const warm = 'warm: median of 200 more in the same processes';
    const rawFirst = raw.map((r) => r.first);
    const rawWarm = raw.map((r) => r.warm);
    return {
      name: 'First apply vs warm apply',
      question: 'A 1-function patch on a 1000-function baseline: the first `guest.apply` in a process (engine code not yet compiled by V8) and warm ones, next to a raw `table.set` of one slot from JS, first and warm.',
      rows: [
        row(first, 'raw table.set (reference)', rawFirst, rawFirst),
        row(first, 'guest.apply(patch), whole call', engine.map((e) => e.first), rawFirst),
        row(first, 'guest.apply(patch), commit as the engine timed it', engine.map((e) => e.firstCommit), rawFirst),
        row(warm, 'raw table.set (reference)', rawWarm, rawWarm),
        row(warm, 'guest.apply(patch), whole call', engine.map((e) => e.warm), rawWarm),
        row(warm, 'guest.apply(patch), commit as the engine timed it', engine.map((e) => e.warmCommit), rawWarm),
      ],
      notes: [
        `One sample per process (${PROCESSES} processes per mode); a warm sample is that process's median over 200 applies (each after a revert).`,
        "The commit is the engine's own figure (the `applied` event's `commit`: the table writes alone); the whole call adds checks, stacks and the event.",
        'Guest construction writes slot 0 once, so V8 has compiled the slot setter before the first apply.',
        '200 applies do not get the engine optimized by V8: the commit-latency suite, timing thousands after a warm-up, is the steady state.',
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
