// Question: how long does a patch take to go through every thread of a busy multi-threaded guest?
// Transition time for 1 / 2 / 4 / 8 threads (on this machine's 2 cores: more threads than cores
// wait for the scheduler), median and p99 over trials, next to one thread's cross-thread apply.
import { readFileSync } from 'node:fs';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { prepare } from '../src/prepare/prepare.js';
import { ThreadedGuest } from '../src/runtime/index.js';
import { quick, round, type Row, type Suite } from './_harness.js';

const TRIALS = quick ? 20 : 200;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

export default async function transition(): Promise<Suite> {
  const baseline = (await prepare(await watToWasm(readFileSync(new URL('../test/fixtures/threads.wat', import.meta.url), 'utf8')), { safepoints: { interval: 256 } })).bytes;
  const { bytes } = await buildPatch({
    wat: '(module (func (export "f") (param i32) (result i32) (i32.const 7)))',
    manifest: { id: 'seven', sequence: 1, targets: [{ function: 'f', export: 'f' }] },
    baseline,
  });
  const rows: Row[] = [];
  let reference = 0;
  for (const threads of [1, 2, 4, 8]) {
    const guest = await ThreadedGuest.start(baseline, { threads, memory: { module: 'env', name: 'memory', initial: 1, maximum: 1 }, run: { export: 'work' } });
    const patch = await guest.load(bytes);
    const times: number[] = [];
    for (let i = 0; i < TRIALS + 10; i++) {
      const t = (await guest.applyTransition(patch.id).done).duration * 1000;
      if (i >= 10) times.push(t);
      await guest.revertTransition(patch.id).done;
    }
    await guest.close();
    if (threads === 1) reference = pct(times, 50);
    rows.push({ case: `${threads} busy thread${threads === 1 ? '' : 's'}`, variant: 'transition p50', medianUs: round(pct(times, 50)), ratio: Number((pct(times, 50) / reference).toPrecision(3)) });
    rows.push({ case: `${threads} busy thread${threads === 1 ? '' : 's'}`, variant: 'transition p99', medianUs: round(pct(times, 99)), ratio: Number((pct(times, 99) / reference).toPrecision(3)) });
  }
  return {
    name: 'Transition time through threads',
    question: `Apply of a loaded 1-function patch until every thread of a busy guest has switched, ${TRIALS} trials. Ratios to the 1-thread p50.`,
    rows,
    notes: ['Each thread runs a loop calling the patched function continuously, with a safepoint every 256 iterations. The machine has 2 cores: with 4 and 8 busy threads, a thread waits for its time slice before it can reach a safepoint.'],
  };
}
