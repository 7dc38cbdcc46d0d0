// Question: what do the testing helpers cost? Creating a JS replacement (target ≤ 20 µs), a call
// through it from inside the guest next to a call of a Wasm function (target ≤ 3×), and a spy.
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';
import { replace, spy } from '../src/testing/index.js';
import { compare, type Suite } from './_harness.js';

const CALLS = 10_000;

export default async function testing(): Promise<Suite> {
  const baseline = await prepare(
    await watToWasm(`(module
      (func $f (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
      (func (export "loop") (param $n i32) (result i32) (local $acc i32)
        (block $done (loop $next
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $acc (call $f (local.get $acc)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $next)))
        (local.get $acc)))`),
  );
  const make = async () => {
    const guest = await Guest.instantiate(baseline.bytes);
    return { guest, loop: guest.exports.loop as (n: number) => number };
  };
  const plain = await make();
  const wasmPatched = await make();
  const { bytes } = await buildPatch({
    wat: '(module (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))',
    manifest: { id: 'wasm', sequence: 1, targets: [{ function: 'f', export: 'f' }] },
    baseline: baseline.bytes,
  });
  wasmPatched.guest.apply(await wasmPatched.guest.load(bytes));
  const jsPatched = await make();
  replace(jsPatched.guest, 'f', (x: number) => x + 1);
  const spied = await make();
  const theSpy = spy(spied.guest, 'f');
  const creator = await make();

  const calls = await compare(`${CALLS.toLocaleString('en-US')} calls of a 2-instruction function from a Wasm loop`, {
    'unpatched Wasm function (reference)': { fn: () => plain.loop(CALLS) },
    'patched with a Wasm function': { fn: () => wasmPatched.loop(CALLS) },
    'replaced with a JS function': { fn: () => jsPatched.loop(CALLS) },
    'spied (JS wrapper over the original)': { fn: () => spied.loop(CALLS), afterEach: () => theSpy.reset() },
  });
  const creation = await compare('creating a replacement', {
    'table.set of one slot from JS (reference)': {
      fn: () => (creator.guest.exports['hotpatch.table'] as WebAssembly.Table).set(0, creator.guest.exports.f as Function),
    },
    'replace() then restore()': { fn: () => replace(creator.guest, 'f', (x: number) => x).restore() },
  });
  return {
    name: 'Testing helpers',
    question:
      'A JS replacement called from inside the guest, next to the same call into Wasm; and the cost of creating one. Targets: creation ≤ 20 µs; a call through a JS replacement ≤ 3× a call to a Wasm function.',
    rows: [...calls, ...creation],
    notes: [
      'Per call: divide the loop time by 10,000. The spy records every call (an object per call), so its cost includes the allocation.',
      'replace() includes building the adapter instance (one cached module per signature), the patch bookkeeping, and the table write; restore() reverts and unloads it.',
    ],
  };
}
