import { HotpatchError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { type Instruction, newInstruction, Op, readInstruction } from './instructions.js';
import type { FunctionBody } from './module.js';

/**
 * How to renumber the indices a function body refers to. Each map returns the new index; a map
 * may throw a HotpatchError when the reference cannot be carried (for example a data segment
 * that lives only in the baseline).
 */
export interface IndexMaps {
  func(index: number): number;
  type(index: number): number;
  global(index: number): number;
  table(index: number): number;
  tag(index: number): number;
  /** `memory.init` / `data.drop` / `table.init` / `elem.drop`: the segment index, or throw. */
  segment(kind: 'data' | 'elem', index: number): number;
  /**
   * For constants and memory offsets: given the absolute position of an immediate, bytes to emit
   * instead of its LEB, or undefined to keep it. Used to normalise address constants to
   * `symbol + addend` when comparing builds linked with `--emit-relocs`.
   */
  relocAt?(position: number, instructionStart: number): Uint8Array | undefined;
}

const VALTYPE_BLOCK = new Set([0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

/**
 * Re-encodes a function body (locals and code, without its size prefix) with every index
 * renumbered through `maps`. Everything else is copied byte for byte.
 * @throws HotpatchError whatever the maps throw; E_UNSUPPORTED_FEATURE for unknown opcodes
 */
export function relocateBody(bytes: Uint8Array, body: FunctionBody, maps: IndexMaps): Uint8Array {
  const out = new ByteWriter().copy(bytes, body.bodyStart, body.codeStart);
  const r = new ByteReader(bytes, body.codeStart, body.end);
  // One reader for the immediates after the first, moved to each instruction: diff re-encodes
  // every body of two builds several times, so nothing is allocated per instruction.
  const imm = new ByteReader(bytes, body.codeStart, body.end);
  const ins = newInstruction();
  while (!r.done) {
    readInstruction(r, ins);
    const { op, start, end } = ins;
    switch (op) {
      case Op.block:
      case Op.loop:
      case Op.if:
      case Op.try:
        if (VALTYPE_BLOCK.has(bytes[start + 1]!)) out.copy(bytes, start, end);
        else {
          imm.pos = start + 1;
          out.u8(op).s32(maps.type(imm.s33()));
        }
        break;
      case Op.call:
      case Op.returnCall:
      case Op.refFunc:
        out.u8(op).u32(maps.func(ins.index));
        break;
      case Op.callIndirect:
      case Op.returnCallIndirect: {
        imm.pos = start + 1;
        const type = imm.u32();
        const table = imm.u32();
        out.u8(op).u32(maps.type(type)).u32(maps.table(table));
        break;
      }
      case Op.globalGet:
      case Op.globalSet:
        out.u8(op).u32(maps.global(ins.index));
        break;
      case Op.tableGet:
      case Op.tableSet:
        out.u8(op).u32(maps.table(ins.index));
        break;
      case Op.throw:
      case Op.catch:
        out.u8(op).u32(maps.tag(ins.index));
        break;
      case Op.i32Const:
      case Op.i64Const:
        copyWithRelocs(bytes, start, end, out, maps);
        break;
      case Op.prefixFC:
        relocatePrefixFC(bytes, ins, imm, out, maps);
        break;
      default:
        // Loads and stores (and SIMD / atomic ones) may carry a static address in their offset.
        if ((op >= 0x28 && op <= 0x3e) || op === Op.prefixSIMD || op === Op.prefixAtomic) copyWithRelocs(bytes, start, end, out, maps);
        else out.copy(bytes, start, end);
    }
  }
  return out.finish();
}

/** The 0xFC instructions that name a segment or a table; the others are copied. */
function relocatePrefixFC(bytes: Uint8Array, ins: Instruction, imm: ByteReader, out: ByteWriter, maps: IndexMaps): void {
  const sub = ins.sub;
  // Past the sub-opcode and the first index (ins.index), at the second immediate if any.
  imm.pos = ins.indexStart;
  if (sub >= 8 && sub !== 10 && sub !== 11 && sub <= 17) imm.u32();
  switch (sub) {
    case 8: // memory.init data mem
      out.u8(Op.prefixFC).u32(sub).u32(maps.segment('data', ins.index)).u32(imm.u32());
      break;
    case 9: // data.drop
      out.u8(Op.prefixFC).u32(sub).u32(maps.segment('data', ins.index));
      break;
    case 12: {
      // table.init elem table
      const table = imm.u32();
      out.u8(Op.prefixFC).u32(sub).u32(maps.segment('elem', ins.index)).u32(maps.table(table));
      break;
    }
    case 13: // elem.drop
      out.u8(Op.prefixFC).u32(sub).u32(maps.segment('elem', ins.index));
      break;
    case 14: {
      // table.copy dst src
      const src = imm.u32();
      out.u8(Op.prefixFC).u32(sub).u32(maps.table(ins.index)).u32(maps.table(src));
      break;
    }
    case 15:
    case 16:
    case 17:
      out.u8(Op.prefixFC).u32(sub).u32(maps.table(ins.index));
      break;
    default:
      out.copy(bytes, ins.start, ins.end);
  }
}

function copyWithRelocs(bytes: Uint8Array, start: number, end: number, out: ByteWriter, maps: IndexMaps): void {
  if (maps.relocAt) {
    for (let p = start + 1; p < end; p++) {
      const replacement = maps.relocAt(p, start);
      if (replacement === undefined) continue;
      let q = p;
      while (q < end && bytes[q]! & 0x80) q++; // past the LEB replaced
      out
        .copy(bytes, start, p)
        .bytes(replacement)
        .copy(bytes, q + 1, end);
      return;
    }
  }
  out.copy(bytes, start, end);
}

const IDENTITY: IndexMaps = Object.freeze({
  func: (i: number) => i,
  type: (i: number) => i,
  global: (i: number) => i,
  table: (i: number) => i,
  tag: (i: number) => i,
  segment: (kind: 'data' | 'elem', i: number): number => {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', `${kind} segment ${i} cannot be moved to another module`);
  },
});

/** Maps that refuse everything that is not an identity: a starting point to override (one shared, frozen object). */
export function identityMaps(): IndexMaps {
  return IDENTITY;
}
