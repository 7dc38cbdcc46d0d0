// Question: how much bigger is a baseline than the module it was prepared from, on real
// libraries? Each library prepared with derived originals (the default) and with embedded ones,
// next to the original (prepare's time is the prepare-time suite's question).
import { readFileSync } from 'node:fs';
import { prepare } from '../src/prepare/prepare.js';
import type { Row, Suite } from './_harness.js';
import { luaWasm, quickJsWasm } from './_interpreters.js';
import { brotliWasm, sqlJsWasm } from './_libraries.js';

const sqlite = (): Uint8Array => new Uint8Array(readFileSync(new URL('../patches/sqlite-fixes/sqlite.wasm', import.meta.url)));

const LIBRARIES: readonly [string, () => Uint8Array][] = [
  ['sql.js (emscripten)', sqlJsWasm],
  ['SQLite 3.53, emcc -O2, stripped (patches/sqlite-fixes)', sqlite],
  ['QuickJS (quickjs-emscripten)', quickJsWasm],
  ['Lua 5.4 (wasmoon, emscripten)', luaWasm],
  ['brotli-wasm (Rust, wasm-bindgen)', brotliWasm],
];

export default async function baselineSize(): Promise<Suite> {
  const rows: Row[] = [];
  for (const [name, read] of LIBRARIES) {
    const original = read();
    const at = (variant: string, bytes: number): Row => ({ case: name, variant, medianUs: 0, ratio: Number((bytes / original.length).toPrecision(3)), bytes });
    const derived = await prepare(original);
    const embedded = await prepare(original, { originals: 'embedded' });
    rows.push(at('original (reference)', original.length), at('baseline, originals derived (default)', derived.bytes.length), at('baseline, originals embedded', embedded.bytes.length));
  }
  return {
    name: 'Baseline size',
    question: 'Bytes of each baseline next to the module it was prepared from. Target: ≤ 1.10× on real libraries, with originals still available synchronously.',
    rows,
    notes: [
      "Derived originals: the engine rebuilds the originals module from the baseline's own bodies (entry check cut out) the first time one is needed; prepare checks the rebuild is byte-exact. Embedded: the same module, deflated, in a custom section (always so with safepoints or quiescent consistency).",
      'What remains per patchable function: the entry check (~20 bytes), its share of a flag global and of the flag setter (13 functions a global: ~1.5), its live entry (~2) and its manifest entry (compressed, ~1). Libraries of many small functions (sql.js: 1,968 functions, 350 bytes each on average) pay the most.',
    ],
  };
}
