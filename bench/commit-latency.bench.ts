// Question: how long is the guest paused by `apply`? A loaded patch of k functions, applied (and
// reverted after each sample), next to a raw `table.set` loop over the same slots in the same run.
import { Guest } from '../src/engine/index.js';
import { compare, quick, type Row, type Suite } from './_harness.js';
import { syntheticBaseline, syntheticPatch } from './_guests.js';

export default async function commitLatency(): Promise<Suite> {
  const sizes = quick ? [1, 100, 1000] : [1, 10, 100, 1000, 10000];
  const baseline = await syntheticBaseline(Math.max(...sizes));
  const rows: Row[] = [];
  for (const k of sizes) {
    const guest = await Guest.instantiate(baseline.bytes);
    const patch = await guest.load(await syntheticPatch(baseline, k));
    const table = guest.exports['hotpatch.table'] as WebAssembly.Table;
    const refs = Array.from({ length: k }, (_, i) => patch.instance.exports[`r${i}`]);
    const originals = Array.from({ length: k }, (_, i) => table.get(i));
    rows.push(
      ...(await compare(`${k} function${k === 1 ? '' : 's'}`, {
        'raw table.set loop (reference)': {
          fn: () => {
            for (let i = 0; i < k; i++) table.set(i, refs[i]);
          },
          afterEach: () => {
            for (let i = 0; i < k; i++) table.set(i, originals[i]);
          },
        },
        // Hooks put the patch in the state the timed call needs, whatever the previous sample left.
        'guest.apply(patch)': {
          fn: () => guest.apply(patch),
          beforeEach: () => {
            if (patch.state === 'applied') guest.revert(patch);
          },
        },
        'guest.revert(patch)': {
          fn: () => guest.revert(patch),
          beforeEach: () => {
            if (patch.state !== 'applied') guest.apply(patch);
          },
        },
      })),
    );
  }
  return {
    name: 'Commit latency: the pause the guest sees',
    question:
      'apply / revert of an already loaded patch of k functions, next to a raw `table.set` loop over the same slots. Targets: ≤ 1 µs for one function; from 100 functions up, ≤ 1.5× the raw loop.',
    rows,
    notes: [
      "apply writes each slot through the baseline's exported setter (one Wasm call: `table.set` and the slot's patched flag), then updates the stacks and dispatches an event.",
      'The raw loop only writes the table; it would not divert entry-dispatch calls, which also need the flag.',
    ],
  };
}
