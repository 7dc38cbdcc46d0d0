// Question: what do safepoints cost a guest that is never patched? A baseline with loop
// safepoints next to the same baseline without, on call-heavy code and real libraries. Target ≤ 3%.
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { WorkerGuest } from '../src/runtime/index.js';
import { interruptible as interruptibleWorker } from '../src/runtime/interrupts.js';
import { compare, type Row, type Suite } from './_harness.js';
import { brotli, brotliWasm, C_CASES, cWorkload, sampleText, sqlJs, sqlJsWasm, sqlQuery } from './_libraries.js';

const workload = cWorkload();

async function variants(original: Uint8Array) {
  return {
    'prepared (reference)': (await prepare(original)).bytes,
    'prepared + loop safepoints': (await prepare(original, { safepoints: true })).bytes,
  };
}

/** Instantiates through the engine, so the safepoint handler is installed as a real runtime would. */
async function exportsOf(bytes: Uint8Array): Promise<Record<string, (...a: number[]) => number>> {
  const guest = await Guest.instantiate(bytes);
  if (guest.manifest.safepoints) guest.setSafepointHandler(() => {});
  return guest.exports as never;
}

export default async function safepointCost(): Promise<Suite> {
  const rows: Row[] = [];
  const c = await variants(workload);
  const inst = Object.fromEntries(await Promise.all(Object.entries(c).map(async ([k, b]) => [k, await exportsOf(b)] as const)));
  const each = (fn: (e: Record<string, (...a: number[]) => number>) => unknown) => Object.fromEntries(Object.entries(inst).map(([k, e]) => [k, { fn: () => fn(e) }]));
  for (const [name, run] of C_CASES) rows.push(...(await compare(name, each(run))));
  // The libraries run under their own glue, which knows nothing of handlers: the poll slot keeps
  // its no-op, which is what an unpatched guest pays.
  const sql = await variants(sqlJsWasm());
  rows.push(
    ...(await compare(
      'sql.js: GROUP BY query over 2000 rows (emscripten)',
      Object.fromEntries(await Promise.all(Object.entries(sql).map(async ([k, b]) => [k, { fn: sqlQuery(await sqlJs(b)) }] as const))),
    )),
  );
  const br = await variants(brotliWasm());
  const text = sampleText();
  rows.push(
    ...(await compare(
      'brotli-wasm: compress 64 KiB at quality 5 (Rust, wasm-bindgen)',
      Object.fromEntries(
        await Promise.all(
          Object.entries(br).map(
            async ([k, b]) =>
              [
                k,
                {
                  fn: (
                    (m) => () =>
                      m.compress(text, { quality: 5 })
                  )(await brotli(b)),
                },
              ] as const,
          ),
        ),
      ),
    )),
  );
  rows.push(...(await interrupts()));
  return {
    name: 'Cost of safepoints',
    question:
      'A baseline prepared with loop safepoints (a counter at every loop header, calling out every 1024 polls) next to the same baseline without; and a guest reached by interrupts (nothing inserted) in a worker next to the same guest in a worker nobody can interrupt. Target ≤ 3%.',
    rows,
    notes: [
      'Function-entry safepoints (`entries: true`) are for guests that recurse without loops; they are not the default and are not measured here.',
      'Interrupts add no code: the guest runs the prepared baseline byte for byte. What could cost is the inspector session attached to its worker, so the worker cases time one `WorkerGuest.call` of a few milliseconds of work each (sql.js: one message to a worker running it under its own glue), with and without it.',
    ],
  };
}

/** The same prepared baseline in two workers: one reached by interrupts, one not. */
async function interrupts(): Promise<Row[]> {
  const baseline = (await prepare(workload)).bytes;
  const plain = await WorkerGuest.start(baseline, { interrupts: false });
  const reached = await WorkerGuest.start(baseline, { interrupts: true });
  const rows: Row[] = [];
  const cases: [string, string, number[]][] = [
    ['in a worker: fib(30), recursive (C)', 'fib', [30]],
    ['in a worker: call loop, 4e6 calls of a 3-instruction function (C)', 'call_loop', [4_000_000]],
  ];
  for (const [name, fn, args] of cases) {
    rows.push(
      ...(await compare(
        name,
        {
          'worker (reference)': { fn: () => plain.call(fn, ...args) },
          'worker reached by interrupts (nothing inserted)': { fn: () => reached.call(fn, ...args) },
        },
        { iterations: 16 },
      )),
    );
  }
  await plain.close();
  await reached.close();
  rows.push(...(await sqlInWorkers()));
  return rows;
}

/** sql.js (with its own glue) in two workers, one of them attached for interrupts. */
async function sqlInWorkers(): Promise<Row[]> {
  const wasm = (await prepare(sqlJsWasm())).bytes;
  const script = new URL('./_sql-worker.ts', import.meta.url).href;
  const start = async (interruptible: boolean) => {
    const reach = interruptible ? interruptibleWorker() : undefined;
    // A worker does not inherit tsx: register it there first.
    const worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(script)}); })`, {
      eval: true,
      workerData: { wasm },
      ...(reach ? { name: reach.name } : {}),
    });
    await once(worker, 'message');
    const interrupter = await reach?.attached(worker, 10_000);
    return { worker, interrupter };
  };
  const plain = await start(false);
  const reached = await start(true);
  const run = (worker: Worker) => () => {
    worker.postMessage(20);
    return once(worker, 'message');
  };
  const rows = await compare(
    'in a worker: sql.js, 20 GROUP BY queries over 2000 rows (emscripten)',
    { 'worker (reference)': { fn: run(plain.worker) }, 'worker reached by interrupts (nothing inserted)': { fn: run(reached.worker) } },
    { iterations: 16 },
  );
  reached.interrupter?.close();
  await Promise.all([plain.worker.terminate(), reached.worker.terminate()]);
  return rows;
}
