// Mutation fuzzing of everything that reads untrusted bytes: Guest.load (patches) and
// Guest.instantiate (baselines). Every outcome must be a HotpatchError with a known code, or a
// correct accept; never another exception, never a hang; after every rejection the guest is
// byte-identical. A fast slice runs in the tests (fuzz.test.ts); `npm run fuzz` runs the full one,
// then prepare's differential fuzzer (fuzz-prepare.ts).
import { createHash } from 'node:crypto';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest, HotpatchError } from '../src/engine/index.js';
import { parseModule } from '../src/format/module.js';
import { prepare } from '../src/prepare/prepare.js';
import { caseKind, fuzzPrepare, type PrepareFuzzReport } from './fuzz-prepare.js';
import { rng } from './rng.js';

export { rng };

type Mutation = (bytes: Uint8Array, random: () => number) => Uint8Array;
const pick = <T>(xs: readonly T[], random: () => number): T => xs[Math.floor(random() * xs.length)]!;

/** Section boundaries of a module (best effort: mutated input may not parse). */
function sectionRanges(bytes: Uint8Array): { start: number; end: number }[] {
  try {
    return parseModule(bytes).sections.map((s) => ({ start: s.start, end: s.end }));
  } catch {
    return [];
  }
}

export const mutations: Record<string, Mutation> = {
  bitFlip: (b, r) => {
    if (b.length === 0) return b;
    const out = b.slice();
    const at = Math.floor(r() * out.length);
    out[at]! ^= 1 << Math.floor(r() * 8);
    return out;
  },
  byteSet: (b, r) => {
    if (b.length === 0) return b;
    const out = b.slice();
    out[Math.floor(r() * out.length)] = pick([0x00, 0x7f, 0x80, 0xff, Math.floor(r() * 256)], r);
    return out;
  },
  truncate: (b, r) => b.slice(0, Math.floor(r() * b.length)),
  insert: (b, r) => {
    const at = Math.floor(r() * b.length);
    const junk = Uint8Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256));
    return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
  },
  swapSections: (b, r) => {
    const s = sectionRanges(b);
    if (s.length < 2) return b;
    const i = Math.floor(r() * s.length);
    let j = Math.floor(r() * s.length);
    if (j === i) j = (j + 1) % s.length;
    const [x, y] = i < j ? [s[i]!, s[j]!] : [s[j]!, s[i]!];
    return Uint8Array.from([...b.subarray(0, x.start), ...b.subarray(y.start, y.end), ...b.subarray(x.end, y.start), ...b.subarray(x.start, x.end), ...b.subarray(y.end)]);
  },
  duplicateSection: (b, r) => {
    const s = sectionRanges(b);
    if (s.length === 0) return b;
    const x = pick(s, r);
    return Uint8Array.from([...b, ...b.subarray(x.start, x.end)]);
  },
  dropSection: (b, r) => {
    const s = sectionRanges(b);
    if (s.length === 0) return b;
    const x = pick(s, r);
    return Uint8Array.from([...b.subarray(0, x.start), ...b.subarray(x.end)]);
  },
  manifestEdit: (b, r) => {
    // Rewrite a value inside the JSON manifest text, keeping the section's length.
    const text = new TextDecoder('latin1').decode(b);
    const at = text.indexOf('"sequence":');
    if (at < 0) return b;
    const out = b.slice();
    const p = at + pick([1, 3, 11, 12], r);
    out[p] = pick([0x22, 0x7b, 0x7d, 0x30, 0x2d, 0x5b, 0x00], r);
    return out;
  },
  leb: (b, r) => {
    // Overlong or huge LEB128 at a random place.
    if (b.length < 6) return b;
    const out = b.slice();
    const at = Math.floor(r() * (out.length - 5));
    out.set(
      pick(
        [
          [0xff, 0xff, 0xff, 0xff, 0x0f],
          [0x80, 0x80, 0x80, 0x80, 0x80],
          [0xff, 0xff, 0xff, 0xff, 0x7f],
        ],
        r,
      ),
      at,
    );
    return out;
  },
};

/** Everything observable about a guest, to compare before and after a rejection. */
function snapshot(guest: Guest): string {
  const e = guest.exports as Record<string, any>;
  const table = e['hotpatch.table'] as WebAssembly.Table;
  const h = createHash('sha256');
  h.update(new Uint8Array((e.memory as WebAssembly.Memory).buffer));
  for (let i = 0; i < table.length; i++) h.update(String(table.get(i)?.name ?? 'null'));
  h.update(JSON.stringify(guest.status().functions));
  h.update(String((e['hotpatch.global.0'] as WebAssembly.Global).value));
  return h.digest('hex');
}

export interface FuzzReport {
  readonly cases: number;
  readonly rejected: number;
  readonly accepted: number;
  readonly codes: Record<string, number>;
  readonly failures: string[];
  readonly slowest: number;
}

const BASELINE_WAT = `(module
  (import "env" "log" (func $log (param i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 5))
  (table 2 funcref) (elem (i32.const 0) $a $b)
  (data (i32.const 64) "state")
  (func $a (export "a") (param i32) (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (i32.add (local.get 0) (i32.const 1)))
  (func $b (export "b") (param i32) (result i32) (call $log (local.get 0)) (call $a (local.get 0))))`;

