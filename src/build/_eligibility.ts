import { ByteReader } from '../format/bytes.js';
import { newInstruction, Op, readInstruction } from '../format/instructions.js';
import { HOOKS, IMPORT_SHADOW, SHADOW_FUNCTIONS } from '../format/check.js';
import { signatureText, type WasmModule } from '../format/module.js';
import { remapConstExpr } from '../format/encode.js';
import { type Build, type Matching, functionCount, range, typeOf } from './_match.js';
import type { LeftOut } from './_changes.js';
import { staticRange } from './_statics.js';
import { locationLineChanges } from './_locations.js';

/** Why a change cannot be carried by a patch: a stable code, the item, and what to do. */
export interface DiffReason {
  readonly code:
    | 'SIGNATURE_CHANGED'
    | 'FUNCTION_REMOVED'
    | 'GLOBAL_ADDED'
    | 'GLOBAL_REMOVED'
    | 'GLOBAL_CHANGED'
    | 'DATA_CHANGED'
    | 'MEMORY_CHANGED'
    | 'IMPORTS_CHANGED'
    | 'EXPORTS_CHANGED'
    | 'TABLE_CHANGED'
    | 'ELEMENTS_CHANGED'
    | 'START_CHANGED'
    | 'TAGS_CHANGED'
    | 'STATIC_ADDED'
    | 'STATIC_MOVED'
    | 'STATIC_RESIZED'
    | 'ADDRESS_CONSTANTS_CHANGED'
    | 'LAYOUT_CHANGED'
    | 'NOT_PATCHABLE'
    | 'USES_SEGMENTS';
  readonly item: string;
  readonly message: string;
}

const REBUILD = 'ship it with a new baseline (prepare the new build)';

/** A function's name for messages: name section, else export name, else `#N`. */
export const fname = (m: WasmModule, i: number): string => m.functionNames.get(i) ?? m.exports.find((e) => e.kind === 'func' && e.index === i)?.name ?? `#${i}`;
/** A global's name for messages: name section, else export name, else `global N`. */
export const gname = (m: WasmModule, i: number): string => m.globalNames.get(i) ?? m.exports.find((e) => e.kind === 'global' && e.index === i)?.name ?? `global ${i}`;
const same = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]));

/**
 * Everything outside function bodies that a patch cannot change in a running guest: imports,
 * exports, globals, memory, data, tables, element segments, start, tags, and removed functions or
 * changed signatures. Compared with new function indices mapped to old identities.
 */
