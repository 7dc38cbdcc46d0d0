// One fresh process of the first-apply suite's worker case: a busy guest in a worker (the service
// loop of test/fixtures), reached by interrupts or at safepoints; the host times the first apply
// it ever sends, to the guest's acknowledgement, then warm ones. Prints one JSON line (µs).
import { readFileSync } from 'node:fs';
import { WorkerGuest } from '../src/runtime/index.js';

const [baselinePath, patchPath, reach] = process.argv.slice(2) as [string, string, 'interrupts' | 'safepoints'];
const us = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1000;
const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
for (let i = 0; i < 3; i++) us(process.hrtime.bigint());

const guest = await WorkerGuest.start(new Uint8Array(readFileSync(baselinePath)), {
  imports: new URL('../test/fixtures/service-loop-imports.mjs', import.meta.url),
  run: { export: 'serve', args: [-1] },
  spin: 100_000,
  interrupts: reach === 'interrupts',
});
const patch = await guest.load(new Uint8Array(readFileSync(patchPath)));
const out: Record<string, number> = {};
let t0 = process.hrtime.bigint();
const first = await guest.apply(patch.id);
out.firstApply = us(t0);
out.firstCommit = first.commit * 1000;
t0 = process.hrtime.bigint();
await guest.revert(patch.id);
out.firstRevert = us(t0);
const applies: number[] = [];
for (let i = 0; i < 100; i++) {
  t0 = process.hrtime.bigint();
  await guest.apply(patch.id);
  applies.push(us(t0));
  await guest.revert(patch.id);
}
out.warmApply = median(applies);
await guest.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
