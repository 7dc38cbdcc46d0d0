// One fresh process of the first-apply suite: times the first write of a slot, then warm ones,
// either raw (`table.set` from JS) or through the engine. Prints one JSON line, in microseconds.
import { readFileSync } from 'node:fs';
import { Guest, type GuestEvent } from '../src/engine/index.js';

const [baselinePath, patchPath, mode] = process.argv.slice(2);
const WARM = 200;
const baseline = new Uint8Array(readFileSync(baselinePath!));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function raw(): Promise<{ first: number; warm: number }> {
  const { instance } = await WebAssembly.instantiate(baseline);
  const table = instance.exports['hotpatch.table'] as WebAssembly.Table;
  const other = await WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 6, 1, 4, 0, 32, 0, 11]));
  const values = [(other.instance.exports as { f: Function }).f, table.get(0)];
  let t = performance.now();
  table.set(0, values[0]);
  const first = performance.now() - t;
  const warm: number[] = [];
  for (let i = 1; i <= WARM; i++) {
    t = performance.now();
    table.set(0, values[i % 2]);
    warm.push(performance.now() - t);
  }
  return { first: first * 1000, warm: median(warm) * 1000 };
}

async function engine(): Promise<{ first: number; warm: number; firstCommit: number; warmCommit: number }> {
  const guest = await Guest.instantiate(baseline);
  const patch = await guest.load(new Uint8Array(readFileSync(patchPath!)));
  const commits: number[] = [];
  guest.addEventListener('applied', (e) => commits.push((e as GuestEvent).commit!));
  let t = performance.now();
  guest.apply(patch);
  const first = performance.now() - t;
  const warm: number[] = [];
  for (let i = 0; i < WARM; i++) {
    guest.revert(patch);
    t = performance.now();
    guest.apply(patch);
    warm.push(performance.now() - t);
  }
  return { first: first * 1000, warm: median(warm) * 1000, firstCommit: commits[0]! * 1000, warmCommit: median(commits.slice(1)) * 1000 };
}

process.stdout.write(`${JSON.stringify(mode === 'raw' ? await raw() : await engine())}\n`);
