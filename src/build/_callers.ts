// A change to a function the baseline cannot patch (excluded, e.g. as hot) is carried through its
// callers, kpatch's answer to functions it cannot trace: the patch brings the fixed body as a
// helper and replaces every function that calls it directly, so their calls reach the helper. A
// caller that cannot be patched either becomes a helper in turn, up to patchable callers. This
// holds only while direct calls are the only way in: an export, a table entry (element segment,
// `ref.func`) or the start function reach the old body whatever the patch replaces.
import type { BaselineManifest } from '../format/manifest.js';
import { forEachInstruction, refFuncsIn, type WasmModule } from '../format/module.js';
import { Op } from '../format/instructions.js';
import { type DiffReason, fname } from './_eligibility.js';

/** An unpatchable function the patch carries as a helper, and the functions whose calls it re-points. */
export interface ThroughCallers {
  /** The function (changed, or an unpatchable caller on the way to patchable ones). */
  readonly function: string;
  /** Why the baseline cannot patch it (its manifest reason). */
  readonly reason: string;
  /** True when its own code changed; false when it is carried only because it calls one that did. */
  readonly changed: boolean;
  /** Its direct callers in the old build: all of them are in the patch. */
  readonly callers: readonly string[];
}

/** What carrying changed unpatchable functions through their callers takes, in old-build indices. */
export interface CallerClosure {
  /** Patchable functions to replace so they call the helpers (beyond those whose code changed). */
  readonly targets: readonly number[];
  /** Unpatchable functions the patch carries as helpers. */
  readonly helpers: readonly number[];
  readonly through: readonly ThroughCallers[];
  /** Why it cannot be done, when it cannot: every way in that bypasses the callers. */
  readonly reasons: readonly DiffReason[];
}

/** Where each function is called directly from, and the functions reached other than by direct calls. */
function references(m: WasmModule): { callers: Map<number, Set<number>>; ways: Map<number, string[]> } {
  const callers = new Map<number, Set<number>>();
  const ways = new Map<number, string[]>();
  const way = (f: number, how: string): void => {
    const list = ways.get(f) ?? [];
    if (!list.includes(how)) list.push(how);
    ways.set(f, list);
  };
  for (const e of m.exports) if (e.kind === 'func') way(e.index, `exported as \`${e.name}\``);
  if (m.start !== undefined) way(m.start, 'the start function');
  m.elements.forEach((seg, k) => {
    const items = seg.encoding === 'indices' ? (seg.items as number[]) : (seg.items as Uint8Array[]).flatMap(refFuncsIn);
    for (const f of items) way(f, `in element segment ${k} (a function pointer in table ${seg.table})`);
  });
  for (const g of m.globals) for (const f of refFuncsIn(g.init)) way(f, 'taken by `ref.func` in a global');
  m.bodies.forEach((b, k) => {
    const caller = m.importedFunctions + k;
    forEachInstruction(m.bytes, b, (ins) => {
      if (ins.op === Op.call || ins.op === Op.returnCall) {
        const set = callers.get(ins.index) ?? new Set<number>();
        set.add(caller);
        callers.set(ins.index, set);
      } else if (ins.op === Op.refFunc) way(ins.index, `taken by \`ref.func\` in \`${fname(m, caller)}\``);
    });
  });
  return { callers, ways };
}

/**
 * For the changed functions the baseline cannot patch, the closure of their direct callers up to
 * patchable ones; refused (every reason) when one in the closure is reached some other way.
 */
export function throughCallers(baseline: BaselineManifest, o: WasmModule, changedOld: readonly number[]): CallerClosure {
  const byIndex = new Map(baseline.functions.map((f) => [f.index, f]));
  const unpatchable = (i: number): boolean => byIndex.get(i)?.slot === undefined;
  const start = changedOld.filter(unpatchable);
  if (start.length === 0) return { targets: [], helpers: [], through: [], reasons: [] };
  const { callers, ways } = references(o);
  const changed = new Set(changedOld);
  const targets = new Set<number>();
  const helpers: number[] = [];
  const through: ThroughCallers[] = [];
  const reasons: DiffReason[] = [];
  // Which changed function each helper is carried for, to name it in a refusal.
  const forChange = new Map<number, number>(start.map((i) => [i, i]));
  const pending = [...start];
  const seen = new Set(start);
  while (pending.length > 0) {
    const fn = pending.shift()!;
    const why = byIndex.get(fn)?.reason ?? 'no slot';
    helpers.push(fn);
    const direct = [...(callers.get(fn) ?? [])].sort((a, b) => a - b);
    through.push({ function: fname(o, fn), reason: why, changed: changed.has(fn), callers: direct.map((c) => fname(o, c)) });
    const other = ways.get(fn) ?? [];
    if (fn < o.importedFunctions) other.push('imported');
    if (other.length > 0) {
      const origin = forChange.get(fn)!;
      const via = origin === fn ? '' : `, which calls the changed \`${fname(o, origin)}\`,`;
      reasons.push({
        code: 'NOT_PATCHABLE',
        item: fname(o, fn),
        message: `\`${fname(o, fn)}\`${via} is not patchable in this baseline (${why}) and cannot be carried through its callers: it is ${other.join(', ')}, a way in that reaches the old code whatever the patch replaces; prepare without excluding it, or ship it with a new baseline (prepare the new build)`,
      });
    }
    for (const c of direct) {
      if (!unpatchable(c)) targets.add(c);
      else if (!seen.has(c)) {
        seen.add(c);
        forChange.set(c, forChange.get(fn)!);
        pending.push(c);
      }
    }
  }
  return { targets: [...targets].sort((a, b) => a - b), helpers: helpers.sort((a, b) => a - b), through, reasons };
}
