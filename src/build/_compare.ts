import { ByteReader } from '../format/bytes.js';
import { newInstruction, Op, readInstruction } from '../format/instructions.js';
import { signatureText, type WasmModule } from '../format/module.js';
import { type Build, perFunction, typeOf } from './_match.js';

/**
 * Where a constant goes: into a call as an argument, into memory as the value of a store, into
 * a load or store as its address, into a comparison, or anywhere else (arithmetic, a local, a branch).
 */
export type ConstantUse = 'argument' | 'stored' | 'address' | 'compared' | 'operand';

/** A constant that differs between the two builds at the same place in a function. */
export interface ConstantChange {
  readonly old: number;
  readonly new: number;
  readonly use: ConstantUse;
  /** For arguments: the callee (old-build identity) and which argument, counted from 0. */
  readonly callee?: number;
  readonly argument?: number;
}

/** A load or store at the same place whose offset (a struct field) or width changed. */
export interface AccessChange {
  /** Load or store opcodes, old and new (equal unless the width changed). */
  readonly op: readonly [number, number];
  readonly offset: readonly [number, number];
}

/** How a matched function differs, instruction by instruction. */
export interface BodyDiff {
  /** `constants`: the same instructions, only immediates differ; `code`: instructions differ. */
  readonly shape: 'constants' | 'code';
  /** Differing constants (for `code`, only those in the common prefix and suffix). */
  readonly constants: readonly ConstantChange[];
  /** Loads and stores whose field offset or width changed (offsets below the static area). */
  readonly accesses: readonly AccessChange[];
  /** Differing memory offsets at or above the static area: absolute static addresses. */
  readonly staticOffsets: readonly (readonly [number, number])[];
}

/** What an instruction's token is made of: kinds never compare equal to one another. */
enum Kind {
  /** Compared by its bytes. */
  raw,
  i32Const,
  i64Const,
  load,
  store,
  /** `call`, `return_call`, `ref.func`: compared by callee identity. */
  funcRef,
  /** `call_indirect`, `return_call_indirect`: by signature and table. */
  indirect,
  /** A block, loop, if or try with a type index: by signature. */
  blockType,
}

/** One instruction of a body, decoded once per build (see {@link decoded}). */
interface Decoded {
  readonly op: number;
  readonly start: number;
  readonly end: number;
  readonly index: number;
  readonly kind: Kind;
  /** The signature (text) of a call_indirect or a typed block. */
  readonly signature: string | undefined;
  /** The table of a call_indirect. */
  readonly table: number;
  /** The constant's value (i32/i64 const) or the memory offset (load/store), else undefined. */
  readonly value: number | undefined;
}

