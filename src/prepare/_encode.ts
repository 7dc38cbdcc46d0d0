import { ByteReader, ByteWriter } from '../format/bytes.js';
import { Op, readConstExpr } from '../format/instructions.js';
import { type ElementSegment, type GlobalType, type Limits, type TableType, valTypeByte } from '../format/module.js';

export { encodeFuncType as encodeType } from '../format/module.js';

export function writeLimits(w: ByteWriter, limits: Limits): ByteWriter {
  const flags = (limits.max === undefined ? 0 : 1) | (limits.shared ? 2 : 0);
  w.u8(flags).u32(limits.min);
  if (limits.max !== undefined) w.u32(limits.max);
  return w;
}

export function writeTableType(w: ByteWriter, t: TableType): ByteWriter {
  return writeLimits(w.u8(valTypeByte(t.element)), t.limits);
}

export function writeGlobalType(w: ByteWriter, g: GlobalType): ByteWriter {
  return w.u8(valTypeByte(g.type)).u8(g.mutable ? 1 : 0);
}

/** A function body from its instructions (no locals), with the trailing `end`. */
export function body(fill: (w: ByteWriter) => void): Uint8Array {
  return new ByteWriter()
    .sized((w) => {
      w.u32(0); // no local declarations
      fill(w);
      w.u8(Op.end);
    })
    .finish();
}

/** Pushes a function's parameters, in order. */
export function localGets(w: ByteWriter, count: number): void {
  for (let i = 0; i < count; i++) w.u8(Op.localGet).u32(i);
}

/** Copies a constant expression, renumbering `ref.func` through `map`. */
export function remapConstExpr(expr: Uint8Array, map: ReadonlyMap<number, number>): Uint8Array {
  const w = new ByteWriter();
  let from = 0;
  readConstExpr(new ByteReader(expr), (ins) => {
    if (ins.op === Op.refFunc && map.has(ins.index)) {
      w.bytes(expr.subarray(from, ins.indexStart)).u32(map.get(ins.index)!);
      from = ins.end;
    }
  });
  return w.bytes(expr.subarray(from)).finish();
}

/** Re-encodes an element segment as it was, with function indices renumbered through `map`. */
export function encodeElement(seg: ElementSegment, map: ReadonlyMap<number, number>): Uint8Array {
  const w = new ByteWriter().u32(seg.flags);
  if (seg.mode === 'active') {
    if (seg.flags & 2) w.u32(seg.table);
    w.bytes(seg.offset!);
  }
  if (seg.mode !== 'active' || seg.flags & 2) {
    if (seg.encoding === 'expressions') w.u8(valTypeByte(seg.type));
    else w.u8(0x00);
  }
  w.u32(seg.items.length);
  for (const item of seg.items) {
    if (typeof item === 'number') w.u32(map.get(item) ?? item);
    else w.bytes(remapConstExpr(item, map));
  }
  return w.finish();
}

/** An active funcref element segment (flags 2: explicit table) at offset 0 of `table`. */
export function activeSegment(table: number, functions: readonly number[]): Uint8Array {
  const w = new ByteWriter().u32(2).u32(table).u8(Op.i32Const).u8(0).u8(Op.end).u8(0x00).u32(functions.length);
  for (const f of functions) w.u32(f);
  return w.finish();
}

/** A vector section's content from its items. */
export function vector(items: readonly Uint8Array[]): Uint8Array {
  const w = new ByteWriter().u32(items.length);
  for (const item of items) w.bytes(item);
  return w.finish();
}

/** Emits a section (id, size, content). */
export function section(id: number, content: Uint8Array): Uint8Array {
  return new ByteWriter().u8(id).u32(content.length).bytes(content).finish();
}
