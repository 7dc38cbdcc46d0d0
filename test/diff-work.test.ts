// How much decoding `diff` does on a real build, counted, not timed (issue 14): every instruction
// it reads goes through readInstruction, every body it re-encodes through relocateBody. Counted
// per instruction and per body of the two builds. Before issue 14 (main at c59b30e): lines added
// 2.86 instructions read and 2.7 bodies re-encoded per instruction / body, layout 6.65 and 3.73;
// after: 1.87 / 0.70 and 5.70 / 1.92. The bounds leave about 15% for changes elsewhere in diff.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';

const counts = vi.hoisted(() => ({ instructions: 0, relocated: 0 }));

vi.mock('../src/format/instructions.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/format/instructions.js')>();
  return {
    ...m,
    readInstruction: (...args: Parameters<typeof m.readInstruction>) => {
      counts.instructions++;
      m.readInstruction(...args);
    },
  };
});
vi.mock('../src/format/relocate.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../src/format/relocate.js')>();
  return {
    ...m,
    relocateBody: (...args: Parameters<typeof m.relocateBody>) => {
      counts.relocated++;
      return m.relocateBody(...args);
    },
  };
});

const { diffBuilds } = await import('../src/build/diff.js');
const { prepare } = await import('../src/prepare/prepare.js');
const { parseModule, forEachInstruction } = await import('../src/format/module.js');

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../patches/sqlite-fixes/${name}.wasm`, import.meta.url)));

/** Instructions and bodies in a build. */
function size(bytes: Uint8Array): { instructions: number; bodies: number } {
  const m = parseModule(bytes);
  let instructions = 0;
  for (const body of m.bodies) forEachInstruction(bytes, body, () => instructions++);
  return { instructions, bodies: m.bodies.length };
}

describe('diff on two 1 MB SQLite builds does bounded work', () => {
  let old: Uint8Array;
  let baseline: Awaited<ReturnType<typeof prepare>>['manifest'];
  beforeAll(async () => {
    old = fixture('sqlite');
    baseline = (await prepare(old)).manifest;
  });

  it.each([
    ['lines-added', 'line numbers moved in hundreds of functions, one function changed', 2.2, 0.85],
    ['layout', 'a struct field added: 370 functions differ', 6.5, 2.25],
  ] as const)('%s (%s)', async (fix, _what, perInstruction, perBody) => {
    const fresh = fixture(`sqlite-${fix}`);
    const a = size(old);
    const b = size(fresh);
    counts.instructions = 0;
    counts.relocated = 0;
    await diffBuilds(old, fresh, { baseline, id: fix });
    const work = { instructions: counts.instructions / (a.instructions + b.instructions), relocated: counts.relocated / (a.bodies + b.bodies) };
    expect(work.instructions).toBeLessThan(perInstruction);
    expect(work.relocated).toBeLessThan(perBody);
  });
});
