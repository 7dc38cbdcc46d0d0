// Soak: many apply / revert / cumulative cycles while the account service serves traffic, with its
// invariants checked after every step. `npm run soak [cycles] [seed]`; a slice runs in the tests.
import { readFileSync } from 'node:fs';
import { buildPatch } from '../src/build/build.js';
import { Guest, HotpatchError, type Patch } from '../src/engine/index.js';
import { rng } from './fuzz.js';

const here = (p: string) => new URL(`../patches/account-service/${p}`, import.meta.url);

export interface SoakReport {
  readonly cycles: number;
  readonly requests: number;
  readonly violations: string[];
  readonly rss: { startMB: number; endMB: number };
  readonly seconds: number;
}

export async function soak(cycles: number, seed = 1): Promise<SoakReport> {
  const started = performance.now();
  const baseline = new Uint8Array(readFileSync(here('service.baseline.wasm')));
  const guest = await Guest.instantiate(baseline);
  const e = guest.exports as Record<string, (...a: number[]) => number>;
  e.init!();
  const fixWat = (
    await buildPatch({
      wasm: new Uint8Array(readFileSync(here('fix-name-overflow.patch.wasm'))),
      manifest: { id: 'wat-fix', sequence: 1, targets: [{ function: 'set_name', export: 'set_name' }] },
      baseline,
    })
  ).bytes;
  const fixC = new Uint8Array(readFileSync(here('fix-name-overflow-c.patch.wasm')));
  const cumulative = (
    await buildPatch({
      wasm: new Uint8Array(readFileSync(here('fix-name-overflow.patch.wasm'))),
      manifest: { id: 'cumulative', sequence: 3, cumulative: true, targets: [{ function: 'set_name', export: 'set_name' }] },
      baseline,
    })
  ).bytes;
  const patches: Patch[] = [await guest.load(fixWat), await guest.load(fixC), await guest.load(cumulative, { force: true })];
  const random = rng(seed);
  const violations: string[] = [];
  const rssStart = process.memoryUsage().rss;
  let requests = 0;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const p = patches[Math.floor(random() * patches.length)]!;
    try {
      if (p.state === 'applied') guest.revert(p);
      else guest.apply(p, { force: true });
    } catch (error) {
      if (!(error instanceof HotpatchError)) throw error;
      violations.push(`cycle ${cycle}: ${error.code} ${error.message}`);
    }
    // Every function's owner must be the newest applied patch that targets it.
    const owners = guest.status().functions;
    const fixed = owners.some((f) => f.function === 'set_name');
    const expected = patches.filter((q) => q.state === 'applied').length > 0;
    if (fixed !== expected) violations.push(`cycle ${cycle}: set_name patched=${fixed}, but ${expected ? 'a' : 'no'} patch is applied`);
    const escalations = e.escalations!();
    e.simulate!(400);
    requests += 400;
    if (fixed && e.escalations!() !== escalations) violations.push(`cycle ${cycle}: an escalation while patched`);
    if (e.bank_ok!() !== 1) violations.push(`cycle ${cycle}: the bank no longer balances`);
    if (e.in_flight!() !== 0) violations.push(`cycle ${cycle}: a request in flight between requests`);
    if (violations.length > 20) break;
  }
  return {
    cycles,
    requests,
    violations,
    rss: { startMB: Math.round(rssStart / 2 ** 20), endMB: Math.round(process.memoryUsage().rss / 2 ** 20) },
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const report = await soak(Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 1));
  console.log(JSON.stringify(report, null, 2));
  console.log(`${report.violations.length === 0 ? 1 : 0} passed, ${report.violations.length === 0 ? 0 : 1} failed`);
  process.exitCode = report.violations.length === 0 ? 0 : 1;
}
