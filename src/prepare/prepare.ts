import { HotpatchError } from '../errors.js';
import { ByteReader, ByteWriter } from '../format/bytes.js';
import { newInstruction, Op, readConstExpr, readInstruction } from '../format/instructions.js';
import {
  BASELINE_SECTION,
  type BaselineExport,
  type BaselineFunction,
  type BaselineManifest,
  type Dispatch,
  decodeBaselineManifest,
  encodeBaselineManifest,
  FORMAT_VERSION,
  sha256,
} from '../format/manifest.js';
import {
  customSections,
  type ElementSegment,
  type FuncType,
  functionType,
  kindByte,
  parseModule,
  signatureText,
  valTypeByte,
  type WasmModule,
} from '../format/module.js';
import { appendToVector, rebuildModule } from '../format/sections.js';

/** Options of {@link prepare}. */
export interface PrepareOptions {
  /**
   * How calls reach a patch. `entry` (default): calls stay direct and each patchable function
   * starts with a check of its own flag, diverting through its slot only while patched.
   * `indirect`: every call to a patchable function goes through `call_indirect` on the table.
   */
  readonly dispatch?: Dispatch;
  /** Only functions whose name or an export name matches become patchable. */
  readonly only?: RegExp | string;
  /** Functions whose name or an export name matches stay unpatchable. */
  readonly exclude?: RegExp | string;
}

/** A hotpatch-ready module and its manifest. */
export interface Baseline {
  readonly bytes: Uint8Array;
  readonly manifest: BaselineManifest;
}

/** Export names prepare adds; a module that already uses them is rejected. */
export const HOTPATCH_TABLE_EXPORT = 'hotpatch.table';
export const HOTPATCH_SETTER_EXPORT = 'hotpatch.set';

const CHUNK = 128; // flag setters dispatch over this many slots each: keeps br_table nesting shallow

function toRegExp(value: RegExp | string | undefined, option: string): RegExp | undefined {
  if (value === undefined || value instanceof RegExp) return value;
  try {
    return new RegExp(value);
  } catch (cause) {
    throw new HotpatchError('E_BAD_OPTIONS', `--${option} is not a valid regular expression: ${value}`, { cause });
  }
}

/** Encodes a function type entry of the type section. */
function encodeType(type: FuncType): Uint8Array {
  const w = new ByteWriter().u8(0x60).u32(type.params.length);
  for (const p of type.params) w.u8(valTypeByte(p));
  w.u32(type.results.length);
  for (const r of type.results) w.u8(valTypeByte(r));
  return w.finish();
}

/** A function body from its instructions (no locals), with the trailing `end`. */
function body(fill: (w: ByteWriter) => void): Uint8Array {
  return new ByteWriter()
    .sized((w) => {
      w.u32(0); // no local declarations
      fill(w);
      w.u8(Op.end);
    })
    .finish();
}

