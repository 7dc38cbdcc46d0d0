// The engine's invariant as a model: random sequences of operations on a guest, checked after
// every step against livepatch's per-function stacks written as plainly as possible. Written
// against the contract (`HotpatchGuest`), so every kind of guest runs it; stubs and spies are
// in-thread extras a subject may offer.
import fc from 'fast-check';
import { expect } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { watToWasm } from '../src/build/wat.js';
import type { GuestEvent, HotpatchGuest } from '../src/engine/index.js';
import { type Baseline, prepare } from '../src/prepare/prepare.js';

/** Baseline functions `f<i>(x) = x + i`; patches of 8 or more targets commit through the committer. */
export const FUNCTIONS = 12;
/** Every patch's code traps on this argument: a watched patch that runs it is rolled back. */
export const TRAP_INPUT = 13;

const BASELINE_WAT = `(module ${Array.from({ length: FUNCTIONS }, (_, i) => `(func $f${i} (export "f${i}") (param i32) (result i32) (i32.add (local.get 0) (i32.const ${i})))`).join(' ')})`;

/** The pool of patches a run draws from; `hook` patches refuse (veto) or trap in their pre-apply hook. */
interface Spec {
  readonly targets: readonly number[];
  readonly cumulative: boolean;
  readonly sequence: number;
  readonly hook?: 'veto' | 'trap';
}
const POOL: readonly Spec[] = [
  { targets: [0], cumulative: false, sequence: 1 },
  { targets: [0, 1], cumulative: false, sequence: 2 },
  { targets: [1, 2, 3], cumulative: false, sequence: 3 },
  { targets: [0, 1, 2, 3, 4, 5, 6, 7, 8], cumulative: false, sequence: 4 },
  { targets: [3, 4, 5, 6, 7, 8, 9, 10, 11], cumulative: false, sequence: 2 },
  { targets: [2], cumulative: true, sequence: 5 },
  { targets: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], cumulative: true, sequence: 6 },
  { targets: [5, 6], cumulative: true, sequence: 3 },
  { targets: [4], cumulative: false, sequence: 7, hook: 'veto' },
  { targets: [9], cumulative: false, sequence: 7, hook: 'trap' },
];

const value = (k: number, f: number): number => (k + 1) * 1000 + f;

/** A guest under the model, and what it offers beyond the contract. */
export interface Subject {
  readonly guest: HotpatchGuest;
  /** A test stub making `f<f>` answer `value` (in-thread: testing's `replace`); its patch id. */
  replace?(f: number, value: number): string;
  /** A spy on `f<f>` that passes calls through to what is below it; its patch id. */
  spy?(f: number): string;
  /** The guest's own `lastCommit`, where it has one. */
  lastCommit?(): number;
}

/** One step of a run. */
export type Op =
  | { op: 'load'; k: number; force: boolean }
  | { op: 'apply'; k: number; force: boolean; watch: boolean }
  | { op: 'revert'; k: number }
  | { op: 'unload'; k: number }
  | { op: 'trap'; f: number }
  | { op: 'fail' }
  | { op: 'replace'; f: number; value: number }
  | { op: 'spy'; f: number }
  | { op: 'unstub'; nth: number };

type State = 'loaded' | 'applied' | 'reverted' | 'replaced' | 'rolled-back';
type Entry = { id: string; kind: 'patch'; k: number } | { id: string; kind: 'stub'; value: number } | { id: string; kind: 'spy' };

/** The reference: per-function stacks of entries (bottom first), states, and which patches are watched. */
class Model {
  stacks: Entry[][] = Array.from({ length: FUNCTIONS }, () => []);
  readonly state = new Map<string, State>();
  readonly watched = new Set<string>();
  readonly stubs: string[] = [];

  loadError(k: number, force: boolean): string | undefined {
    const s = this.state.get(`p${k}`);
    if (s === 'loaded' || s === 'applied') return 'E_PATCH_REJECTED';
    return this.downgrades(POOL[k]!.sequence, `p${k}`) && !force ? 'E_PATCH_REJECTED' : undefined;
  }

  downgrades(sequence: number, id: string): boolean {
    return [...this.state].some(([q, s]) => q !== id && s === 'applied' && q.startsWith('p') && POOL[Number(q.slice(1))]!.cumulative && POOL[Number(q.slice(1))]!.sequence > sequence);
  }

  applyError(k: number, force: boolean): string | undefined {
    const id = `p${k}`;
    const s = this.state.get(id);
    if (s === undefined) return 'E_UNKNOWN_PATCH';
    if (s === 'applied') return 'E_ALREADY_APPLIED';
    if (this.downgrades(POOL[k]!.sequence, id) && !force) return 'E_DOWNGRADE';
    const hook = POOL[k]!.hook;
    if (hook === 'trap') this.state.set(id, 'rolled-back');
    return hook === 'veto' ? 'E_VETOED' : hook === 'trap' ? 'E_HOOK_TRAPPED' : undefined;
  }

