// Question: what does a hotpatch save over the cheapest restart that keeps state? On a guest of
// about 1000 functions with 1 MiB of memory: apply a loaded 1-function patch, next to instantiating
// the (already compiled) baseline again and copying its memory over.
import { Guest } from '../src/engine/index.js';
import { compare, type Suite } from './_harness.js';
import { syntheticBaseline, syntheticPatch } from './_guests.js';

export default async function restart(): Promise<Suite> {
  const baseline = await syntheticBaseline(1000, 16);
  const guest = await Guest.instantiate(baseline.bytes);
  const patch = await guest.load(await syntheticPatch(baseline, 1));
  const module = guest.module;
  const memory = guest.exports.memory as WebAssembly.Memory;
  new Uint8Array(memory.buffer).fill(7);
  const rows = await compare('1000-function guest, 1 MiB memory', {
    'restart: instantiate + copy memory (reference)': {
      fn: () => {
        const fresh = new WebAssembly.Instance(module, {});
        new Uint8Array((fresh.exports.memory as WebAssembly.Memory).buffer).set(new Uint8Array(memory.buffer));
      },
    },
    'hotpatch: guest.apply(patch)': {
      fn: () => guest.apply(patch),
      beforeEach: () => {
        if (patch.state === 'applied') guest.revert(patch);
      },
    },
  });
  return {
    name: 'Hotpatch vs restart',
    question: 'The cheapest restart that keeps state (new instance of the compiled baseline, memory copied) next to applying a loaded patch. Ratio < 1 means the hotpatch is faster.',
    rows,
    notes: ['A real restart also loses what lives outside linear memory (globals, tables, host objects) and drops in-flight requests; the hotpatch keeps all of it.'],
  };
}
