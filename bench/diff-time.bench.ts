// Question: how long does `diff` take on two real builds of about 1 MB? Next to V8 compiling one
// of them, and to `prepare` of the old one, in the same run. Target: under 2 s.
import { diffBuilds } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { compare, type Suite } from './_harness.js';
import { editOneConstant } from './_edit.js';
import { brotliWasm, sqlJsWasm } from './_libraries.js';

export default async function diffTime(): Promise<Suite> {
  const rows = [];
  for (const [name, old] of [['brotli-wasm (Rust), 1.0 MB, one function edited', brotliWasm()], ['sql.js (emscripten), 688 KB, one function edited', sqlJsWasm()]] as const) {
    const { bytes: fresh } = editOneConstant(old, 200);
    const baseline = await prepare(old);
    rows.push(
      ...(await compare(
        name,
        {
          'WebAssembly.compile (reference)': { fn: () => WebAssembly.compile(old as BufferSource) },
          'prepare(old)': { fn: () => prepare(old) },
          'diffBuilds(old, new)': { fn: () => diffBuilds(old, fresh, { baseline: baseline.manifest, id: 'bench' }) },
        },
        { rounds: 3, time: 1000, iterations: 3 },
      )),
    );
  }
  return {
    name: 'diff time',
    question: 'Wall time of `diffBuilds` on two real ~1 MB builds that differ in one function, in one process. Target: under 2 s.',
    rows,
    notes: ['sql.js has no name section: its 1,500 functions are matched by export name and structure.'],
  };
}
