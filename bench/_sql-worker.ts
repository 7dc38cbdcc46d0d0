// A worker running sql.js with the given module bytes; each message runs the query workload
// `count` times and answers when done. For measuring a real library in a worker, with and
// without an inspector session attached for interrupts.
import { parentPort, workerData } from 'node:worker_threads';
import { sqlJs, sqlQuery } from './_libraries.js';

const query = sqlQuery(await sqlJs(workerData.wasm as Uint8Array));
parentPort!.on('message', (count: number) => {
  for (let i = 0; i < count; i++) query();
  parentPort!.postMessage(count);
});
parentPort!.postMessage('ready');
