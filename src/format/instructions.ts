import { HotpatchError } from '../errors.js';
import type { ByteReader } from './bytes.js';

/**
 * One decoded instruction. `op` is the opcode byte; for prefixed opcodes (0xFC, 0xFD, 0xFE)
 * `sub` is the sub-opcode. `index` is the first index immediate when the instruction has one
 * (function, global, local, table, type, label...), and `indexStart` where it is encoded.
 */
export interface Instruction {
  op: number;
  sub: number;
  start: number;
  indexStart: number;
  index: number;
  end: number;
}

export const Op = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  try: 0x06,
  catch: 0x07,
  throw: 0x08,
  rethrow: 0x09,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  return: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  returnCall: 0x12,
  returnCallIndirect: 0x13,
  delegate: 0x18,
  catchAll: 0x19,
  drop: 0x1a,
  select: 0x1b,
  selectTyped: 0x1c,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  tableGet: 0x25,
  tableSet: 0x26,
  i32Const: 0x41,
  i64Const: 0x42,
  f32Const: 0x43,
  f64Const: 0x44,
  i32Eq: 0x46,
  i32Ne: 0x47,
  refNull: 0xd0,
  refIsNull: 0xd1,
  refFunc: 0xd2,
  prefixFC: 0xfc,
  prefixSIMD: 0xfd,
  prefixAtomic: 0xfe,
} as const;

function unsupported(what: string, at: number): never {
  throw new HotpatchError(
    'E_UNSUPPORTED_FEATURE',
    `unsupported instruction: ${what} at byte ${at} (wasm-hotpatch handles MVP, multi-value, reference types, bulk memory, SIMD, threads, tail calls and legacy exception handling)`,
  );
}

function skipMemarg(r: ByteReader): void {
  const align = r.u32();
  // Bit 6 of the alignment flags a memory index (multi-memory proposal).
  if (align & 0x40) r.u32();
  r.skipLeb();
}

function skipBlockType(r: ByteReader): void {
  const b = r.bytes[r.pos];
  if (b === 0x40 || b === 0x7f || b === 0x7e || b === 0x7d || b === 0x7c || b === 0x7b || b === 0x70 || b === 0x6f) {
    r.pos++;
    return;
  }
  const typeIndex = r.s33();
  if (typeIndex < 0) unsupported(`block type 0x${(typeIndex & 0x7f).toString(16)}`, r.pos);
}

// A module-level function, not a closure in readInstruction: a closure per instruction decoded
// is an allocation (and, under esbuild's keepNames as tsx runs it, a defineProperty) per instruction.
function readIndex(r: ByteReader, out: Instruction): void {
  out.indexStart = r.pos;
  out.index = r.u32();
}

/** Reads one instruction at `r.pos` into `out` and advances past it. */
export function readInstruction(r: ByteReader, out: Instruction): void {
  const start = r.pos;
  out.start = start;
  out.sub = -1;
  out.index = -1;
  out.indexStart = -1;
  const op = r.u8();
  out.op = op;
  switch (op) {
    case 0x00:
    case 0x01:
    case 0x05:
    case 0x0b:
    case 0x0f:
    case 0x19:
    case 0x1a:
    case 0x1b:
    case 0xd1:
      break;
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x06:
      skipBlockType(r);
      break;
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x0c:
    case 0x0d:
    case 0x10:
    case 0x12:
    case 0x18:
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0xd2:
      readIndex(r, out);
      break;
    case 0x0e: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      break;
    }
    case 0x11:
    case 0x13:
      readIndex(r, out); // type index
      r.u32(); // table index
      break;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) skipBlockType(r);
      break;
    }
    case 0x3f:
    case 0x40:
      r.u32();
      break;
    case 0x41:
      r.s32();
      break;
    case 0x42:
      r.s64();
      break;
    case 0x43:
      r.skip(4);
      break;
    case 0x44:
      r.skip(8);
      break;
    case 0xd0:
      skipBlockType(r);
      break;
    case 0xfc: {
      const sub = r.u32();
      out.sub = sub;
      if (sub <= 7) break; // saturating truncations
      switch (sub) {
        case 8:
          readIndex(r, out);
          r.u32();
          break; // memory.init data, mem
        case 9:
          readIndex(r, out);
          break; // data.drop
        case 10:
          r.u32();
          r.u32();
          break; // memory.copy
        case 11:
          r.u32();
          break; // memory.fill
        case 12:
          readIndex(r, out);
          r.u32();
          break; // table.init elem, table
        case 13:
          readIndex(r, out);
          break; // elem.drop
        case 14:
          readIndex(r, out);
          r.u32();
          break; // table.copy
        case 15:
        case 16:
        case 17:
          readIndex(r, out);
          break; // table.grow/size/fill
        default:
          unsupported(`0xfc ${sub}`, start);
      }
      break;
    }
    case 0xfd: {
      const sub = r.u32();
      out.sub = sub;
      if (sub <= 11 || sub === 92 || sub === 93) skipMemarg(r);
      else if (sub === 12 || sub === 13) r.skip(16);
      else if (sub >= 21 && sub <= 34) r.skip(1);
      else if (sub >= 84 && sub <= 91) {
        skipMemarg(r);
        r.skip(1);
      } else if (sub > 0xff) unsupported(`relaxed SIMD 0xfd ${sub}`, start);
      break;
    }
    case 0xfe: {
      const sub = r.u32();
      out.sub = sub;
      if (sub === 3) r.skip(1);
      else if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) skipMemarg(r);
      else unsupported(`0xfe ${sub}`, start);
      break;
    }
    default:
      if (op >= 0x28 && op <= 0x3e) {
        skipMemarg(r);
        break;
      }
      if (op >= 0x45 && op <= 0xc4) break; // numeric, no immediates
      if (op === 0x14 || op === 0x15 || (op >= 0xd3 && op <= 0xd6)) unsupported(`typed function references (opcode 0x${op.toString(16)})`, start);
      if (op === 0xfb) unsupported('garbage collection (0xfb prefix)', start);
      if (op === 0x1f || op === 0x0a) unsupported(`exception handling with exnref (opcode 0x${op.toString(16)})`, start);
      unsupported(`opcode 0x${op.toString(16)}`, start);
  }
  out.end = r.pos;
}

/** A fresh, reusable instruction record. */
export function newInstruction(): Instruction {
  return { op: 0, sub: -1, start: 0, indexStart: -1, index: -1, end: 0 };
}

/** Reads a constant expression (up to and including its final `end`), calling `visit` for each instruction. */
export function readConstExpr(r: ByteReader, visit?: (ins: Instruction) => void): void {
  const ins = newInstruction();
  let depth = 0;
  for (;;) {
    readInstruction(r, ins);
    visit?.(ins);
    if (ins.op === Op.block || ins.op === Op.loop || ins.op === Op.if || ins.op === Op.try) depth++;
    else if (ins.op === Op.end) {
      if (depth === 0) return;
      depth--;
    }
  }
}
