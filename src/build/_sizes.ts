import { ByteReader } from '../format/bytes.js';
import { newInstruction, readInstruction } from '../format/instructions.js';
import type { WasmModule } from '../format/module.js';
import type { BodyDiff } from './_compare.js';
import { type DiffReason, fname } from './_eligibility.js';
import type { Build } from './_match.js';

/** A struct that grew at its end: its size passed to calls changed, and changed code uses the new bytes. */
export interface GrownSize {
  readonly old: number;
  readonly new: number;
  /** Functions passing the size to a call (an allocator, a copy, a clear). */
  readonly passers: ReadonlySet<string>;
  /** Functions whose new code loads or stores at an offset in [old, new) their old code never used. */
  readonly users: ReadonlySet<string>;
}

/** The `old→new` key of a size change, as {@link grownSizes} keys them. */
export const sizeKey = (old: number, fresh: number): string => `${old}→${fresh}`;

/**
 * A field appended at the end of a struct moves no offset, so no load or store differs; what
 * differs is `sizeof`: `malloc(sizeof(T))`, `memset`/`memcpy` lengths. Without debug information
 * a size is told from a line number by its use: a constant passed to a call grows from S to S + d
 * (both below the static area, where field offsets are) while some changed function newly loads
 * or stores at an offset in [S, S + d), the appended field's bytes.
 */
export function grownSizes(a: Build, b: Build, changed: readonly [number, number][], diffs: readonly BodyDiff[], staticFrom: number): Map<string, GrownSize> {
  const passers = new Map<string, Set<string>>();
  diffs.forEach((d, k) => {
    for (const c of d.constants) {
      if (c.use !== 'argument' || c.old <= 0 || c.new <= c.old || c.new > staticFrom) continue;
      const key = sizeKey(c.old, c.new);
      let set = passers.get(key);
      if (!set) {
        set = new Set();
        passers.set(key, set);
      }
      set.add(fname(b.module, changed[k]![1]));
    }
  });
  const out = new Map<string, GrownSize>();
  if (passers.size === 0) return out;
  const users = newlyUsing(a, b, changed);
  for (const [key, fns] of passers) {
    const [old, grown] = key.split('→').map(Number) as [number, number];
    const using = users(old, grown);
    if (using.size > 0) out.set(key, { old, new: grown, passers: fns, users: using });
  }
  return out;
}

/** Names of the changed functions whose new code loads or stores at an offset in [from, to) their old code never used. */
function newlyUsing(a: Build, b: Build, changed: readonly [number, number][]): (from: number, to: number) => Set<string> {
  const fresh = changed.map(([oi, ni]) => {
    const before = accessOffsets(a.module, oi);
    return [fname(b.module, ni), [...accessOffsets(b.module, ni)].filter((o) => !before.has(o))] as const;
  });
  return (from, to) => new Set(fresh.filter(([, offsets]) => offsets.some((o) => o >= from && o < to)).map(([name]) => name));
}

/** A store or load that got wider at the same offset, over bytes changed code now uses: a field placed in padding. */
export interface FilledPadding {
  readonly offset: number;
  readonly width: readonly [number, number];
  /** Functions whose access at `offset` got wider (a constructor's merged initialising store). */
  readonly widened: ReadonlySet<string>;
  /** Functions whose new code loads or stores in the bytes the access now also covers. */
  readonly users: ReadonlySet<string>;
}

/** Bytes a load or store opcode (0x28–0x3e) reads or writes. */
const WIDTH = [4, 8, 4, 8, 1, 1, 2, 2, 1, 1, 2, 2, 4, 4, 4, 8, 4, 8, 1, 2, 1, 2, 4];

/**
 * A field added in a struct's padding (Rust orders fields by alignment; C has tail padding) moves
 * no offset and no size. What shows it: the code that initialises the struct, whose merged store
 * now covers the new field too (`i32.store offset=16` → `i64.store offset=16`), and code that uses
 * the bytes the store newly covers. Objects the running guest holds have junk in that padding.
 */
export function filledPadding(a: Build, b: Build, changed: readonly [number, number][], diffs: readonly BodyDiff[]): FilledPadding[] {
  const widened = new Map<string, { offset: number; width: [number, number]; fns: Set<string> }>();
  diffs.forEach((d, k) => {
    for (const x of d.accesses) {
      const [wa, wb] = [WIDTH[x.op[0] - 0x28]!, WIDTH[x.op[1] - 0x28]!];
      if (x.offset[0] !== x.offset[1] || wb <= wa) continue;
      const key = `${x.offset[0]}:${wa}→${wb}`;
      let seen = widened.get(key);
      if (!seen) {
        seen = { offset: x.offset[0], width: [wa, wb], fns: new Set() };
        widened.set(key, seen);
      }
      seen.fns.add(fname(b.module, changed[k]![1]));
    }
  });
  if (widened.size === 0) return [];
  const users = newlyUsing(a, b, changed);
  const out: FilledPadding[] = [];
  for (const { offset, width, fns } of widened.values()) {
    const using = users(offset + width[0], offset + width[1]);
    if (using.size > 0) out.push({ offset, width, widened: fns, users: using });
  }
  return out;
}

/** Grown struct sizes and filled padding as one LAYOUT_CHANGED reason naming the bytes and the functions. */
export function sizeReason(sizes: ReadonlyMap<string, GrownSize>, padding: readonly FilledPadding[] = []): DiffReason | undefined {
  if (sizes.size === 0 && padding.length === 0) return undefined;
  const names = (set: ReadonlySet<string>): string =>
    [...set]
      .sort()
      .map((n) => `\`${n}\``)
      .join(', ');
  const each = [
    ...[...sizes.values()].map((s) => `size ${s.old} → ${s.new} passed by ${names(s.passers)}; bytes ${s.old}–${s.new - 1} newly used by ${names(s.users)}`),
    ...padding.map(
      (p) =>
        `the access at offset ${p.offset} widened from ${p.width[0]} to ${p.width[1]} bytes in ${names(p.widened)}; bytes ${p.offset + p.width[0]}–${p.offset + p.width[1] - 1}, padding before, newly used by ${names(p.users)}`,
    ),
  ];
  const items = [...[...sizes.values()].map((s) => `size ${s.old} → ${s.new}`), ...padding.map((p) => `padding ${p.offset + p.width[0]}–${p.offset + p.width[1] - 1} filled`)];
  return {
    code: 'LAYOUT_CHANGED',
    item: items.join(', '),
    message: `a struct grew (${each.join('; ')}): objects the running guest already allocated have the old layout (too small, or junk where the new field is), so patched code using the new field would read and write the wrong bytes. Keep the struct as it is and attach the new field as shadow state (hotpatch.shadow), or ship it with a new baseline; pass allowLayoutChange (--allow-layout-change) only if no such object can exist when the patch applies`,
  };
}

/** The memory offsets (immediates) of a function's loads and stores. */
function accessOffsets(m: WasmModule, index: number): Set<number> {
  const out = new Set<number>();
  const body = m.bodies[index - m.importedFunctions]!;
  const r = new ByteReader(m.bytes, body.codeStart, body.end);
  const ins = newInstruction();
  while (!r.done) {
    readInstruction(r, ins);
    if (ins.op < 0x28 || ins.op > 0x3e) continue;
    const imm = new ByteReader(m.bytes, ins.start + 1);
    imm.skipLeb();
    out.add(imm.u32());
  }
  return out;
}