/** Runs `cases` mutated patches and baselines from `seed`; returns what happened. */
export async function fuzz(cases: number, seed = 1): Promise<FuzzReport> {
  const baseline = await prepare(await watToWasm(BASELINE_WAT));
  const imports = { env: { log: () => {} } };
  const patches = [
    (
      await buildPatch({
        wat: '(module (func (export "a") (param i32) (result i32) (i32.const 7)))',
        manifest: { id: 'p1', sequence: 1, targets: [{ function: 'a', export: 'a' }] },
        baseline: baseline.bytes,
      })
    ).bytes,
    (
      await buildPatch({
        wat: `(module (import "baseline" "memory" (memory 1)) (import "baseline" "global:0" (global $g (mut i32))) (import "original" "b" (func $b (param i32) (result i32))) (import "live" "a" (func $a (param i32) (result i32)))
          (global $n (export "n") (mut i32) (i32.const 0))
          (func (export "b") (param i32) (result i32) (global.set $n (i32.add (global.get $n) (i32.const 1))) (i32.store (i32.const 64) (global.get $g)) (i32.add (call $b (local.get 0)) (call $a (local.get 0))))
          (func (export "hotpatch_pre_apply") (result i32) (i32.const 0)))`,
        manifest: { id: 'p2', sequence: 2, cumulative: true, targets: [{ function: 'b', export: 'b' }] },
        baseline: baseline.bytes,
      })
    ).bytes,
  ];
  const random = rng(seed);
  const names = Object.keys(mutations);
  const codes: Record<string, number> = {};
  const failures: string[] = [];
  let rejected = 0;
  let accepted = 0;
  let slowest = 0;
  let guest = await Guest.instantiate(baseline.bytes, imports);
  (guest.exports as any).b(3);
  for (let i = 0; i < cases; i++) {
    const caseSeed = Math.floor(random() * 2 ** 31);
    const r = rng(caseSeed);
    const onBaseline = r() < 0.1;
    const source = onBaseline ? baseline.bytes : pick(patches, r);
    let bytes = source;
    const applied: string[] = [];
    for (let k = 0, n = 1 + Math.floor(r() * 3); k < n; k++) {
      const m = pick(names, r);
      applied.push(m);
      bytes = mutations[m]!(bytes, r);
    }
    const label = `case ${i} (seed ${seed}, case seed ${caseSeed}, ${onBaseline ? 'baseline' : 'patch'}: ${applied.join('+')})`;
    const before = onBaseline ? '' : snapshot(guest);
    const t0 = performance.now();
    try {
      if (onBaseline) {
        await Guest.instantiate(bytes, imports);
      } else {
        const p = await guest.load(bytes);
        // A correct accept: it applies and reverts like any patch (hooks included).
        try {
          guest.apply(p);
          guest.revert(p);
        } catch (error) {
          if (!(error instanceof HotpatchError)) throw error;
        }
        guest.unload(p);
      }
      accepted++;
    } catch (error) {
      if (!(error instanceof HotpatchError) || error.code === 'E_INTERNAL') {
        failures.push(`${label}: threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
        guest = await Guest.instantiate(baseline.bytes, imports);
        continue;
      }
      rejected++;
      const code = error.problems[0]?.code ?? error.code;
      codes[code] = (codes[code] ?? 0) + 1;
      if (!onBaseline && snapshot(guest) !== before) {
        failures.push(`${label}: rejected with ${error.code} but the guest changed`);
        guest = await Guest.instantiate(baseline.bytes, imports);
      }
    }
    const took = performance.now() - t0;
    slowest = Math.max(slowest, took);
    if (took > 2000) failures.push(`${label}: took ${Math.round(took)} ms`);
  }
  return { cases, rejected, accepted, codes, failures, slowest };
}

/** The case seeds of a prepare fuzzing run: `cases` of them, from `seed`. */
export function prepareSeeds(cases: number, seed: number): number[] {
  const random = rng(seed);
  return Array.from({ length: cases }, () => Math.floor(random() * 2 ** 31));
}

function printPrepare(report: PrepareFuzzReport, seconds: number): void {
  console.log(JSON.stringify({ ...report, failures: report.failures.slice(0, 20), seconds }, null, 2));
  console.log(`prepare: ${report.compared} modules compared, ${report.failures.length} failures`);
}

// `npm run fuzz [cases] [seed]`: both fuzzers, full size (load: `cases` mutations, default 100,000;
// prepare: 200 modules). `npm run fuzz -- load|prepare [cases] [seed]`: one of them.
// `npm run fuzz -- prepare-case <case seed>`: replays one module of the prepare fuzzer.
if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const mode = args[0] === undefined || /^\d/.test(args[0]) ? 'all' : args.shift()!;
  const seed = Number(args[1] ?? Date.now() % 100_000);
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 1000);
  let failed = 0;
  if (mode === 'all' || mode === 'load') {
    const cases = Number(args[0] ?? 100_000);
    const report = await fuzz(cases, seed);
    console.log(JSON.stringify({ ...report, failures: report.failures.slice(0, 20), seconds: seconds() }, null, 2));
    console.log(`load: ${report.cases - report.failures.length} passed, ${report.failures.length} failed`);
    failed += report.failures.length;
  }
  if (mode === 'all' || mode === 'prepare' || mode === 'prepare-case') {
    const seeds = mode === 'prepare-case' ? [Number(args[0])] : prepareSeeds(mode === 'prepare' ? Number(args[0] ?? 200) : 200, seed);
    console.log(`prepare: seed ${seed}, ${seeds.length} modules (${seeds.filter((s) => caseKind(s) === 'eh').length} legacy exception handling)`);
    const report = await fuzzPrepare(seeds, (done, r) => {
      if (done % 10 === 0) console.error(`prepare: ${done}/${seeds.length} modules, ${r.failures.length} failures, ${seconds()} s`);
    });
    printPrepare(report, seconds());
    failed += report.failures.length;
  }
  if (!['all', 'load', 'prepare', 'prepare-case'].includes(mode)) {
    console.error(`unknown mode ${mode}: use load, prepare or prepare-case`);
    failed++;
  }
  process.exitCode = failed > 0 ? 1 : 0;
}