/** Copies a constant expression, renumbering `ref.func` through `map`. */
function remapConstExpr(expr: Uint8Array, map: ReadonlyMap<number, number>): Uint8Array {
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

function encodeElement(seg: ElementSegment, map: ReadonlyMap<number, number>): Uint8Array {
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

function sameSelection(manifest: BaselineManifest, dispatch: Dispatch, only?: RegExp, exclude?: RegExp): boolean {
  return manifest.dispatch === dispatch && manifest.only === only?.source && manifest.exclude === exclude?.source;
}

/**
 * Turns a Wasm module into a hotpatch-ready baseline: every selected function gets a slot in an
 * exported funcref table, and every way into it (direct calls, the module's own tables, exports,
 * `ref.func`) reaches whatever that slot holds once it is patched. Nothing is removed or renamed;
 * existing function, global and table indices do not change.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_UNSUPPORTED_FEATURE, E_ALREADY_PREPARED, E_BAD_OPTIONS
 */
export async function prepare(wasm: Uint8Array, options: PrepareOptions = {}): Promise<Baseline> {
  const dispatch = options.dispatch ?? 'entry';
  if (dispatch !== 'entry' && dispatch !== 'indirect') {
    throw new HotpatchError('E_BAD_OPTIONS', `dispatch must be "entry" or "indirect", not ${JSON.stringify(dispatch)}`);
  }
  const only = toRegExp(options.only, 'only');
  const exclude = toRegExp(options.exclude, 'exclude');
  const module = parseModule(wasm);

  if (customSections(module, BASELINE_SECTION).length > 0) {
    const manifest = decodeBaselineManifest(wasm);
    if (sameSelection(manifest, dispatch, only, exclude)) return { bytes: wasm, manifest };
    throw new HotpatchError(
      'E_ALREADY_PREPARED',
      `module is already a baseline (dispatch ${manifest.dispatch}${manifest.only ? `, only /${manifest.only}/` : ''}${manifest.exclude ? `, exclude /${manifest.exclude}/` : ''}); prepare the original module again instead`,
    );
  }
  if (!WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>)) {
    let detail = 'validation failed';
    try {
      new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
    } catch (error) {
      detail = (error as Error).message;
    }
    throw new HotpatchError('E_INVALID_WASM', `invalid WebAssembly module: ${detail}`);
  }
  for (const e of module.exports) {
    if (e.name.startsWith('hotpatch.')) {
      throw new HotpatchError('E_ALREADY_PREPARED', `module already exports "${e.name}": the hotpatch.* export names are reserved`);
    }
  }

  const functions = describeFunctions(module, only, exclude);
  const patchable = functions.filter((f) => f.slot !== undefined);
  if (patchable.length === 0) {
    throw new HotpatchError(
      'E_NOTHING_TO_PATCH',
      module.functions.length === 0 ? 'module defines no functions: nothing to make patchable' : 'no function matches the selection (--only / --exclude): nothing to make patchable',
    );
  }
  const bytes = rewrite(module, functions, patchable, dispatch);

  const { exports: reexports, memories, tables, globals } = importableExports(module);
  const assembled = rebuildModule(module, bytes.sections(reexports));
  if (!WebAssembly.validate(assembled as Uint8Array<ArrayBuffer>)) {
    // A bug in prepare, never the user's: fail loudly rather than hand back a wrong module.
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'prepare produced an invalid module; please report this with the input file');
  }
  const id = await sha256(assembled);
  const manifest: BaselineManifest = {
    format: FORMAT_VERSION,
    id,
    source: await sha256(wasm),
    dispatch,
    ...(only ? { only: only.source } : {}),
    ...(exclude ? { exclude: exclude.source } : {}),
    table: HOTPATCH_TABLE_EXPORT,
    setter: HOTPATCH_SETTER_EXPORT,
    slots: patchable.length,
    functions,
    memories,
    tables,
    globals,
  };
  const section = encodeBaselineManifest(manifest);
  const out = new Uint8Array(assembled.length + section.length);
  out.set(assembled);
  out.set(section, assembled.length);
  return { bytes: out, manifest };
}

/** Names, signatures and slots of every function; imported ones are listed as not patchable. */
function describeFunctions(module: WasmModule, only?: RegExp, exclude?: RegExp): BaselineFunction[] {
  const exportNames = new Map<number, string[]>();
  for (const e of module.exports) {
    if (e.kind !== 'func') continue;
    const list = exportNames.get(e.index) ?? [];
    list.push(e.name);
    exportNames.set(e.index, list);
  }
  const total = module.importedFunctions + module.functions.length;
  const out: BaselineFunction[] = [];
  let slot = 0;
  for (let index = 0; index < total; index++) {
    const exports = exportNames.get(index) ?? [];
    const name = module.functionNames.get(index) ?? exports[0] ?? `#${index}`;
    const signature = signatureText(functionType(module, index));
    const names = [name, ...exports];
    let reason: string | undefined;
    if (index < module.importedFunctions) reason = 'imported';
    else if (only && !names.some((n) => only.test(n))) reason = `not selected by --only /${only.source}/`;
    else if (exclude && names.some((n) => exclude.test(n))) reason = `excluded by --exclude /${exclude.source}/`;
    out.push(reason === undefined ? { index, name, exports, signature, slot: slot++ } : { index, name, exports, signature, reason });
  }
  return out;
}

