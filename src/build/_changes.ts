import { ByteReader } from '../format/bytes.js';
import { newInstruction, readInstruction } from '../format/instructions.js';
import type { WasmModule } from '../format/module.js';
import { type BodyDiff, type ConstantChange, type ConstantUse, compareBodies, constantUses } from './_compare.js';
import { type DiffReason, fname } from './_eligibility.js';
import type { Build } from './_match.js';
import { filledPadding, grownSizes, sizeKey, sizeReason } from './_sizes.js';
import { staticRange } from './_statics.js';

/** A function that differs between the builds but that the patch leaves out, and why. */
export interface LeftOut {
  /** A function, or a data segment (`data[0]`) whose only change is line numbers in it. */
  readonly item: string;
  readonly reason: 'LINE_NUMBERS';
  readonly message: string;
  /** The constants that differ: old and new value, and the function they are passed to (for data: their address). */
  readonly constants: readonly { readonly old: number; readonly new: number; readonly callee?: string | undefined; readonly address?: number }[];
}

/** What to do with each changed function. */
export interface Classified {
  readonly carried: [old: number, new: number][];
  readonly leftOut: LeftOut[];
  readonly reasons: DiffReason[];
  /** Layout changes the author confirmed (`allowLayoutChange`): carried, reported. */
  readonly warnings: DiffReason[];
}

/** Choices of {@link classifyChanges}. */
export interface ClassifyOptions {
  /** Both builds carry relocations: statics are checked by symbol elsewhere, not by constants here. */
  readonly exact: boolean;
  /** Carry line-number-only functions instead of leaving them out. */
  readonly carryLineNumbers: boolean;
  /** Carry functions whose struct field offsets changed instead of refusing. */
  readonly allowLayoutChange: boolean;
  /** Data or the layout globals changed: statics moved, so a shifted constant in their range may be an address. */
  readonly staticsMoved: boolean;
}

const VALUE_USES: ReadonlySet<ConstantUse> = new Set(['argument', 'stored']);
const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const list = (items: readonly string[], most: number): string => (items.length <= most ? items.join(', ') : `${items.slice(0, most).join(', ')} and ${items.length - most} more`);

/**
 * Sorts the functions whose code differs into carried, left out (line numbers: constants passed
 * to calls that shift by the same amount in several functions, kpatch's "line macro" changes)
 * and refused (struct layout changes seen in several functions; without relocations, constants
 * that are static addresses).
 */
export function classifyChanges(a: Build, b: Build, changed: readonly [number, number][], callee: (i: number) => number, options: ClassifyOptions): Classified {
  const [lo, hi] = staticRange(a.module);
  const inStatics = (v: number): boolean => v >>> 0 >= lo && v >>> 0 < hi;
  const diffs = changed.map(([oi, ni]) => compareBodies(a, oi, b, ni, callee, lo));
  // Constants that are values (not addresses, not compared): where line numbers can be. An
  // operand is a value passed through a path this analysis does not follow (a loop, a phi).
  const valueOnly = (d: BodyDiff): boolean =>
    d.shape === 'constants' && d.accesses.length === 0 && d.staticOffsets.length === 0 && d.constants.length > 0 && d.constants.every((c) => c.use !== 'address' && c.use !== 'compared');

  // A struct grown at its end changes the sizes passed to allocators and copies: never line numbers.
  const sizes = grownSizes(a, b, changed, diffs, lo);
  const isSize = (c: ConstantChange): boolean => c.use === 'argument' && sizes.has(sizeKey(c.old, c.new));

  // A line shift moves every __LINE__ below an edit by the same amount: a delta passed to calls
  // or stored in two or more functions, at two or more distinct lines, is a shift; a one-off change
  // of an argument is a change, and is carried. The same value changed alike in several functions
  // is one fact, not a shift: `malloc(16)` → `malloc(20)` in two functions is a size, and was left
  // out as a line number before distinct values were required.
  const byDelta = new Map<number, { functions: Set<number>; values: Set<number> }>();
  diffs.forEach((d, k) => {
    if (!valueOnly(d)) return;
    for (const c of d.constants) {
      if (!VALUE_USES.has(c.use) || isSize(c) || (options.staticsMoved && inStatics(c.old))) continue;
      const delta = c.new - c.old;
      let seen = byDelta.get(delta);
      if (!seen) {
        seen = { functions: new Set(), values: new Set() };
        byDelta.set(delta, seen);
      }
      seen.functions.add(k);
      seen.values.add(c.old);
    }
  });
  const isShift = (delta: number): boolean => {
    const seen = byDelta.get(delta);
    return seen !== undefined && seen.functions.size >= 2 && seen.values.size >= 2;
  };

  const out: Classified = { carried: [], leftOut: [], reasons: [], warnings: [] };
  const layout = new Map<string, Set<string>>();
  diffs.forEach((d, k) => {
    const [oi, ni] = changed[k]!;
    const name = fname(b.module, ni);
    if (valueOnly(d) && d.constants.every((c) => !isSize(c) && isShift(c.new - c.old))) {
      const constants = d.constants.map((c) => ({ old: c.old, new: c.new, callee: c.callee === undefined ? undefined : fname(a.module, c.callee) }));
      const shifts = [...new Set(d.constants.map((c) => c.new - c.old))].map((x) => (x > 0 ? `+${x}` : `${x}`));
      const sinks = [...new Set(d.constants.map((c) => (c.use === 'argument' ? `\`${fname(a.module, c.callee!)}\`` : c.use === 'stored' ? 'stores' : 'locals')))];
      if (options.carryLineNumbers) out.carried.push([oi, ni]);
      out.leftOut.push({
        item: name,
        reason: 'LINE_NUMBERS',
        message: `\`${name}\` differs only in constants (into ${list(sinks, 3)}) that shift by ${shifts.join(', ')} as in other functions (source line numbers below an edit); ${options.carryLineNumbers ? 'carried as asked' : 'left out: the running guest keeps reporting the old line numbers'}`,
        constants,
      });
      return;
    }
    for (const x of d.accesses) {
      const key = x.offset[0] === x.offset[1] ? `width ${x.op[0]}→${x.op[1]} at offset ${x.offset[0]}` : `offset ${x.offset[0]} → ${x.offset[1]}`;
      let set = layout.get(key);
      if (!set) {
        set = new Set();
        layout.set(key, set);
      }
      set.add(name);
    }
    if (!options.exact) {
      const reason = addressReason(d, name, lo, hi);
      if (reason) {
        out.reasons.push(reason);
        return;
      }
    }
    out.carried.push([oi, ni]);
  });

  for (const change of [layoutReason(layout), sizeReason(sizes, filledPadding(a, b, changed, diffs))]) {
    if (change) (options.allowLayoutChange ? out.warnings : out.reasons).push(change);
  }
  if (!options.exact) out.reasons.push(...unseenAddressReasons(a, b, out.carried, lo, hi));
  return out;
}

