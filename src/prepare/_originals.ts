import { ByteWriter } from '../format/bytes.js';
import { Op } from '../format/instructions.js';
import type { BaselineExport, BaselineFunction } from '../format/manifest.js';
import { forEachInstruction, kindByte, type WasmModule } from '../format/module.js';
import { vectorItems } from '../format/sections.js';
import { encodeModule, Section, vector, writeGlobalType, writeLimits, writeTableType } from '../format/encode.js';

/** Import module and names the originals module uses; the engine satisfies them from the guest. */
export const ORIGINALS_LIVE = 'live';
export const ORIGINALS_BASELINE = 'baseline';

/** What can go into an originals module, and why some functions cannot. */
export interface Originals {
  readonly bytes: Uint8Array;
  /** Function index → why it has no original (its body uses the baseline's own segments). */
  readonly unavailable: Map<number, string>;
}

/**
 * Builds the originals module of an entry-dispatch baseline: the untouched body of every
 * patchable function, exported under its function index. It imports every baseline function's
 * live entry in index order, and every table, memory, global and tag in order, so function,
 * table, global, tag and type indices mean the same as in the baseline and each body is copied
 * byte for byte. A recursive call in an original therefore goes through the live entry and
 * reaches the current patch, as a Detours trampoline's would.
 */
export function buildOriginals(
  module: WasmModule,
  patchable: readonly BaselineFunction[],
  exported: { memories: readonly BaselineExport[]; tables: readonly BaselineExport[]; globals: readonly BaselineExport[]; tags: readonly BaselineExport[] },
): Originals {
  const unavailable = new Map<number, string>();
  const refs = new Set<number>();
  const included: BaselineFunction[] = [];
  for (const f of patchable) {
    const b = module.bodies[f.index - module.importedFunctions]!;
    let reason: string | undefined;
    const seen: number[] = [];
    forEachInstruction(module.bytes, b, (ins) => {
      if (ins.op === Op.prefixFC && (ins.sub === 8 || ins.sub === 9 || ins.sub === 12 || ins.sub === 13)) {
        reason ??= 'its body uses the baseline\'s data or element segments (memory.init, data.drop, table.init, elem.drop)';
      } else if (ins.op === Op.refFunc) {
        seen.push(ins.index);
      }
    });
    if (reason) {
      unavailable.set(f.index, reason);
      continue;
    }
    for (const r of seen) refs.add(r);
    included.push(f);
  }

  const total = module.importedFunctions + module.functions.length;
  const typeOf = (index: number): number =>
    index < module.importedFunctions ? module.imports.filter((i) => i.kind === 'func')[index]!.typeIndex! : module.functions[index - module.importedFunctions]!;

  const imports: Uint8Array[] = [];
  for (let i = 0; i < total; i++) imports.push(new ByteWriter().name(ORIGINALS_LIVE).name(String(i)).u8(kindByte('func')).u32(typeOf(i)).finish());
  const tableTypes = [...module.imports.filter((i) => i.kind === 'table').map((i) => i.table!), ...module.tables];
  tableTypes.forEach((t, i) => imports.push(writeTableType(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.tables[i]!.export).u8(kindByte('table')), t).finish()));
  const memoryTypes = [...module.imports.filter((i) => i.kind === 'memory').map((i) => i.memory!), ...module.memories];
  memoryTypes.forEach((m, i) => imports.push(writeLimits(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.memories[i]!.export).u8(kindByte('memory')), m).finish()));
  const globalTypes = [...module.imports.filter((i) => i.kind === 'global').map((i) => i.global!), ...module.globals.map((g) => g.type)];
  globalTypes.forEach((g, i) => imports.push(writeGlobalType(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.globals[i]!.export).u8(kindByte('global')), g).finish()));
  const tagTypes = [...module.imports.filter((i) => i.kind === 'tag').map((i) => i.typeIndex!), ...module.tags];
  tagTypes.forEach((t, i) => imports.push(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.tags[i]!.export).u8(kindByte('tag')).u8(0).u32(t).finish()));

  const { items: typeItems, count: typeCount } = vectorItems(module, 1);
  const sections: [number, Uint8Array][] = [
    [Section.type, new ByteWriter().u32(typeCount).bytes(typeItems).finish()],
    [Section.import, vector(imports)],
    [Section.function, vector(included.map((f) => new ByteWriter().u32(typeOf(f.index)).finish()))],
    [Section.export, vector(included.map((f, k) => new ByteWriter().name(String(f.index)).u8(kindByte('func')).u32(total + k).finish()))],
  ];
  if (refs.size > 0) {
    // ref.func needs its target declared in an element segment of this module (flags 3: declarative).
    const declared = new ByteWriter().u32(3).u8(0x00).u32(refs.size);
    for (const r of refs) declared.u32(r);
    sections.push([Section.element, vector([declared.finish()])]);
  }
  const bodies = included.map((f) => {
    const b = module.bodies[f.index - module.importedFunctions]!;
    return module.bytes.subarray(b.start, b.end);
  });
  sections.push([Section.code, vector(bodies)]);
  return { bytes: encodeModule(sections), unavailable };
}