  push(entry: Entry, targets: readonly number[], cumulative: boolean): void {
    if (cumulative) {
      for (const [q, s] of this.state) if (s === 'applied') this.state.set(q, 'replaced');
      this.stacks = this.stacks.map(() => []);
      this.watched.clear();
    }
    for (const f of targets) this.stacks[f]!.push(entry);
    this.state.set(entry.id, 'applied');
  }

  remove(id: string, state: State): void {
    for (const stack of this.stacks) {
      const at = stack.findIndex((e) => e.id === id);
      if (at >= 0) stack.splice(at, 1);
    }
    this.state.set(id, state);
    this.watched.delete(id);
  }

  /** What `f<f>(x)` does: a value, or a trap (and the watched patch it rolls back). */
  call(f: number, x: number): { value?: number; rollsBack?: string } {
    const stack = this.stacks[f]!;
    for (let i = stack.length - 1; i >= 0; i--) {
      const e = stack[i]!;
      if (e.kind === 'spy') continue; // passes through to what is below it
      if (e.kind === 'stub') return { value: e.value };
      if (x !== TRAP_INPUT) return { value: value(e.k, f) };
      return this.watched.has(e.id) ? { rollsBack: e.id } : {};
    }
    return { value: x + f };
  }
}

/** Builds the baseline and the pool's patch bytes once per dispatch mode. */
export async function modelFixture(dispatch: 'entry' | 'indirect'): Promise<{ baseline: Baseline; pool: Uint8Array[]; broken: Uint8Array }> {
  const baseline = await prepare(await watToWasm(BASELINE_WAT), { dispatch });
  const pool = await Promise.all(
    POOL.map(async (spec, k) => {
      const fns = spec.targets.map((f) => `(func (export "r${f}") (param i32) (result i32) (if (i32.eq (local.get 0) (i32.const ${TRAP_INPUT})) (then unreachable)) (i32.const ${value(k, f)}))`);
      const hook = spec.hook === 'veto' ? '(func (export "hotpatch_pre_apply") (result i32) (i32.const 1))' : spec.hook === 'trap' ? '(func (export "hotpatch_pre_apply") (result i32) unreachable)' : '';
      const manifest = { id: `p${k}`, sequence: spec.sequence, cumulative: spec.cumulative, targets: spec.targets.map((f) => ({ function: `f${f}`, export: `r${f}` })) };
      return (await buildPatch({ wat: `(module ${fns.join(' ')} ${hook})`, manifest, baseline: baseline.manifest })).bytes;
    }),
  );
  return { baseline, pool, broken: pool[0]!.slice(0, pool[0]!.length - 9) };
}

/** Random operations; `extras` adds stubs and spies for subjects that have them. */
export function opsArb(extras: boolean, length: number): fc.Arbitrary<Op[]> {
  const k = fc.integer({ min: 0, max: POOL.length - 1 });
  const f = fc.integer({ min: 0, max: FUNCTIONS - 1 });
  const ops: fc.Arbitrary<Op>[] = [
    fc.record({ op: fc.constant('load' as const), k, force: fc.boolean() }),
    fc.record({ op: fc.constant('apply' as const), k, force: fc.boolean(), watch: fc.boolean() }),
    fc.record({ op: fc.constant('apply' as const), k, force: fc.boolean(), watch: fc.boolean() }),
    fc.record({ op: fc.constant('revert' as const), k }),
    fc.record({ op: fc.constant('unload' as const), k }),
    fc.record({ op: fc.constant('trap' as const), f }),
    fc.constant({ op: 'fail' as const }),
  ];
  if (extras) {
    ops.push(fc.record({ op: fc.constant('replace' as const), f, value: fc.integer({ min: -50, max: -1 }) }));
    ops.push(fc.record({ op: fc.constant('spy' as const), f }));
    ops.push(fc.record({ op: fc.constant('unstub' as const), nth: fc.nat() }));
  }
  return fc.array(fc.oneof(...ops), { minLength: length, maxLength: length });
}

async function codeOf(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? 'trap';
  }
}

/** Runs one sequence on a fresh subject and checks every step; answers how many steps ran. */
export async function runModel(subject: Subject, pool: readonly Uint8Array[], broken: Uint8Array, ops: readonly Op[]): Promise<number> {
  const { guest } = subject;
  const model = new Model();
  let lastEvent: { type: string; commit: number } | undefined;
  const onCommit = (event: GuestEvent): void => {
    expect(event.commit, `${event.type} carries its commit`).toBeTypeOf('number');
    lastEvent = { type: event.type, commit: event.commit! };
  };
  guest.addEventListener('applied', onCommit);
  guest.addEventListener('reverted', onCommit);
  guest.addEventListener('rolled-back', (event) => {
    if (event.commit !== undefined) onCommit(event);
  });
  for (const step of ops) {
    await runStep(subject, model, pool, broken, step, () => lastEvent);
    await check(subject, model, () => lastEvent, step);
  }
  return ops.length;
}

