/**
 * The format layer's encoder: a small Wasm module builder and the pieces prepare, build and the
 * engine's generated modules (committer, JS adapters) write sections with. Decoding lives in
 * module.ts; section order in sections.ts.
 */
import { ByteReader, ByteWriter } from './bytes.js';
import { Op, readConstExpr } from './instructions.js';
import { type ElementSegment, encodeFuncType, type FuncType, type GlobalType, kindByte, type Limits, type TableType, type ValType, valTypeByte } from './module.js';
import { SECTION_ORDER } from './sections.js';

export { encodeFuncType as encodeType } from './module.js';

/** Section ids by name (the spec's numbering). */
export const Section = { custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, start: 8, element: 9, code: 10, data: 11, dataCount: 12, tag: 13 } as const;

const HEADER = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);

/**
 * A whole module from its sections' contents: the header, then the sections in the canonical
 * order whatever order they are given in (custom sections last, in their given order); empty
 * vector sections may be left out by the caller.
 */
export function encodeModule(sections: readonly (readonly [id: number, content: Uint8Array])[]): Uint8Array {
  const rank = (id: number): number => (id === Section.custom ? Number.POSITIVE_INFINITY : SECTION_ORDER[id]!);
  const sorted = [...sections].sort((a, b) => rank(a[0]) - rank(b[0]));
  const w = new ByteWriter().bytes(HEADER);
  for (const [id, content] of sorted) w.u8(id).u32(content.length).bytes(content);
  return w.finish();
}

/** A type section's content from function types. */
export function typeSection(types: readonly FuncType[]): Uint8Array {
  return vector(types.map(encodeFuncType));
}

/** An import entry of a function of type `typeIndex`. */
export function funcImport(module: string, name: string, typeIndex: number): Uint8Array {
  return new ByteWriter().name(module).name(name).u8(kindByte('func')).u32(typeIndex).finish();
}

/** An export entry. */
export function exportEntry(name: string, kind: 'func' | 'table' | 'memory' | 'global' | 'tag', index: number): Uint8Array {
  return new ByteWriter().name(name).u8(kindByte(kind)).u32(index).finish();
}

/** Writes memory or table limits (flags: a maximum, shared). */
export function writeLimits(w: ByteWriter, limits: Limits): ByteWriter {
  const flags = (limits.max === undefined ? 0 : 1) | (limits.shared ? 2 : 0);
  w.u8(flags).u32(limits.min);
  if (limits.max !== undefined) w.u32(limits.max);
  return w;
}

/** Writes a table type: element type, then limits. */
export function writeTableType(w: ByteWriter, t: TableType): ByteWriter {
  return writeLimits(w.u8(valTypeByte(t.element)), t.limits);
}

/** Writes a global type: value type and mutability. */
export function writeGlobalType(w: ByteWriter, g: GlobalType): ByteWriter {
  return w.u8(valTypeByte(g.type)).u8(g.mutable ? 1 : 0);
}

/** A function body from its instructions (no locals), with the trailing `end`. */
export function body(fill: (w: ByteWriter) => void, locals: readonly ValType[] = []): Uint8Array {
  return new ByteWriter()
    .sized((w) => {
      w.u32(locals.length);
      for (const l of locals) w.u32(1).u8(valTypeByte(l));
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
export function activeSegment(table: number, functions: readonly number[], offset = 0): Uint8Array {
  const w = new ByteWriter().u32(2).u32(table).u8(Op.i32Const).s32(offset).u8(Op.end).u8(0x00).u32(functions.length);
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