/** Exports patches may import: existing export names where there are some, new `hotpatch.*` names otherwise. */
function importableExports(module: WasmModule) {
  const existing = (kind: 'memory' | 'table' | 'global', index: number): string | undefined =>
    module.exports.find((e) => e.kind === kind && e.index === index)?.name;
  const exports: Uint8Array[] = [];
  const add = (kind: 'memory' | 'table' | 'global', index: number): string => {
    const name = existing(kind, index);
    if (name !== undefined) return name;
    const added = kind === 'memory' ? (index === 0 ? 'hotpatch.memory' : `hotpatch.memory.${index}`) : `hotpatch.${kind}.${index}`;
    exports.push(new ByteWriter().name(added).u8(kindByte(kind)).u32(index).finish());
    return added;
  };
  const memoryCount = module.importedMemories + module.memories.length;
  const memories: BaselineExport[] = Array.from({ length: memoryCount }, (_, index) => ({ index, export: add('memory', index) }));
  const importedTables = module.imports.filter((i) => i.kind === 'table').map((i) => i.table!);
  const tables: BaselineExport[] = [...importedTables, ...module.tables].map((t, index) => ({
    index,
    export: add('table', index),
    type: t.element,
  }));
  const importedGlobals = module.imports.filter((i) => i.kind === 'global').map((i) => i.global!);
  const globals: BaselineExport[] = [...importedGlobals, ...module.globals.map((g) => g.type)].map((g, index) => ({
    index,
    export: add('global', index),
    type: g.type,
    mutable: g.mutable,
  }));
  return { exports, memories, tables, globals };
}

interface Rewrite {
  sections(extraExports: readonly Uint8Array[]): Map<number, Uint8Array>;
}

