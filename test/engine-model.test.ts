import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import { Guest, type HotpatchError } from '../src/engine/index.js';
import { prepare } from '../src/prepare/prepare.js';

// Patches of 8 or more targets commit through a generated committer module: the model covers both paths.
const FUNCTIONS = 12;
const BASELINE_WAT = `(module ${Array.from(
  { length: FUNCTIONS },
  (_, i) => `(func $f${i} (export "f${i}") (param i32) (result i32) (i32.add (local.get 0) (i32.const ${i})))`,
).join(' ')})`;

interface PatchSpec {
  targets: number[];
  cumulative: boolean;
  sequence: number;
}
type Op = { kind: 'apply' | 'revert'; patch: number; force: boolean };

/** The reference model: livepatch's per-function stacks, written as plainly as possible. */
class Model {
  stacks: number[][] = Array.from({ length: FUNCTIONS }, () => []);
  state = new Map<number, 'loaded' | 'applied' | 'reverted' | 'replaced'>();
  constructor(readonly specs: PatchSpec[]) {
    specs.forEach((_, i) => this.state.set(i, 'loaded'));
  }
  apply(p: number, force: boolean): string | undefined {
    if (this.state.get(p) === 'applied') return 'E_ALREADY_APPLIED';
    const spec = this.specs[p]!;
    const newer = [...this.state].some(([q, s]) => q !== p && s === 'applied' && this.specs[q]!.cumulative && this.specs[q]!.sequence > spec.sequence);
    if (newer && !force) return 'E_DOWNGRADE';
    if (spec.cumulative) {
      for (const [q, s] of this.state) if (s === 'applied') this.state.set(q, 'replaced');
      this.stacks = this.stacks.map(() => []);
    }
    for (const f of spec.targets) this.stacks[f]!.push(p);
    this.state.set(p, 'applied');
    return undefined;
  }
  revert(p: number): string | undefined {
    if (this.state.get(p) !== 'applied') return 'E_NOT_APPLIED';
    for (const stack of this.stacks) {
      const at = stack.lastIndexOf(p);
      if (at >= 0) stack.splice(at, 1);
    }
    this.state.set(p, 'reverted');
    return undefined;
  }
  expected(f: number, x: number): number {
    const top = this.stacks[f]!.at(-1);
    return top === undefined ? x + f : (top + 1) * 1000 + f;
  }
}

const specArb = fc.record({
  targets: fc.oneof(
    fc.uniqueArray(fc.integer({ min: 0, max: FUNCTIONS - 1 }), { minLength: 1, maxLength: 4 }),
    fc.uniqueArray(fc.integer({ min: 0, max: FUNCTIONS - 1 }), { minLength: 8, maxLength: FUNCTIONS }),
  ),
  cumulative: fc.boolean(),
  sequence: fc.integer({ min: 0, max: 5 }),
});

describe('apply / revert / cumulative sequences match the reference model', () => {
  it('for random sequences of operations', async () => {
    const baseline = await prepare(await watToWasm(BASELINE_WAT));
    await fc.assert(
      fc.asyncProperty(
        fc.array(specArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ kind: fc.constantFrom<'apply' | 'revert'>('apply', 'apply', 'revert'), patch: fc.nat(), force: fc.boolean() }), { maxLength: 30 }),
        async (specs, ops: Op[]) => {
          const guest = await Guest.instantiate(baseline.bytes);
          const e = guest.exports as Record<string, (x: number) => number>;
          const patches = [];
          for (const [p, spec] of specs.entries()) {
            const { bytes } = await buildPatch({
              wat: `(module ${spec.targets.map((f) => `(func (export "r${f}") (param i32) (result i32) (i32.const ${(p + 1) * 1000 + f}))`).join(' ')})`,
              manifest: { id: `p${p}`, sequence: spec.sequence, cumulative: spec.cumulative, targets: spec.targets.map((f) => ({ function: `f${f}`, export: `r${f}` })) },
              baseline: baseline.manifest,
            });
            patches.push(await guest.load(bytes, { force: true }));
          }
          const model = new Model(specs);
          for (const op of ops) {
            const p = op.patch % specs.length;
            const want = op.kind === 'apply' ? model.apply(p, op.force) : model.revert(p);
            let got: string | undefined;
            try {
              if (op.kind === 'apply') guest.apply(patches[p]!, { force: op.force });
              else guest.revert(patches[p]!);
            } catch (error) {
              got = (error as HotpatchError).code;
            }
            expect(got).toBe(want);
            for (let f = 0; f < FUNCTIONS; f++) expect(e[`f${f}`]!(7)).toBe(model.expected(f, 7));
            for (const [q, state] of model.state) expect(patches[q]!.state).toBe(state);
            const owners = guest.status().functions.map((x) => [x.function, x.stack]);
            const modelOwners = model.stacks.flatMap((s, f) => (s.length ? [[`f${f}`, s.map((q) => `p${q}`)]] : []));
            expect(owners).toEqual(modelOwners);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
