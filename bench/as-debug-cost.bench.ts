// Question: what does AssemblyScript's --debug (which keeps the name section, so diff matches
// functions by name) cost on large programs, in bytes and in speed? Two programs at -O3, with and
// without --debug: a hand-written std-library-heavy log analytics service
// (bench/fixtures/as-analytics.ts: strings, Map and Set, sorting, number formatting and parsing,
// UTF-8, the GC) and a generated one reaching much of the standard library over every numeric type
// (_as-std-wide.ts). Speed side by side in one process, with a second instance of the release
// build as the A/A row.
import { readFileSync } from 'node:fs';
import { runAll, stdWideSource } from './_as-std-wide.js';
import type { Row, Suite } from './_harness.js';
import { interleave } from './_interleave.js';

async function compile(name: string, source: string, debug: boolean): Promise<Uint8Array<ArrayBuffer>> {
  const { default: asc } = await import('assemblyscript/asc');
  const result = await asc.compileString(source, { optimizeLevel: 3, shrinkLevel: 0, debug });
  if (result.error || !result.binary) throw new Error(`${name}: ${result.error?.message ?? 'no output'}\n${result.stderr.toString()}`);
  return new Uint8Array(result.binary);
}

/** A module's code section (its bytes), its function count and the size of its name section. */
function sections(bytes: Uint8Array): { code: Uint8Array; functions: number; names: number } {
  let at = 8;
  const leb = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]!;
      value |= (b & 0x7f) << shift;
      if (b < 0x80) return value >>> 0;
    }
  };
  const out: { code: Uint8Array; functions: number; names: number } = { code: new Uint8Array(), functions: 0, names: 0 };
  while (at < bytes.length) {
    const id = bytes[at++]!;
    const size = leb();
    const end = at + size;
    if (id === 10) out.code = bytes.subarray(at, end);
    if (id === 3) out.functions = leb();
    if (id === 0) {
      const nameLength = leb();
      if (new TextDecoder().decode(bytes.subarray(at, at + nameLength)) === 'name') out.names = size;
    }
    at = end;
  }
  return out;
}

const imports = () => ({
  env: {
    abort: () => {
      throw new Error('abort');
    },
    seed: () => 1,
  },
});

const PROGRAMS: readonly { name: string; source: () => string; run: (exports: WebAssembly.Exports) => number; call: string }[] = [
  {
    name: 'as-analytics (hand-written)',
    source: () => readFileSync(new URL('fixtures/as-analytics.ts', import.meta.url), 'utf8'),
    run: (e) => (e.run as (n: number) => number)(2000),
    call: 'run(2000)',
  },
  { name: 'std-wide (generated)', source: stdWideSource, run: (e) => runAll(e, 300), call: 'every export (300)' },
];

export default async function asDebugCost(): Promise<Suite> {
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const program of PROGRAMS) {
    const source = program.source();
    const [release, debug] = [await compile(program.name, source, false), await compile(program.name, source, true)];
    const instance = (bytes: Uint8Array<ArrayBuffer>) => new WebAssembly.Instance(new WebAssembly.Module(bytes), imports()).exports;
    const [a, aa, d] = [instance(release), instance(release), instance(debug)];
    if (program.run(a) !== program.run(d)) throw new Error(`${program.name}: the --debug build answers differently`);
    const size = (variant: string, bytes: number): Row => ({ case: `${program.name}: size`, variant, medianUs: 0, ratio: Number((bytes / release.length).toPrecision(3)), bytes });
    rows.push(
      size('-O3 (reference)', release.length),
      size('-O3 --debug', debug.length),
      ...interleave(
        `${program.name}: ${program.call}`,
        { '-O3 (reference)': () => program.run(a), '-O3, second instance (A/A)': () => program.run(aa), '-O3 --debug': () => program.run(d) },
        { rounds: 30, reps: 3, warmup: 10 },
      ),
    );
    const [r, g] = [sections(release), sections(debug)];
    notes.push(
      `${program.name}: ${source.split('\n').length} lines of source, ${r.functions} functions; code section ${r.code.length} bytes without --debug and ${g.code.length} with (${Buffer.from(r.code).equals(Buffer.from(g.code)) ? 'byte for byte the same code' : 'the code differs'}); the name section is ${g.names} bytes (${r.names} without): ${g.names + 6 >= debug.length - release.length ? 'all of the growth' : `of ${debug.length - release.length} bytes of growth`}.`,
    );
  }
  return {
    name: 'AssemblyScript --debug cost',
    question: "What AssemblyScript's --debug (the name section diff matches functions by) costs on large programs at -O3: bytes, and speed side by side in one process.",
    rows,
    notes: [
      ...notes,
      'Speed: interleaved rounds (every variant once per round, rotating order, minimum of 3 runs each); ratio is the median of per-round ratios to the reference (interquartile range in brackets), with the A/A row as the noise floor.',
    ],
  };
}