async function runStep(subject: Subject, model: Model, pool: readonly Uint8Array[], broken: Uint8Array, step: Op, last: () => { commit: number } | undefined): Promise<void> {
  const { guest } = subject;
  switch (step.op) {
    case 'load': {
      const want = model.loadError(step.k, step.force);
      expect(await codeOf(() => guest.load(pool[step.k]!, { force: step.force })), JSON.stringify(step)).toBe(want);
      if (!want) model.state.set(`p${step.k}`, 'loaded');
      return;
    }
    case 'apply': {
      const want = model.applyError(step.k, step.force);
      let result: { commit: number; state: string } | undefined;
      const got = await codeOf(async () => (result = await guest.apply(`p${step.k}`, { force: step.force, ...(step.watch ? { watch: { traps: 1 } } : {}) })));
      expect(got, JSON.stringify(step)).toBe(want);
      if (want) return;
      model.push({ id: `p${step.k}`, kind: 'patch', k: step.k }, POOL[step.k]!.targets, POOL[step.k]!.cumulative);
      if (step.watch) model.watched.add(`p${step.k}`);
      expect(result).toMatchObject({ state: 'applied', commit: last()!.commit });
      return;
    }
    case 'revert': {
      const s = model.state.get(`p${step.k}`);
      const want = s === undefined ? 'E_UNKNOWN_PATCH' : s !== 'applied' ? 'E_NOT_APPLIED' : undefined;
      let result: { commit: number; state: string } | undefined;
      expect(await codeOf(async () => (result = await guest.revert(`p${step.k}`))), JSON.stringify(step)).toBe(want);
      if (want) return;
      model.remove(`p${step.k}`, 'reverted');
      expect(result).toMatchObject({ state: 'reverted', commit: last()!.commit });
      return;
    }
    case 'unload': {
      const s = model.state.get(`p${step.k}`);
      const want = s === undefined ? 'E_UNKNOWN_PATCH' : s === 'applied' ? 'E_ALREADY_APPLIED' : undefined;
      expect(await codeOf(() => guest.unload(`p${step.k}`)), JSON.stringify(step)).toBe(want);
      if (!want) model.state.delete(`p${step.k}`);
      return;
    }
    case 'trap': {
      const want = model.call(step.f, TRAP_INPUT);
      const got = await codeOf(() => guest.call(`f${step.f}`, TRAP_INPUT));
      expect(got, JSON.stringify(step)).toBe(want.value === undefined ? 'trap' : undefined);
      if (want.rollsBack) model.remove(want.rollsBack, 'rolled-back');
      return;
    }
    case 'fail':
      expect(await codeOf(() => guest.load(broken))).toBe('E_PATCH_REJECTED');
      return;
    case 'replace':
    case 'spy': {
      const id = step.op === 'replace' ? subject.replace!(step.f, step.value) : subject.spy!(step.f);
      model.push(step.op === 'replace' ? { id, kind: 'stub', value: step.value } : { id, kind: 'spy' }, [step.f], false);
      model.stubs.push(id);
      return;
    }
    case 'unstub': {
      if (model.stubs.length === 0) return;
      const id = model.stubs.splice(step.nth % model.stubs.length, 1)[0]!;
      const want = model.state.get(id) === 'applied' ? undefined : 'E_NOT_APPLIED';
      expect(await codeOf(() => guest.revert(id)), JSON.stringify(step)).toBe(want);
      if (!want) model.remove(id, 'reverted');
      return;
    }
    default:
      step satisfies never;
  }
}

async function check(subject: Subject, model: Model, last: () => { commit: number } | undefined, step: Op): Promise<void> {
  const { guest } = subject;
  const after = `after ${JSON.stringify(step)}`;
  for (let f = 0; f < FUNCTIONS; f++) {
    const got = await guest.call(`f${f}`, 7);
    if (got !== model.call(f, 7).value) expect(got, `f${f} ${after}`).toBe(model.call(f, 7).value);
  }
  const status = await guest.status();
  const stacks = status.functions.map((x) => [x.function, x.stack]);
  expect(stacks, `stacks ${after}`).toEqual(model.stacks.flatMap((s, f) => (s.length ? [[`f${f}`, s.map((e) => e.id)]] : [])));
  const states = Object.fromEntries(status.patches.map((p) => [p.id, p.state]));
  expect(states, `states ${after}`).toEqual(Object.fromEntries(model.state));
  if (subject.lastCommit) expect(subject.lastCommit(), `lastCommit ${after}`).toBe(last()?.commit ?? 0);
}
