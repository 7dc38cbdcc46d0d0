// One fresh process of the first-apply benchmark: a real baseline under its own glue, a loaded
// patch, then the first apply and revert, warm ones, and a raw `table.set` on a second instance of
// the same baseline (first and warm) in the same process. Prints one JSON line.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Guest } from '../src/engine/index.js';

const [baselinePath, patchPath, order] = process.argv.slice(2) as [string, string, 'engine-first' | 'raw-first'];
const require = createRequire(import.meta.url);
const bytes = new Uint8Array(readFileSync(baselinePath));
const patchBytes = new Uint8Array(readFileSync(patchPath));
const us = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1000;

/** A fresh copy of sql.js's emscripten glue running the baseline; resolves to the adopted guest. */
async function start(): Promise<Guest> {
  const path = require.resolve('sql.js/dist/sql-wasm.js');
  delete require.cache[path];
  let guest: Guest | undefined;
  await (require(path) as (c: object) => Promise<unknown>)({
    wasmBinary: bytes,
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
      void WebAssembly.instantiate(bytes as BufferSource, imports).then(({ instance, module }) => {
        guest = Guest.adopt(instance, module);
        done(instance, module);
      });
      return {};
    },
  });
  return guest!;
}

const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
// The timer's own first calls (BigInt arithmetic, the conversion) must not land in the first sample.
for (let i = 0; i < 3; i++) us(process.hrtime.bigint());

const guest = await start();
const other = await start();
const patch = await guest.load(patchBytes);
const spare = await other.load(patchBytes);
const slot = other.manifest.functions.find((f) => f.name === spare.targets[0])!.slot!;
const table = other.exports[other.manifest.table] as WebAssembly.Table;
const replacement = spare.instance.exports[spare.manifest.targets[0]!.export];
const unpatched = table.get(slot);

const out: Record<string, number> = {};
const engine = (): void => {
  let t0 = process.hrtime.bigint();
  guest.apply(patch);
  out.firstApply = us(t0);
  out.firstCommit = guest.lastCommit * 1000;
  t0 = process.hrtime.bigint();
  guest.revert(patch);
  out.firstRevert = us(t0);
  const applies: number[] = [];
  const reverts: number[] = [];
  for (let i = 0; i < 200; i++) {
    t0 = process.hrtime.bigint();
    guest.apply(patch);
    applies.push(us(t0));
    t0 = process.hrtime.bigint();
    guest.revert(patch);
    reverts.push(us(t0));
  }
  out.warmApply = median(applies);
  out.warmRevert = median(reverts);
};
const raw = (): void => {
  const t0 = process.hrtime.bigint();
  table.set(slot, replacement);
  out.rawFirstSet = us(t0);
  table.set(slot, unpatched);
  const sets: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t1 = process.hrtime.bigint();
    table.set(slot, i % 2 ? unpatched : replacement);
    sets.push(us(t1));
  }
  table.set(slot, unpatched);
  out.rawWarmSet = median(sets);
};
if (order === 'raw-first') {
  raw();
  engine();
} else {
  engine();
  raw();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