/** Field offset (or width) changes seen in two or more functions: a struct changed layout. */
function layoutReason(layout: ReadonlyMap<string, ReadonlySet<string>>): DiffReason | undefined {
  const shifted = [...layout].filter(([, fns]) => fns.size >= 2);
  if (shifted.length === 0) return undefined;
  const functions = [...new Set(shifted.flatMap(([, fns]) => [...fns]))].sort();
  const remaps = shifted.map(([key, fns]) => `${key} (${list([...fns].sort(), 3)})`);
  return {
    code: 'LAYOUT_CHANGED',
    item: `${shifted.length} field offset${shifted.length === 1 ? '' : 's'} in ${functions.length} functions`,
    message: `the same loads and stores use other field offsets in ${functions.length} functions: ${list(remaps, 6)}; a struct changed layout, and objects the running guest already holds keep the old one, so patched code would read them wrong. Keep the struct as it is and attach the new field as shadow state (hotpatch.shadow), or ship it with a new baseline; pass allowLayoutChange (--allow-layout-change) only if no such object can exist when the patch applies`,
  };
}

/** Without relocations: a function whose differing constants are used as static addresses. */
function addressReason(d: BodyDiff, name: string, lo: number, hi: number): DiffReason | undefined {
  const inStatics = (v: number): boolean => v >>> 0 >= lo && v >>> 0 < hi;
  const addresses = d.constants.filter((c) => (c.use === 'address' || c.use === 'operand') && (inStatics(c.old) || inStatics(c.new)));
  if (d.shape !== 'constants' || (addresses.length === 0 && d.staticOffsets.length === 0)) return undefined;
  const shown = [...addresses.map((c) => `${hex(c.old)} → ${hex(c.new)}`), ...d.staticOffsets.map(([x, y]) => `${hex(x)} → ${hex(y)}`)];
  return {
    code: 'ADDRESS_CONSTANTS_CHANGED',
    item: name,
    message: `\`${name}\` differs only in constants used as addresses in static memory (${list(shown, 4)}): statics most likely moved; link both builds with -Wl,--emit-relocs for an exact answer, or ship it with a new baseline`,
  };
}

/** Without relocations: carried code that uses, as an address, a static address no old code used. */
function unseenAddressReasons(a: Build, b: Build, carried: readonly [number, number][], lo: number, hi: number): DiffReason[] {
  const addressLike = (u: ConstantUse): boolean => u === 'address' || u === 'operand';
  const candidates = carried.map(
    ([, ni]) =>
      [
        ni,
        [
          ...new Set(
            constantUses(b, ni)
              .filter((c) => addressLike(c.use) && c.value >= lo && c.value < hi)
              .map((c) => c.value),
          ),
        ],
      ] as const,
  );
  if (candidates.every(([, values]) => values.length === 0)) return [];
  const seen = new Set<number>();
  const m = a.module;
  for (let i = m.importedFunctions; i < m.importedFunctions + m.functions.length; i++) {
    for (const value of staticConstants(m, i, lo, hi)) seen.add(value);
  }
  const reasons: DiffReason[] = [];
  for (const [ni, values] of candidates) {
    const unseen = values.filter((v) => !seen.has(v));
    if (unseen.length === 0) continue;
    const name = fname(b.module, ni);
    reasons.push({
      code: 'ADDRESS_CONSTANTS_CHANGED',
      item: name,
      message: `\`${name}\` uses static addresses no code of the old build used (${list(unseen.map(hex), 4)}): most likely a new static; link both builds with -Wl,--emit-relocs for an exact answer, or ship it with a new baseline`,
    });
  }
  return reasons;
}

/** Constants and load/store offsets of a function that fall in the static range (any use). */
function staticConstants(m: WasmModule, index: number, lo: number, hi: number): number[] {
  const out: number[] = [];
  const body = m.bodies[index - m.importedFunctions]!;
  const r = new ByteReader(m.bytes, body.codeStart, body.end);
  const ins = newInstruction();
  while (!r.done) {
    readInstruction(r, ins);
    let value: number | undefined;
    if (ins.op === 0x41) value = new ByteReader(m.bytes, ins.start + 1).s32() >>> 0;
    else if (ins.op >= 0x28 && ins.op <= 0x3e) {
      const imm = new ByteReader(m.bytes, ins.start + 1);
      imm.skipLeb();
      value = imm.u32();
    }
    if (value !== undefined && value >= lo && value < hi) out.push(value);
  }
  return out;
}