const VALTYPE_BLOCK = new Set([0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
const isLoad = (op: number): boolean => op >= 0x28 && op <= 0x35;
const isStore = (op: number): boolean => op >= 0x36 && op <= 0x3e;

// Per module, each function's instructions: compareBodies, useOf and constantUses read the same
// bodies (the layout case decodes 370 pairs), so each is decoded once.
/** A function body as instructions whose tokens two builds can compare (see {@link sameToken}). */
const decoded = perFunction((m, index) => decode(m, index - m.importedFunctions));

function decode(m: WasmModule, k: number): Decoded[] {
  const body = m.bodies[k]!;
  const r = new ByteReader(m.bytes, body.codeStart, body.end);
  const imm = new ByteReader(m.bytes, body.codeStart, body.end);
  const ins = newInstruction();
  const out: Decoded[] = [];
  while (!r.done) {
    readInstruction(r, ins);
    const { op, start, end } = ins;
    imm.pos = start + 1;
    let kind = Kind.raw;
    let value: number | undefined;
    let signature: string | undefined;
    let table = -1;
    if (op === Op.i32Const) {
      kind = Kind.i32Const;
      value = imm.s32();
    } else if (op === Op.i64Const) {
      kind = Kind.i64Const;
      value = Number(imm.s64());
    } else if (isLoad(op) || isStore(op)) {
      // Width and offset are compared apart, so a moved field or a wider one still lines up.
      kind = isLoad(op) ? Kind.load : Kind.store;
      imm.u32();
      value = imm.u32();
    } else if (op === Op.call || op === Op.returnCall || op === Op.refFunc) {
      kind = Kind.funcRef;
    } else if (op === Op.callIndirect || op === Op.returnCallIndirect) {
      kind = Kind.indirect;
      signature = signatureText(m.types[imm.u32()]!);
      table = imm.u32();
    } else if ((op === Op.block || op === Op.loop || op === Op.if || op === Op.try) && !VALTYPE_BLOCK.has(m.bytes[start + 1]!)) {
      kind = Kind.blockType;
      signature = signatureText(m.types[imm.s33()]!);
    }
    out.push({ op, start, end, index: ins.index, kind, signature, table, value });
  }
  return out;
}

/**
 * Whether two instructions are the same apart from constants and memory offsets: callees by
 * old-build identity, types by signature, everything else byte for byte.
 */
function sameToken(x: Decoded, xBytes: Uint8Array, y: Decoded, yBytes: Uint8Array, callee: (i: number) => number): boolean {
  if (x.kind !== y.kind) return false;
  switch (x.kind) {
    case Kind.i32Const:
    case Kind.i64Const:
    case Kind.load:
    case Kind.store:
      return true;
    case Kind.funcRef:
      return x.op === y.op && x.index === callee(y.index);
    case Kind.indirect:
      return x.op === y.op && x.signature === y.signature && x.table === y.table;
    case Kind.blockType:
      return x.op === y.op && x.signature === y.signature;
    case Kind.raw: {
      const n = x.end - x.start;
      if (y.end - y.start !== n) return false;
      for (let k = 0; k < n; k++) if (xBytes[x.start + k] !== yBytes[y.start + k]) return false;
      return true;
    }
  }
}

const UNARY = [
  [0x45, 0x45],
  [0x50, 0x50],
  [0x67, 0x69],
  [0x79, 0x7b],
  [0x8b, 0x91],
  [0x99, 0x9f],
  [0xa7, 0xc4],
];
const COMPARE = [
  [0x46, 0x4f],
  [0x51, 0x5a],
];
const BINARY = [
  [0x5b, 0x66],
  [0x6a, 0x78],
  [0x7c, 0x8a],
  [0x92, 0x98],
  [0xa0, 0xa6],
];
const inRanges = (op: number, ranges: number[][]): boolean => ranges.some(([lo, hi]) => op >= lo! && op <= hi!);

/**
 * Follows the value a constant at `k` pushes through the instructions after it (stack depth only,
 * within straight-line code) to the instruction that consumes it, and says what that one does.
 */
export function useOf(m: WasmModule, code: readonly { op: number; index: number }[], k: number, toOld: (i: number) => number = (i) => i, depth = 0): Omit<ConstantChange, 'old' | 'new'> {
  let above = 0; // values pushed on top of ours
  for (let j = k + 1; j < code.length; j++) {
    const { op, index } = code[j]!;
    if (op === Op.localGet || op === Op.globalGet || (op >= Op.i32Const && op <= Op.f64Const)) above++;
    else if (isLoad(op)) {
      if (above === 0) return { use: 'address' };
    } else if (isStore(op)) {
      if (above === 0) return { use: 'stored' };
      if (above === 1) return { use: 'address' };
      above -= 2;
    } else if (op === Op.call || op === Op.returnCall) {
      const type = typeOf(m, index);
      if (above < type.params.length) return { use: 'argument', callee: toOld(index), argument: type.params.length - 1 - above };
      above += type.results.length - type.params.length;
    } else if (inRanges(op, UNARY) || op === Op.localTee) {
      if (above === 0) return { use: 'operand' };
    } else if (inRanges(op, COMPARE)) {
      if (above <= 1) return { use: 'compared' };
      above--;
    } else if (inRanges(op, BINARY)) {
      if (above <= 1) return { use: 'operand' };
      above--;
    } else if (op === Op.select) {
      if (above === 0) return { use: 'operand' };
      // One of the two values chosen from: the result may be ours, so follow it.
      above = above <= 2 ? 0 : above - 2;
    } else if (op === Op.localSet && above === 0) {
      return depth < 2 ? throughLocal(m, code, j, index, toOld, depth) : { use: 'operand' };
    } else if (op === Op.localSet || op === Op.globalSet || op === Op.drop) {
      if (above === 0) return { use: 'operand' };
      above--;
    } else return { use: 'operand' };
  }
  return { use: 'operand' };
}

/**
 * A value stored in a local: what the next read of that local does with it. The compiler merges
 * the error paths of a function into one call that takes its line number from a local (each path
 * sets the local and branches forward to the call), so a line number reaches its call through a
 * local. Follows straight-line code and forward `br`s; locals are reused, so only the first read
 * counts, and a write before it means the value is lost.
 */
function throughLocal(m: WasmModule, code: readonly { op: number; index: number }[], from: number, local: number, toOld: (i: number) => number, depth: number): Omit<ConstantChange, 'old' | 'new'> {
  const blocks = blocksOf(code);
  const ends = blocks.ends;
  for (let j = from + 1, steps = 0; j < code.length && steps < 256; j++, steps++) {
    const x = code[j]!;
    if (x.op === Op.br) {
      const target = enclosing(blocks, j, x.index);
      if (target === undefined || code[target]!.op === Op.loop) return { use: 'operand' };
      j = ends.get(target)!;
    } else if (x.op === Op.else) {
      j = ends.get(enclosing(blocks, j, 0)!)!;
    } else if (x.op === Op.return || x.op === Op.brTable || x.op === Op.unreachable) {
      return { use: 'operand' };
    } else if (x.op === Op.localGet && x.index === local) {
      const use = useOf(m, code, j, toOld, depth + 1);
      return use.use === 'argument' || use.use === 'stored' ? use : { use: 'operand' };
    } else if ((x.op === Op.localSet || x.op === Op.localTee) && x.index === local) {
      return { use: 'operand' };
    }
  }
  return { use: 'operand' };
}

/** Where each block ends and which block encloses each instruction, by instruction position. */
interface Blocks {
  /** Each block, loop, if and try start's matching `end`. */
  readonly ends: Map<number, number>;
  /** The start of the innermost block open at each instruction (-1: none); for a block start, its parent. */
  readonly openAt: Int32Array;
}

const blocksCache = new WeakMap<object, Blocks>();
function blocksOf(code: readonly { op: number }[]): Blocks {
  let blocks = blocksCache.get(code);
  if (blocks) return blocks;
  const ends = new Map<number, number>();
  const openAt = new Int32Array(code.length);
  const open: number[] = [];
  code.forEach((x, j) => {
    openAt[j] = open.length > 0 ? open[open.length - 1]! : -1;
    if (x.op === Op.block || x.op === Op.loop || x.op === Op.if || x.op === Op.try) open.push(j);
    else if (x.op === Op.end && open.length > 0) ends.set(open.pop()!, j);
  });
  blocks = { ends, openAt };
  blocksCache.set(code, blocks);
  return blocks;
}

/** The start of the `depth`-th block enclosing position `at` (0: the innermost): parent links, not a scan back. */
function enclosing(blocks: Blocks, at: number, depth: number): number | undefined {
  let b = blocks.openAt[at]!;
  for (let d = 0; d < depth && b >= 0; d++) b = blocks.openAt[b]!;
  return b >= 0 ? b : undefined;
}

/**
 * Compares a matched pair instruction by instruction. When the instruction sequences agree (the
 * usual case for a line-number shift or a moved struct field) every differing immediate is
 * reported with where its value goes; otherwise the common prefix and suffix are compared.
 */
export function compareBodies(oldBuild: Build, oi: number, newBuild: Build, ni: number, callee: (i: number) => number, staticFrom: number): BodyDiff {
  const a = decoded(oldBuild.module, oi);
  const b = decoded(newBuild.module, ni);
  const same = (ka: number, kb: number): boolean => sameToken(a[ka]!, oldBuild.module.bytes, b[kb]!, newBuild.module.bytes, callee);
  let sameShape = a.length === b.length;
  for (let k = 0; sameShape && k < a.length; k++) sameShape = same(k, k);
  const pairs: [number, number][] = [];
  if (sameShape) {
    for (let k = 0; k < a.length; k++) pairs.push([k, k]);
  } else {
    let p = 0;
    while (p < a.length && p < b.length && same(p, p)) pairs.push([p, p++]);
    let s = 1;
    while (s <= a.length - p && s <= b.length - p && same(a.length - s, b.length - s)) pairs.push([a.length - s, b.length - s++]);
  }
  const constants: ConstantChange[] = [];
  const accesses: AccessChange[] = [];
  const staticOffsets: [number, number][] = [];
  for (const [ka, kb] of pairs) {
    const x = a[ka]!;
    const y = b[kb]!;
    if (x.value === y.value && x.op === y.op) continue;
    if (x.op === Op.i32Const || x.op === Op.i64Const) {
      constants.push({ old: x.value!, new: y.value!, ...useOf(newBuild.module, b, kb, callee) });
    } else if (x.value! >= staticFrom || y.value! >= staticFrom) {
      staticOffsets.push([x.value!, y.value!]);
    } else {
      accesses.push({ op: [x.op, y.op], offset: [x.value!, y.value!] });
    }
  }
  return { shape: sameShape ? 'constants' : 'code', constants, accesses, staticOffsets };
}

/** Every i32 constant of a function with where it goes, and every memory offset (as an address). */
export function constantUses(build: Build, index: number): { value: number; use: ConstantUse }[] {
  const code = decoded(build.module, index);
  const out: { value: number; use: ConstantUse }[] = [];
  code.forEach((x, k) => {
    if (x.op === Op.i32Const) out.push({ value: x.value! >>> 0, use: useOf(build.module, code, k).use });
    else if (isLoad(x.op) || isStore(x.op)) out.push({ value: x.value!, use: 'address' });
  });
  return out;
}
