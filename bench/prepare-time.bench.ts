// Question: how long does `prepare` take on real modules? Next to V8's own compile of the same bytes.
import { readFileSync } from 'node:fs';
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Row, type Suite } from './_harness.js';
import { brotliWasm, sqlJsWasm } from './_libraries.js';

export default async function prepareTime(): Promise<Suite> {
  const modules: [string, Uint8Array][] = [
    ['C workload (clang), 2 KB', new Uint8Array(readFileSync(new URL('../test/fixtures/c/workload.wasm', import.meta.url)))],
    ['sql.js (emscripten), 688 KB', sqlJsWasm()],
    ['brotli-wasm (Rust), 1.0 MB', brotliWasm()],
  ];
  const rows: Row[] = [];
  for (const [name, bytes] of modules) {
    rows.push(
      ...(await compare(
        name,
        {
          'WebAssembly.compile (reference)': { fn: () => WebAssembly.compile(bytes as BufferSource) },
          'prepare (entry)': { fn: () => prepare(bytes) },
          'prepare (indirect)': { fn: () => prepare(bytes, { dispatch: 'indirect' }) },
        },
        { rounds: 3, time: 400, iterations: 5 },
      )),
    );
  }
  return {
    name: 'prepare time',
    question: 'Wall time of `prepare` in one process, next to V8 compiling the same module (Liftoff, lazy tier-up). Target: a 1 MB module in under 1.5 s.',
    rows,
    notes: ['prepare includes validating its output with WebAssembly.validate, building and deflating the originals module, and hashing.'],
  };
}
