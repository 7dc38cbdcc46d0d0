// Question: how long from `apply` in the host to the acknowledgement of a busy guest in a worker?
// p50 / p99 over 1000 trials, next to the raw mechanism in the same run (a flag in shared memory
// checked by a busy worker loop, one table.set, an acknowledgement). Targets: p50 ≤ 10 µs, p99 ≤ 100 µs.
import { readFileSync } from 'node:fs';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { prepare } from '../src/prepare/prepare.js';
import { GuestThread } from '../src/runtime/guest-thread.js';
import { WorkerGuest } from '../src/runtime/index.js';
import { interruptible } from '../src/runtime/interrupts.js';
import { INTERRUPT_KEY } from '../src/runtime/protocol.js';
import { quick, round, type Row, type Suite } from './_harness.js';
import { progress } from './_progress.js';

const TRIALS = quick ? 200 : 1000;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

/** The raw mechanism: a poll every `interval` iterations, or (0) an inspector interrupt. */
async function raw(interval: number): Promise<number[]> {
  const control = new SharedArrayBuffer(8);
  const ctrl = new Int32Array(control);
  const reach = interval === 0 ? interruptible() : undefined;
  // A GuestThread: a plain Worker's terminate() can be lost right after an interrupt (see guest-thread.ts), and the run hung there.
  const worker = new GuestThread(new URL('./_raw-worker.mjs', import.meta.url), { workerData: { control, interval, interruptKey: INTERRUPT_KEY }, ...(reach ? { name: reach.name } : {}) });
  const interrupter = await reach?.attached(worker, 10_000);
  await new Promise((r) => setTimeout(r, 100));
  const times: number[] = [];
  for (let i = 1; i <= TRIALS; i++) {
    const t0 = performance.now();
    Atomics.store(ctrl, 0, i);
    interrupter?.interrupt();
    // Posted again every 2 ms, as the channel does: an interrupt that comes before the worker has
    // defined its serve function (a slow start under load) is a no-op, and the run used to hang here.
    for (let next = performance.now() + 2; Atomics.load(ctrl, 1) !== i; ) {
      if (interrupter && performance.now() > next) {
        interrupter.interrupt();
        next += 2;
      }
    }
    times.push((performance.now() - t0) * 1000);
  }
  Atomics.store(ctrl, 0, -1);
  interrupter?.close();
  await worker.terminate();
  return times;
}

/** The engine, on a baseline polling every `interval` iterations, or (0) with no safepoints, reached by interrupts. */
async function engine(interval: number): Promise<number[]> {
  const wat = readFileSync(new URL('../test/fixtures/service-loop.wat', import.meta.url), 'utf8');
  const baseline = await prepare(await watToWasm(wat), interval ? { safepoints: { interval } } : {});
  const { bytes } = await buildPatch({
    wat: '(module (func (export "handle") (param i32) (result i32) (i32.const 2)))',
    manifest: { id: 'v2', sequence: 1, targets: [{ function: 'handle', export: 'handle' }] },
    baseline: baseline.bytes,
  });
  const guest = await WorkerGuest.start(baseline.bytes, {
    imports: new URL('../test/fixtures/service-loop-imports.mjs', import.meta.url),
    run: { export: 'serve', args: [-1] },
    spin: 100_000,
    interrupts: interval === 0,
  });
  const patch = await guest.load(bytes);
  for (let i = 0; i < 50; i++) {
    await guest.apply(patch.id);
    await guest.revert(patch.id);
  }
  const times: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    times.push((await guest.apply(patch.id)).duration * 1000);
    await guest.revert(patch.id);
  }
  await guest.close();
  return times;
}

export default async function crossThread(): Promise<Suite> {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const interval of [256, 1024, 0]) {
    const name = interval ? `busy worker, poll every ${interval} iterations` : 'busy worker, no safepoints, reached by interrupts';
    progress().case(name, 2);
    const r = await raw(interval);
    progress().step();
    const e = await engine(interval);
    progress().step();
    const base = pct(r, 50);
    const mechanism = interval ? 'raw: flag in shared memory + table.set (reference)' : 'raw: inspector interrupt + table.set (reference)';
    for (const [variant, xs] of [
      [mechanism, r],
      ['WorkerGuest.apply (1-function patch)', e],
    ] as const) {
      rows.push({ case: name, variant: `${variant} p50`, medianUs: round(pct(xs, 50)), ratio: Number((pct(xs, 50) / base).toPrecision(3)) });
      rows.push({ case: name, variant: `${variant} p99`, medianUs: round(pct(xs, 99)), ratio: Number((pct(xs, 99) / base).toPrecision(3)) });
    }
  }
  notes.push(`${TRIALS} trials each, after 50 warm-up round trips; the host spins for the answer. Ratios are to the raw mechanism's p50 in the same case.`);
  notes.push('The guest polls at loop headers: the service loop and the loops inside its handlers, so its polls come more often than once per request.');
  notes.push("Interrupts: the host posts one inspector message (`NodeWorker.sendMessageToWorker`, ~10 µs of the host's own time); V8 runs the serve function at the guest's next interrupt check.");
  return { name: 'Cross-thread apply latency', question: 'Host → busy guest in a worker → acknowledged, for a loaded 1-function patch. Targets: p50 ≤ 10 µs, p99 ≤ 100 µs.', rows, notes };
}
