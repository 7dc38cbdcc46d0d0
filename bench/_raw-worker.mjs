// The raw mechanisms, for comparison: a busy worker loop, no engine, no protocol.
// - `interval` set: it checks a flag in shared memory every `interval` iterations and, when set,
//   does one table.set, then acknowledges.
// - `interval` 0: it never checks; the host reaches it by an inspector interrupt (the engine's
//   `interruptible`), which runs the same table.set and acknowledgement.
import { workerData } from 'node:worker_threads';
const { control, interval, interruptKey } = workerData;
const ctrl = new Int32Array(control);
const table = new WebAssembly.Table({ element: 'anyfunc', initial: 2 });
const { instance } = await WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 4, 1, 2, 0, 11]));
const f = instance.exports.f;
const serve = () => {
  const request = Atomics.load(ctrl, 0);
  if (request === Atomics.load(ctrl, 1)) return false;
  if (request < 0) return true;
  table.set(request & 1, f);
  Atomics.store(ctrl, 1, request);
  Atomics.notify(ctrl, 1);
  return false;
};
globalThis[Symbol.for(interruptKey)] = serve;
let acc = 0;
for (;;) {
  for (let i = 0; i < (interval || 1024); i++) acc = (acc * 31 + i) | 0;
  if (interval > 0 && serve()) break;
} // interval 0: ends when the host terminates the worker
