// The raw mechanism, for comparison: a busy worker loop that checks a flag in shared memory every
// `interval` iterations and, when set, does one table.set, then acknowledges. No engine, no protocol.
import { workerData } from 'node:worker_threads';
const { control, interval } = workerData;
const ctrl = new Int32Array(control);
const table = new WebAssembly.Table({ element: 'anyfunc', initial: 2 });
const { instance } = await WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 4, 1, 2, 0, 11]));
const f = instance.exports.f;
let acc = 0;
for (;;) {
  for (let i = 0; i < interval; i++) acc = (acc * 31 + i) | 0;
  const request = Atomics.load(ctrl, 0);
  if (request !== Atomics.load(ctrl, 1)) {
    if (request < 0) break;
    table.set(request & 1, f);
    Atomics.store(ctrl, 1, request);
    Atomics.notify(ctrl, 1);
  }
}