/** Builds the new and changed sections for the chosen dispatch design. */
function rewrite(module: WasmModule, functions: readonly BaselineFunction[], patchable: readonly BaselineFunction[], dispatch: Dispatch): Rewrite {
  const n = patchable.length;
  const definedFunctions = module.importedFunctions + module.functions.length;
  const typeBase = module.types.length;
  const globalBase = module.importedGlobals + module.globals.length;
  const table = module.importedTables + module.tables.length;
  const typeIndexOf = (index: number): number => {
    if (index >= module.importedFunctions) return module.functions[index - module.importedFunctions]!;
    return module.imports.filter((i) => i.kind === 'func')[index]!.typeIndex!;
  };

  // New types: the setter (slot, target, patched) and the flag setters (slot, value).
  const setterType = typeBase;
  const flagSetterType = typeBase + 1;
  const newTypes = [
    encodeType({ params: ['i32', 'funcref', 'i32'], results: [] }),
    encodeType({ params: ['i32', 'i32'], results: [] }),
  ];

  // New globals (entry dispatch): a bypass register, then one "patched" flag per slot.
  const bypass = globalBase;
  const flag = (slot: number): number => globalBase + 1 + slot;
  const newGlobals: Uint8Array[] = [];
  if (dispatch === 'entry') {
    const mutI32Zero = new ByteWriter().u8(0x7f).u8(1).u8(Op.i32Const).u8(0).u8(Op.end).finish();
    for (let i = 0; i <= n; i++) newGlobals.push(mutI32Zero);
  }

  // New functions, appended after every existing one: per slot a thunk, then the setters.
  const thunk = (slot: number): number => definedFunctions + slot;
  const setter = definedFunctions + n;
  const chunks = dispatch === 'entry' ? Math.ceil(n / CHUNK) : 0;
  const flagSetter = (chunk: number): number => setter + 1 + chunk;
  const newFunctionTypes: number[] = [];
  const newBodies: Uint8Array[] = [];
  const localGets = (w: ByteWriter, count: number): void => {
    for (let i = 0; i < count; i++) w.u8(Op.localGet).u32(i);
  };

  for (const f of patchable) {
    const slot = f.slot!;
    const typeIndex = typeIndexOf(f.index);
    const params = module.types[typeIndex]!.params.length;
    newFunctionTypes.push(typeIndex);
    if (dispatch === 'entry') {
      // The "original" entry: raise the bypass register so the function's own check lets this one call through.
      newBodies.push(
        body((w) => {
          w.u8(Op.globalGet).u32(flag(slot)).u8(Op.if).u8(0x40);
          w.u8(Op.i32Const).s32(slot + 1).u8(Op.globalSet).u32(bypass);
          w.u8(Op.end);
          localGets(w, params);
          w.u8(Op.call).u32(f.index);
        }),
      );
    } else {
      // The live entry: every way in that is not a rewritten call site goes through here.
      newBodies.push(
        body((w) => {
          localGets(w, params);
          w.u8(Op.i32Const).s32(slot).u8(Op.callIndirect).u32(typeIndex).u32(table);
        }),
      );
    }
  }
  newFunctionTypes.push(setterType);
  newBodies.push(
    body((w) => {
      w.u8(Op.localGet).u32(0).u8(Op.localGet).u32(1).u8(Op.tableSet).u32(table);
      if (dispatch === 'entry') {
        w.u8(Op.i32Const).u8(0).u8(Op.globalSet).u32(bypass);
        switchTable(
          w,
          chunks,
          () => w.u8(Op.localGet).u32(0).u8(Op.i32Const).s32(Math.log2(CHUNK)).u8(0x76 /* i32.shr_u */),
          (c) => w.u8(Op.localGet).u32(0).u8(Op.localGet).u32(2).u8(Op.call).u32(flagSetter(c)).u8(Op.return),
        );
      }
    }),
  );
  for (let c = 0; c < chunks; c++) {
    const first = c * CHUNK;
    const count = Math.min(CHUNK, n - first);
    newFunctionTypes.push(flagSetterType);
    newBodies.push(
      body((w) => {
        switchTable(
          w,
          count,
          () => w.u8(Op.localGet).u32(0).u8(Op.i32Const).s32(first).u8(0x6b /* i32.sub */),
          (k) => w.u8(Op.localGet).u32(1).u8(Op.globalSet).u32(flag(first + k)).u8(Op.return));
      }),
    );
  }

  // Which function each way in should name: with indirect dispatch, the live entry thunk.
  const redirect = new Map<number, number>();
  if (dispatch === 'indirect') for (const f of patchable) redirect.set(f.index, thunk(f.slot!));

  // Table layout: [dispatch slots | live entries | originals].
  const dispatchInit = patchable.map((f) => (dispatch === 'entry' ? thunk(f.slot!) : f.index));
  const liveEntries = patchable.map((f) => (dispatch === 'entry' ? f.index : thunk(f.slot!)));
  const originals = patchable.map((f) => (dispatch === 'entry' ? thunk(f.slot!) : f.index));
  const tableSize = 3 * n;
  const newTable = new ByteWriter().u8(0x70).u8(0x01).u32(tableSize).u32(tableSize).finish();
  const hotpatchSegment = new ByteWriter()
    .u32(2)
    .u32(table)
    .u8(Op.i32Const)
    .u8(0)
    .u8(Op.end)
    .u8(0x00)
    .u32(tableSize);
  for (const i of [...dispatchInit, ...liveEntries, ...originals]) hotpatchSegment.u32(i);

  // Code: prefix (entry) or rewritten call sites (indirect) for existing bodies; then the new ones.
  const slotOf = new Map<number, number>();
  for (const f of patchable) slotOf.set(f.index, f.slot!);
  const code = new ByteWriter().u32(module.bodies.length + newBodies.length);
  module.bodies.forEach((b, i) => {
    const index = module.importedFunctions + i;
    const slot = slotOf.get(index);
    if (dispatch === 'entry') {
      if (slot === undefined) {
        code.bytes(module.bytes.subarray(b.start, b.end));
        return;
      }
      const typeIndex = module.functions[i]!;
      const params = module.types[typeIndex]!.params.length;
      const prefix = new ByteWriter();
      prefix.u8(Op.globalGet).u32(flag(slot)).u8(Op.if).u8(0x40);
      prefix.u8(Op.globalGet).u32(bypass).u8(Op.i32Const).s32(slot + 1).u8(Op.i32Ne).u8(Op.if).u8(0x40);
      localGets(prefix, params);
      prefix.u8(Op.i32Const).s32(slot).u8(Op.callIndirect).u32(typeIndex).u32(table).u8(Op.return);
      prefix.u8(Op.end);
      prefix.u8(Op.i32Const).u8(0).u8(Op.globalSet).u32(bypass);
      prefix.u8(Op.end);
      const p = prefix.finish();
      code.sized((w) => {
        w.bytes(module.bytes.subarray(b.bodyStart, b.codeStart)).bytes(p).bytes(module.bytes.subarray(b.codeStart, b.end));
      });
    } else {
      code.bytes(rewriteCalls(module, b, slotOf, redirect, typeIndexOf, table));
    }
  });
  for (const b of newBodies) code.bytes(b);

  return {
    sections(extraExports) {
      const sections = new Map<number, Uint8Array>();
      sections.set(1, appendToVector(module, 1, newTypes));
      sections.set(3, appendToVector(module, 3, newFunctionTypes.map((t) => new ByteWriter().u32(t).finish())));
      sections.set(4, appendToVector(module, 4, [newTable]));
      if (newGlobals.length > 0 || redirect.size > 0) {
        const globals = module.globals.map((g) => {
          const w = new ByteWriter().u8(valTypeByte(g.type.type)).u8(g.type.mutable ? 1 : 0);
          return w.bytes(redirect.size > 0 ? remapConstExpr(g.init, redirect) : g.init).finish();
        });
        sections.set(6, new ByteWriter().u32(globals.length + newGlobals.length).bytes(concat([...globals, ...newGlobals])).finish());
      }
      const exports = module.exports.map((e) => {
        const index = e.kind === 'func' ? (redirect.get(e.index) ?? e.index) : e.index;
        return new ByteWriter().name(e.name).u8(kindByte(e.kind)).u32(index).finish();
      });
      exports.push(new ByteWriter().name(HOTPATCH_TABLE_EXPORT).u8(kindByte('table')).u32(table).finish());
      exports.push(new ByteWriter().name(HOTPATCH_SETTER_EXPORT).u8(kindByte('func')).u32(setter).finish());
      exports.push(...extraExports);
      sections.set(7, new ByteWriter().u32(exports.length).bytes(concat(exports)).finish());
      const elements = module.elements.map((seg) => encodeElement(seg, redirect));
      elements.push(hotpatchSegment.finish());
      sections.set(9, new ByteWriter().u32(elements.length).bytes(concat(elements)).finish());
      sections.set(10, code.finish());
      return sections;
    },
  };
}