export function structuralReasons(oldBuild: Build, newBuild: Build, matching: Matching, leftOut: LeftOut[] = []): DiffReason[] {
  const o = oldBuild.module;
  const n = newBuild.module;
  const reasons: DiffReason[] = [];
  const add = (code: DiffReason['code'], item: string, message: string): void => {
    reasons.push({ code, item, message });
  };
  const toOld = (i: number): number => matching.newToOld.get(i) ?? -1 - i;
  const mapFunctions = new Map<number, number>();
  for (let i = 0; i < functionCount(n); i++) mapFunctions.set(i, toOld(i));

  const importKey = (m: WasmModule, k: number): string => {
    const imp = m.imports[k]!;
    const type = imp.kind === 'func' ? signatureText(m.types[imp.typeIndex!]!) : JSON.stringify(imp.table ?? imp.memory ?? imp.global ?? imp.typeIndex);
    return `${imp.kind} ${imp.module}.${imp.name} ${type}`;
  };
  const oldImports = new Set(o.imports.map((_, k) => importKey(o, k)));
  const newImports = new Set(n.imports.map((_, k) => importKey(n, k)));
  // Shadow state comes from the host to the patch, not to the running guest: the patch imports it.
  for (const k of newImports) if (!oldImports.has(k) && !shadowKeys(n).has(k)) add('IMPORTS_CHANGED', k, `import ${k} is new: the running guest was instantiated without it; ${REBUILD}`);
  for (const k of oldImports) if (!newImports.has(k)) add('IMPORTS_CHANGED', k, `import ${k} was removed or changed; ${REBUILD}`);

  const exportKey = (e: WasmModule['exports'][number], mapFn: (i: number) => number): string => `${e.kind} ${e.name} → ${e.kind === 'func' ? mapFn(e.index) : e.index}`;
  const oldExports = new Set(o.exports.map((e) => exportKey(e, (i) => i)));
  for (const e of n.exports) {
    if (isHookExport(e) && !o.exports.some((x) => x.name === e.name)) continue; // carried as the patch's hook
    if (!oldExports.has(exportKey(e, toOld))) {
      const before = o.exports.find((x) => x.name === e.name);
      add(
        'EXPORTS_CHANGED',
        `export ${e.name}`,
        before ? `export "${e.name}" now names a different ${e.kind}; ${REBUILD}` : `export "${e.name}" is new: hosts of the running guest cannot see it; ${REBUILD}`,
      );
    }
  }
  const newExportNames = new Set(n.exports.map((e) => e.name));
  for (const e of o.exports) if (!newExportNames.has(e.name)) add('EXPORTS_CHANGED', `export ${e.name}`, `export "${e.name}" was removed; ${REBUILD}`);

  const oldGlobalCount = o.importedGlobals + o.globals.length;
  const newGlobalCount = n.importedGlobals + n.globals.length;
  for (let g = oldGlobalCount; g < newGlobalCount; g++) {
    add(
      'GLOBAL_ADDED',
      gname(n, g),
      `global \`${gname(n, g)}\` was added and is used outside the changed code (or exported, or not a plain constant initialiser): the running guest has no storage for it; use it only from the changed functions (the patch then owns it), or ${REBUILD}`,
    );
  }
  for (let g = newGlobalCount; g < oldGlobalCount; g++) add('GLOBAL_REMOVED', gname(o, g), `global \`${gname(o, g)}\` was removed; ${REBUILD}`);
  for (let k = 0; k < Math.min(o.globals.length, n.globals.length); k++) {
    const a = o.globals[k]!;
    const b = n.globals[k]!;
    const g = o.importedGlobals + k;
    if (a.type.type !== b.type.type || a.type.mutable !== b.type.mutable) {
      add('GLOBAL_CHANGED', gname(n, g), `global \`${gname(n, g)}\` changed type (${a.type.mutable ? 'mut ' : ''}${a.type.type} → ${b.type.mutable ? 'mut ' : ''}${b.type.type}); ${REBUILD}`);
    } else if (!same(a.init, remapConstExpr(b.init, mapFunctions))) {
      const layout = /stack_pointer|heap_base|data_end/.test(gname(n, g)) ? ' (the memory layout changed: statics were added, removed or resized)' : '';
      add('GLOBAL_CHANGED', gname(n, g), `global \`${gname(n, g)}\` has a new initial value${layout}; a running guest keeps the old one; ${REBUILD}`);
    }
  }

  const limits = (m: WasmModule) => [...m.imports.filter((i) => i.kind === 'memory').map((i) => i.memory!), ...m.memories];
  const [om, nm] = [limits(o), limits(n)];
  if (JSON.stringify(om) !== JSON.stringify(nm)) add('MEMORY_CHANGED', 'memory', `memory limits changed (${JSON.stringify(om)} → ${JSON.stringify(nm)}); ${REBUILD}`);

  const dataSegments = (m: WasmModule) => m.sections.find((s) => s.id === 11);
  const segments = (m: WasmModule): Uint8Array[] => {
    const section = dataSegments(m);
    if (!section) return [];
    const r = new ByteReader(m.bytes, section.contentStart, section.end);
    return Array.from({ length: r.u32() }, () => {
      const start = r.pos;
      const flags = r.u32();
      if (flags === 2) r.u32();
      if (flags !== 1) {
        const ins = newInstruction();
        do readInstruction(r, ins);
        while (ins.op !== Op.end);
      }
      r.skip(r.u32());
      return m.bytes.subarray(start, r.pos);
    });
  };
  const [od, nd] = [segments(o), segments(n)];
  const names = newBuild.linking?.segmentNames ?? [];
  for (let k = 0; k < Math.max(od.length, nd.length); k++) {
    if (same(od[k], nd[k])) continue;
    const lines = od[k] && nd[k] ? locationLineChanges(od[k]!, nd[k]!, staticRange(o)) : undefined;
    if (lines) {
      const shifts = [...new Set(lines.map((l) => l.new - l.old))].map((x) => (x > 0 ? `+${x}` : `${x}`));
      leftOut.push({
        item: `data[${k}]`,
        reason: 'LINE_NUMBERS',
        message: `data segment ${k} differs only in the line fields of ${lines.length} panic location${lines.length === 1 ? '' : 's'} (Rust's core::panic::Location), shifted by ${shifts.join(', ')}; left out: the running guest's panics keep reporting the old lines`,
        constants: lines.map((l) => ({ old: l.old, new: l.new, address: l.address })),
      });
      continue;
    }
    const what = names[k] ? ` (${names[k]})` : '';
    add(
      'DATA_CHANGED',
      `data[${k}]${what}`,
      od[k] === undefined
        ? `data segment ${k}${what} is new: initial memory contents the running guest never got; ${REBUILD}`
        : nd[k] === undefined
          ? `data segment ${k}${what} was removed; ${REBUILD}`
          : `data segment ${k}${what} changed (${describeByteChange(od[k]!, nd[k]!)}): a constant, string or initialised static was edited, added or moved; ${REBUILD}`,
    );
  }

  const tables = (m: WasmModule) => [...m.imports.filter((i) => i.kind === 'table').map((i) => i.table!), ...m.tables];
  if (JSON.stringify(tables(o)) !== JSON.stringify(tables(n))) add('TABLE_CHANGED', 'tables', `tables changed (${JSON.stringify(tables(o))} → ${JSON.stringify(tables(n))}); ${REBUILD}`);

  const elementKey = (seg: WasmModule['elements'][number], mapFn: (i: number) => number): string =>
    JSON.stringify({
      mode: seg.mode,
      table: seg.table,
      offset: seg.offset ? [...seg.offset] : null,
      items: seg.encoding === 'indices' ? (seg.items as number[]).map(mapFn) : (seg.items as Uint8Array[]).map((x) => [...remapConstExpr(x, mapFunctions)]),
    });
  for (let k = 0; k < Math.max(o.elements.length, n.elements.length); k++) {
    const a = o.elements[k];
    const b = n.elements[k];
    if (a && b && elementKey(a, (i) => i) === elementKey(b, toOld)) continue;
    add(
      'ELEMENTS_CHANGED',
      `elem[${k}]`,
      `element segment ${k} (function pointers in table ${b?.table ?? a?.table}) ${!a ? 'is new' : !b ? 'was removed' : 'changed: a function pointer was added, removed or reordered'}; the running guest's table keeps the old entries; ${REBUILD}`,
    );
  }

  if ((o.start === undefined) !== (n.start === undefined) || (n.start !== undefined && toOld(n.start) !== o.start)) {
    add('START_CHANGED', 'start', `the start function changed; it ran when the guest started and will not run again; ${REBUILD}`);
  }
  const tags = (m: WasmModule) => [...m.imports.filter((i) => i.kind === 'tag').map((i) => signatureText(m.types[i.typeIndex!]!)), ...m.tags.map((t) => signatureText(m.types[t]!))];
  if (JSON.stringify(tags(o)) !== JSON.stringify(tags(n))) add('TAGS_CHANGED', 'tags', `exception tags changed; ${REBUILD}`);

  for (const oi of range(o.importedFunctions, functionCount(o))) {
    if (!matching.oldToNew.has(oi)) add('FUNCTION_REMOVED', fname(o, oi), `function \`${fname(o, oi)}\` was removed (or changed beyond recognition in a build without names); ${REBUILD}`);
  }
  for (const [ni, oi] of matching.newToOld) {
    const before = signatureText(typeOf(o, oi));
    const after = signatureText(typeOf(n, ni));
    if (before !== after)
      add(
        'SIGNATURE_CHANGED',
        fname(n, ni),
        `\`${fname(n, ni)}\` changed signature ${before} → ${after}: callers in the running guest pass the old arguments; add a new function and keep the old signature, or ${REBUILD}`,
      );
  }
  return reasons;
}

/** A function import from the host's shadow state module (`hotpatch.shadow`). */
export const isShadowImport = (imp: WasmModule['imports'][number]): boolean => imp.kind === 'func' && imp.module === IMPORT_SHADOW && (SHADOW_FUNCTIONS as readonly string[]).includes(imp.name);
const shadowKeys = (m: WasmModule): Set<string> => new Set(m.imports.filter(isShadowImport).map((imp) => `func ${imp.module}.${imp.name} ${signatureText(m.types[imp.typeIndex!]!)}`));

/** An exported function named as a lifecycle hook (`hotpatch_post_revert`, …): the fixed build's hook for the patch. */
export const isHookExport = (e: WasmModule['exports'][number]): boolean => e.kind === 'func' && (Object.values(HOOKS) as string[]).includes(e.name);

function describeByteChange(a: Uint8Array, b: Uint8Array): string {
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  return a.length === b.length ? `bytes differ from offset ${first} of the segment entry` : `size ${a.length} → ${b.length} bytes`;
}
