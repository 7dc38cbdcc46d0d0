// Synthetic guests and patches of a chosen size for the engine benchmarks.
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';

/** A baseline of `count` small functions f0…f(count-1), each calling the next, with a memory of `pages`. */
export async function syntheticBaseline(count: number, pages = 16): Promise<Baseline> {
  const funcs = Array.from(
    { length: count },
    (_, i) => `(func $f${i} (export "f${i}") (param i32) (result i32) ${i + 1 < count && i % 10 !== 9 ? `(call $f${i + 1} (i32.add (local.get 0) (i32.const 1)))` : '(local.get 0)'})`,
  );
  return prepare(await watToWasm(`(module (memory (export "memory") ${pages}) ${funcs.join('\n')})`));
}

/** A patch replacing f0…f(k-1) of a synthetic baseline. */
export async function syntheticPatch(baseline: Baseline, k: number, id = `patch-${k}`): Promise<Uint8Array> {
  const funcs = Array.from({ length: k }, (_, i) => `(func (export "r${i}") (param i32) (result i32) (i32.add (local.get 0) (i32.const ${i})))`);
  const { bytes } = await buildPatch({
    wat: `(module ${funcs.join('\n')})`,
    manifest: { id, sequence: 1, targets: Array.from({ length: k }, (_, i) => ({ function: `f${i}`, export: `r${i}` })) },
    baseline: baseline.manifest,
  });
  return bytes;
}