/**
 * Emits a jump table over `count` cases on the i32 `emitIndex` pushes: nested blocks, one `br_table`,
 * and each case's code after the block it leaves. Out-of-range values fall through past all cases.
 */
function switchTable(w: ByteWriter, count: number, emitIndex: () => void, emitCase: (k: number) => void): void {
  for (let k = 0; k <= count; k++) w.u8(Op.block).u8(0x40);
  emitIndex();
  w.u8(Op.brTable).u32(count);
  for (let k = 0; k < count; k++) w.u32(k);
  w.u32(count);
  for (let k = 0; k < count; k++) {
    w.u8(Op.end);
    emitCase(k);
  }
  w.u8(Op.end);
}

/** Indirect dispatch: `call f` → `i32.const slot; call_indirect`, and `ref.func f` → the live entry. */
function rewriteCalls(
  module: WasmModule,
  b: WasmModule['bodies'][number],
  slotOf: ReadonlyMap<number, number>,
  redirect: ReadonlyMap<number, number>,
  typeIndexOf: (index: number) => number,
  table: number,
): Uint8Array {
  const bytes = module.bytes;
  const out = new ByteWriter().bytes(bytes.subarray(b.bodyStart, b.codeStart));
  const r = new ByteReader(bytes, b.codeStart, b.end);
  const ins = newInstruction();
  let from = b.codeStart;
  while (!r.done) {
    readInstruction(r, ins);
    if (ins.op === Op.call || ins.op === Op.returnCall) {
      const slot = slotOf.get(ins.index);
      if (slot === undefined) continue;
      out.bytes(bytes.subarray(from, ins.start));
      out.u8(Op.i32Const).s32(slot);
      out.u8(ins.op === Op.call ? Op.callIndirect : Op.returnCallIndirect).u32(typeIndexOf(ins.index)).u32(table);
      from = ins.end;
    } else if (ins.op === Op.refFunc && redirect.has(ins.index)) {
      out.bytes(bytes.subarray(from, ins.indexStart)).u32(redirect.get(ins.index)!);
      from = ins.end;
    }
  }
  out.bytes(bytes.subarray(from, b.end));
  const content = out.finish();
  return new ByteWriter().u32(content.length).bytes(content).finish();
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
