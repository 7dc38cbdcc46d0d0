// Question: how long from patch bytes to a loaded (ready to apply) patch? guest.load next to a
// raw WebAssembly.compile + instantiate of the same bytes, in the same run.
import { Guest } from '../src/engine/index.js';
import { compare, type Row, type Suite } from './_harness.js';
import { syntheticBaseline, syntheticPatch } from './_guests.js';

export default async function loadLatency(): Promise<Suite> {
  const baseline = await syntheticBaseline(1000);
  const guest = await Guest.instantiate(baseline.bytes);
  const rows: Row[] = [];
  for (const k of [1, 10, 100]) {
    const bytes = await syntheticPatch(baseline, k);
    rows.push(
      ...(await compare(`${k}-function patch (${bytes.length} bytes)`, {
        'compile + instantiate (reference)': { fn: async () => WebAssembly.instantiate(await WebAssembly.compile(bytes as BufferSource)) },
        'guest.load(bytes)': { fn: async () => guest.unload(await guest.load(bytes)) },
      })),
    );
  }
  return {
    name: 'Load latency: bytes to ready',
    question: 'guest.load (parse, validate against the baseline, compile, instantiate, prepare the commit) next to raw compile + instantiate of the same bytes. Target ≤ 2×.',
    rows,
    notes: ['Patches of 8 or more functions also get a committer module at load, which makes their apply one call from JS.'],
  };
}
