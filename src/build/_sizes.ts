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
  const fresh = changed.map(([oi, ni]) => {
    const before = accessOffsets(a.module, oi);
    return [fname(b.module, ni), [...accessOffsets(b.module, ni)].filter((o) => !before.has(o))] as const;
  });
  for (const [key, fns] of passers) {
    const [old, grown] = key.split('→').map(Number) as [number, number];
    const users = new Set(fresh.filter(([, offsets]) => offsets.some((o) => o >= old && o < grown)).map(([name]) => name));
    if (users.size > 0) out.set(key, { old, new: grown, passers: fns, users });
  }
  return out;
}

/** Grown struct sizes as one LAYOUT_CHANGED reason naming the sizes and the functions. */
export function sizeReason(sizes: ReadonlyMap<string, GrownSize>): DiffReason | undefined {
  if (sizes.size === 0) return undefined;
  const names = (set: ReadonlySet<string>): string =>
    [...set]
      .sort()
      .map((n) => `\`${n}\``)
      .join(', ');
  const each = [...sizes.values()].map((s) => `size ${s.old} → ${s.new} passed by ${names(s.passers)}; bytes ${s.old}–${s.new - 1} newly used by ${names(s.users)}`);
  return {
    code: 'LAYOUT_CHANGED',
    item: [...sizes.values()].map((s) => `size ${s.old} → ${s.new}`).join(', '),
    message: `a struct grew (${each.join('; ')}): objects the running guest already allocated have the old size, so patched code using the new field would read and write past them. Keep the struct as it is and attach the new field as shadow state (hotpatch.shadow), or ship it with a new baseline; pass allowLayoutChange (--allow-layout-change) only if no such object can exist when the patch applies`,
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
