import { HotpatchError } from '../errors.js';
import { ByteWriter } from '../format/bytes.js';
import { IMPORT_BASELINE, IMPORT_LIVE } from '../format/check.js';
import { encodeFuncType, type FuncType, kindByte, signatureText, valTypeByte, type WasmModule } from '../format/module.js';
import { identityMaps, type IndexMaps, relocateBody } from '../format/relocate.js';
import { encodeModule, Section, vector, writeLimits } from '../format/encode.js';
import type { Build, Matching } from './_match.js';
import { typeOf } from './_match.js';

/** A function of the new build that goes into the patch, and the export that carries it. */
export interface Carried {
  readonly index: number;
  /** Export name, for functions that replace a baseline function. */
  readonly export?: string;
}

/**
 * Builds the patch module: the carried functions' bodies from the new build, bound back to the
 * baseline. Calls to functions the patch does not carry go through `live` imports (so they reach
 * whatever patch owns them), and memory, tables, globals and tags are the baseline's own
 * (`baseline` imports). Index spaces are rebuilt; bodies are otherwise copied byte for byte.
 * @throws HotpatchError E_UNSUPPORTED_FEATURE when a body uses the build's own data or element segments
 */
export function emitPatch(newBuild: Build, matching: Matching, carried: readonly Carried[], ownGlobals: ReadonlySet<number> = new Set()): Uint8Array {
  const n: WasmModule = newBuild.module;
  const local = new Map(carried.map((c, k) => [c.index, k]));
  const types: FuncType[] = [];
  const typeIds = new Map<string, number>();
  const typeId = (t: FuncType): number => {
    const key = signatureText(t);
    let id = typeIds.get(key);
    if (id === undefined) {
      id = types.push(t) - 1;
      typeIds.set(key, id);
    }
    return id;
  };

  // First pass: what the bodies refer to.
  const funcImports: number[] = []; // old function indices, in import order
  const globals = new Set<number>();
  const tables = new Set<number>();
  const tags = new Set<number>();
  const collect: IndexMaps = {
    ...identityMaps(),
    func: (i) => {
      if (!local.has(i)) {
        const old = matching.newToOld.get(i);
        if (old === undefined) throw new HotpatchError('E_UNSUPPORTED_FEATURE', `calls function #${i}, which exists in neither build's baseline nor the patch`);
        if (!funcImports.includes(old)) funcImports.push(old);
      }
      return i;
    },
    global: (g) => (globals.add(g), g),
    table: (t) => (tables.add(t), t),
    tag: (t) => (tags.add(t), t),
  };
  for (const c of carried) relocateBody(n.bytes, n.bodies[c.index - n.importedFunctions]!, collect);

  const oldIndexToImport = new Map(funcImports.map((old, k) => [old, k]));
  // Globals the patch owns (new in this build, used only by carried code) are defined, not imported.
  const globalList = [...globals].filter((g) => !ownGlobals.has(g)).sort((a, b) => a - b);
  const ownList = [...globals].filter((g) => ownGlobals.has(g)).sort((a, b) => a - b);
  const tableList = [...tables].sort((a, b) => a - b);
  const tagList = [...tags].sort((a, b) => a - b);
  const hasMemory = n.memories.length + n.importedMemories > 0;
  const funcBase = funcImports.length;
  const importedGlobals = n.imports.filter((i) => i.kind === 'global').map((i) => i.global!);
  const importedTables = n.imports.filter((i) => i.kind === 'table').map((i) => i.table!);
  const importedTags = n.imports.filter((i) => i.kind === 'tag').map((i) => i.typeIndex!);

  // Imports, in index order per kind: functions (live entries), tables, memory, globals, tags.
  const imports: Uint8Array[] = [];
  for (const old of funcImports) {
    const newIndex = matching.oldToNew.get(old)!;
    imports.push(new ByteWriter().name(IMPORT_LIVE).name(`#${old}`).u8(kindByte('func')).u32(typeId(typeOf(n, newIndex))).finish());
  }
  for (const t of tableList) {
    const type = t < importedTables.length ? importedTables[t]! : n.tables[t - importedTables.length]!;
    imports.push(
      writeLimits(new ByteWriter().name(IMPORT_BASELINE).name(`table:${t}`).u8(kindByte('table')).u8(valTypeByte(type.element)), { min: type.limits.min, shared: false, is64: false }).finish(),
    );
  }
  if (hasMemory) {
    const m = n.memories[0] ?? n.imports.find((i) => i.kind === 'memory')!.memory!;
    // A shared memory import must declare its maximum; otherwise leave it open so any current size fits.
    const limits = m.shared ? m : { min: m.min, shared: false, is64: false };
    imports.push(writeLimits(new ByteWriter().name(IMPORT_BASELINE).name('memory').u8(kindByte('memory')), limits).finish());
  }
  for (const g of globalList) {
    const type = g < importedGlobals.length ? importedGlobals[g]! : n.globals[g - importedGlobals.length]!.type;
    imports.push(new ByteWriter().name(IMPORT_BASELINE).name(`global:${g}`).u8(kindByte('global')).u8(valTypeByte(type.type)).u8(type.mutable ? 1 : 0).finish());
  }
  for (const t of tagList) {
    const type = t < importedTags.length ? importedTags[t]! : n.tags[t - importedTags.length]!;
    imports.push(new ByteWriter().name(IMPORT_BASELINE).name(`tag:${t}`).u8(kindByte('tag')).u8(0).u32(typeId(n.types[type]!)).finish());
  }

  // Second pass: the bodies, renumbered.
  const refs = new Set<number>();
  const emit: IndexMaps = {
    ...identityMaps(),
    func: (i) => {
      const target = local.has(i) ? funcBase + local.get(i)! : oldIndexToImport.get(matching.newToOld.get(i)!)!;
      return target;
    },
    type: (t) => typeId(n.types[t]!),
    global: (g) => (ownGlobals.has(g) ? globalList.length + ownList.indexOf(g) : globalList.indexOf(g)),
    table: (t) => tableList.indexOf(t),
    tag: (t) => tagList.indexOf(t),
  };
  const bodies = carried.map((c) => {
    const code = relocateBody(n.bytes, n.bodies[c.index - n.importedFunctions]!, {
      ...emit,
      func: (i) => {
        const target = emit.func(i);
        refs.add(target);
        return target;
      },
    });
    return new ByteWriter().u32(code.length).bytes(code).finish();
  });
  const functionTypes = carried.map((c) => new ByteWriter().u32(typeId(typeOf(n, c.index))).finish());
  const exports = carried.flatMap((c, k) => (c.export === undefined ? [] : [new ByteWriter().name(c.export).u8(kindByte('func')).u32(funcBase + k).finish()]));

  // ref.func needs its targets declared; declaring every referenced function is harmless.
  const declared = new ByteWriter().u32(3).u8(0x00).u32(refs.size);
  for (const r of refs) declared.u32(r);

  // Names, so stack traces through the patch say which function and that it is the patch's.
  const names = new ByteWriter().u32(carried.length);
  carried.forEach((c, k) => names.u32(funcBase + k).name(`${n.functionNames.get(c.index) ?? `#${c.index}`} [patch]`));
  const nameSection = new ByteWriter().name('name').u8(1).sized((w) => w.bytes(names.finish())).finish();

  const ownGlobalEntries = ownList.map((g) => {
    const def = n.globals[g - importedGlobals.length]!;
    return new ByteWriter().u8(valTypeByte(def.type.type)).u8(def.type.mutable ? 1 : 0).bytes(def.init).finish();
  });
  return encodeModule([
    [Section.type, vector(types.map(encodeFuncType))],
    [Section.import, vector(imports)],
    [Section.function, vector(functionTypes)],
    ...(ownGlobalEntries.length > 0 ? [[Section.global, vector(ownGlobalEntries)] as const] : []),
    [Section.export, vector(exports)],
    [Section.element, vector(refs.size > 0 ? [declared.finish()] : [])],
    [Section.code, vector(bodies)],
    [Section.custom, nameSection],
  ]);
}
