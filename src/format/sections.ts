import { ByteReader, ByteWriter } from './bytes.js';
import type { WasmModule } from './module.js';

/** Canonical position of each non-custom section id: tag (13) sits between memory and global, datacount (12) before code. The one table of it. */
export const SECTION_ORDER: Readonly<Record<number, number>> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

/** The bytes of a vector section's existing items (after its count) and the count. */
export function vectorItems(module: WasmModule, id: number): { count: number; items: Uint8Array } {
  const section = module.sections.find((s) => s.id === id);
  if (!section) return { count: 0, items: new Uint8Array(0) };
  const r = new ByteReader(module.bytes, section.contentStart, section.end);
  const count = r.u32();
  return { count, items: module.bytes.subarray(r.pos, section.end) };
}

/** Section content for a vector: the existing items of section `id`, then `extra` items. */
export function appendToVector(module: WasmModule, id: number, extra: readonly Uint8Array[]): Uint8Array {
  const { count, items } = vectorItems(module, id);
  const w = new ByteWriter().u32(count + extra.length).bytes(items);
  for (const item of extra) w.bytes(item);
  return w.finish();
}

/**
 * Re-emits a module with some sections' contents replaced (or added, in canonical order) and
 * extra bytes appended at the end. Every other byte is copied unchanged.
 */
export function rebuildModule(
  module: WasmModule,
  replacements: ReadonlyMap<number, Uint8Array>,
  trailing: readonly Uint8Array[] = [],
): Uint8Array {
  const out = new ByteWriter().bytes(module.bytes.subarray(0, 8));
  const pending = new Map(replacements);
  const emit = (id: number, content: Uint8Array): void => {
    out.u8(id).u32(content.length).bytes(content);
  };
  const flushBefore = (order: number): void => {
    const ids = [...pending.keys()].filter((id) => SECTION_ORDER[id]! < order).sort((a, b) => SECTION_ORDER[a]! - SECTION_ORDER[b]!);
    for (const id of ids) {
      emit(id, pending.get(id)!);
      pending.delete(id);
    }
  };
  for (const section of module.sections) {
    if (section.id !== 0) flushBefore(SECTION_ORDER[section.id]!);
    const replacement = pending.get(section.id);
    if (section.id !== 0 && replacement) {
      emit(section.id, replacement);
      pending.delete(section.id);
    } else {
      out.bytes(module.bytes.subarray(section.start, section.end));
    }
  }
  flushBefore(Infinity);
  for (const bytes of trailing) out.bytes(bytes);
  return out.finish();
}
