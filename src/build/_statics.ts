import { ByteReader } from '../format/bytes.js';
import { newInstruction, readInstruction } from '../format/instructions.js';
import type { WasmModule } from '../format/module.js';
import type { DiffReason } from './_eligibility.js';
import { type Build, type Canon, canonicalBody } from './_match.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Where each static symbol is, as the code that uses it says: the constant minus its addend. */
function addresses(build: Build): Map<string, number> {
  const out = new Map<string, number>();
  const bytes = build.module.bytes;
  for (const reloc of build.linking!.addressAt.values()) {
    const r = new ByteReader(bytes, reloc.at);
    const opcode = bytes[reloc.at - 1];
    const value = opcode === 0x41 ? r.s32() : r.u32(); // i32.const is signed; memarg offsets are not
    out.set(reloc.symbol, (value - reloc.addend) >>> 0);
  }
  return out;
}

/**
 * Statics live in linear memory, not in Wasm globals: a new, moved or resized static changes only
 * address constants in code. With relocations (`-Wl,--emit-relocs`) every such constant names
 * its symbol, so the answer is exact: each static used by the new code must be where it was.
 */
export function staticReasons(oldBuild: Build, newBuild: Build): DiffReason[] {
  const reasons: DiffReason[] = [];
  const before = addresses(oldBuild);
  const after = addresses(newBuild);
  const oldSymbols = new Map(oldBuild.linking!.dataSymbols.map((s) => [s.name, s]));
  const newSymbols = new Map(newBuild.linking!.dataSymbols.map((s) => [s.name, s]));
  for (const [name, address] of after) {
    const was = before.get(name);
    const old = oldSymbols.get(name);
    if (was === undefined && !old) {
      reasons.push({
        code: 'STATIC_ADDED',
        item: name,
        message: `static \`${name}\` is new (at ${hex(address)}): the running guest's memory layout has no room for it; keep the state in an existing static, or ship it with a new baseline`,
      });
    } else if (was !== undefined && was !== address) {
      reasons.push({
        code: 'STATIC_MOVED',
        item: name,
        message: `static \`${name}\` moved from ${hex(was)} to ${hex(address)} (statics were added, removed or reordered before it); code using the new address would read other data in the running guest; ship it with a new baseline`,
      });
    }
    const size = newSymbols.get(name)?.size;
    if (old?.size !== undefined && size !== undefined && old.size !== size) {
      reasons.push({ code: 'STATIC_RESIZED', item: name, message: `static \`${name}\` changed size (${old.size} → ${size} bytes); ship it with a new baseline` });
    }
  }
  return reasons;
}

/** The range of linear memory that holds statics, as far as a build without relocations tells. */
function staticRange(m: WasmModule): [number, number] {
  const memory = m.memories[0] ?? m.imports.find((i) => i.kind === 'memory')?.memory;
  const end = (memory?.min ?? 0) * 65536;
  return [1024, end]; // wasm-ld and emscripten place statics from 1024 up
}

/**
 * Without relocations: a function whose only differences are constants that both point into the
 * static area most likely refers to statics that moved. Refuse it and say how to get an exact
 * answer. (A deliberate change of a small constant, like a bound, is below 1024 and not flagged.)
 */
export function addressConstantReasons(oldBuild: Build, newBuild: Build, pairs: readonly [number, number][], canon: Canon, callee: (i: number) => number): DiffReason[] {
  const [lo, hi] = staticRange(oldBuild.module);
  const mask = (build: Build) => (p: number, start: number): Uint8Array | undefined => {
    const bytes = build.module.bytes;
    const op = bytes[start]!;
    let value: number | undefined;
    if (op === 0x41 && p === start + 1) value = new ByteReader(bytes, p).s32() >>> 0;
    else if (op >= 0x28 && op <= 0x3e) {
      const r = new ByteReader(bytes, start + 1);
      r.skipLeb();
      if (p === r.pos) value = r.u32();
    }
    return value !== undefined && value >= lo && value < hi ? new Uint8Array([0xfe]) : undefined;
  };
  const reasons: DiffReason[] = [];
  const oldAddresses = new Set<number>();
  for (let i = oldBuild.module.importedFunctions; i < oldBuild.module.importedFunctions + oldBuild.module.functions.length; i++) {
    for (const v of staticConstants(oldBuild.module, i, lo, hi)) oldAddresses.add(v);
  }
  for (const [oi, ni] of pairs) {
    const unseen = staticConstants(newBuild.module, ni, lo, hi).filter((v) => !oldAddresses.has(v));
    if (unseen.length > 0) {
      const name = newBuild.module.functionNames.get(ni) ?? `#${ni}`;
      reasons.push({
        code: 'ADDRESS_CONSTANTS_CHANGED',
        item: name,
        message: `\`${name}\` uses static addresses no code of the old build used (${[...new Set(unseen)].slice(0, 4).map(hex).join(', ')}): most likely a new static; link both builds with -Wl,--emit-relocs for an exact answer, or ship it with a new baseline`,
      });
      continue;
    }
    const a = canonicalBody({ ...oldBuild, linking: undefined }, oi, canon, (c) => c, mask(oldBuild));
    const b = canonicalBody({ ...newBuild, linking: undefined }, ni, canon, callee, mask(newBuild));
    if (a === b) {
      const name = newBuild.module.functionNames.get(ni) ?? `#${ni}`;
      reasons.push({
        code: 'ADDRESS_CONSTANTS_CHANGED',
        item: name,
        message: `\`${name}\` differs only in constants that point into static memory (${hex(lo)}–${hex(hi)}): statics most likely moved; link both builds with -Wl,--emit-relocs for an exact answer, or ship it with a new baseline`,
      });
    }
  }
  return reasons;
}

/** Constants and load/store offsets of a function that fall in the static range. */
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
