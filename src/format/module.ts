import { HotpatchError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { newInstruction, Op, readConstExpr, readInstruction } from './instructions.js';
import { SECTION_ORDER } from './sections.js';

/** Value types Node 20's V8 runs without flags. */
export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

/** A function signature. */
export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface Limits {
  readonly min: number;
  readonly max?: number;
  readonly shared: boolean;
  readonly is64: boolean;
}

export interface TableType {
  readonly element: ValType;
  readonly limits: Limits;
}

export interface GlobalType {
  readonly type: ValType;
  readonly mutable: boolean;
}

export type ExternalKind = 'func' | 'table' | 'memory' | 'global' | 'tag';

export interface Import {
  readonly module: string;
  readonly name: string;
  readonly kind: ExternalKind;
  /** func: type index; tag: type index. */
  readonly typeIndex?: number;
  readonly table?: TableType;
  readonly memory?: Limits;
  readonly global?: GlobalType;
}

export interface Export {
  readonly name: string;
  readonly kind: ExternalKind;
  readonly index: number;
}

/** A section's place in the binary: `start` at its id byte, `contentStart` after its size. */
export interface Section {
  readonly id: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
  /** Custom sections only: the section name, and where the payload after it starts. */
  readonly name?: string;
  readonly payloadStart?: number;
}

export interface ElementSegment {
  readonly mode: 'active' | 'passive' | 'declarative';
  readonly table: number;
  /** Raw bytes of the offset expression (active segments), including its `end`. */
  readonly offset?: Uint8Array;
  /** Element type. */
  readonly type: ValType;
  /** Function indices (for index-encoded segments), or raw expression bytes per item. */
  readonly items: readonly number[] | readonly Uint8Array[];
  readonly encoding: 'indices' | 'expressions';
  /** Byte flags as encoded (0–7). */
  readonly flags: number;
}

export interface FunctionBody {
  /** Where the body's size prefix starts. */
  readonly start: number;
  /** Where the locals vector starts (after the size). */
  readonly bodyStart: number;
  /** Where the first instruction starts. */
  readonly codeStart: number;
  readonly end: number;
}

export interface GlobalDef {
  readonly type: GlobalType;
  /** Raw init expression bytes including its `end`. */
  readonly init: Uint8Array;
}

/** A parsed Wasm module: decoded declarations plus the byte ranges of everything else. */
export interface WasmModule {
  readonly bytes: Uint8Array;
  readonly sections: readonly Section[];
  readonly types: readonly FuncType[];
  readonly imports: readonly Import[];
  /** Type index of every defined function, in order. */
  readonly functions: readonly number[];
  readonly tables: readonly TableType[];
  readonly memories: readonly Limits[];
  readonly globals: readonly GlobalDef[];
  readonly tags: readonly number[];
  readonly exports: readonly Export[];
  readonly start?: number;
  readonly elements: readonly ElementSegment[];
  readonly bodies: readonly FunctionBody[];
  readonly dataCount?: number;
  /** Data segments: active ones write memory at instantiation. */
  readonly data: readonly { readonly mode: 'active' | 'passive'; readonly memory: number }[];
  readonly importedFunctions: number;
  readonly importedTables: number;
  readonly importedMemories: number;
  readonly importedGlobals: number;
  /** Function names from the name section, by function index. */
  readonly functionNames: ReadonlyMap<number, string>;
  /** Global names from the name section (extended name section, subsection 7), by global index. */
  readonly globalNames: ReadonlyMap<number, string>;
}

const VALTYPE_BYTES: Record<ValType, number> = {
  i32: 0x7f,
  i64: 0x7e,
  f32: 0x7d,
  f64: 0x7c,
  v128: 0x7b,
  funcref: 0x70,
  externref: 0x6f,
};

/** The value type each byte encodes: VALTYPE_BYTES read backwards. */
const VALTYPES: ReadonlyMap<number, ValType> = new Map(Object.entries(VALTYPE_BYTES).map(([type, byte]) => [byte, type as ValType]));

const KINDS: ExternalKind[] = ['func', 'table', 'memory', 'global', 'tag'];

/** The byte that encodes a value type. */
export function valTypeByte(type: ValType): number {
  return VALTYPE_BYTES[type];
}

/** Encodes a function type entry of the type section. */
export function encodeFuncType(type: FuncType): Uint8Array {
  const w = new ByteWriter().u8(0x60).u32(type.params.length);
  for (const p of type.params) w.u8(valTypeByte(p));
  w.u32(type.results.length);
  for (const r of type.results) w.u8(valTypeByte(r));
  return w.finish();
}

/** The byte that encodes an external kind. */
export function kindByte(kind: ExternalKind): number {
  return KINDS.indexOf(kind);
}

function valType(r: ByteReader): ValType {
  const at = r.pos;
  const byte = r.u8();
  const type = VALTYPES.get(byte);
  if (type) return type;
  if (byte === 0x63 || byte === 0x64) {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', `unsupported feature: typed function references (value type 0x${byte.toString(16)} at byte ${at})`);
  }
  if (byte >= 0x65 && byte <= 0x6e) {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', `unsupported feature: garbage collection (value type 0x${byte.toString(16)} at byte ${at})`);
  }
  throw new HotpatchError('E_INVALID_WASM', `malformed module: unknown value type 0x${byte.toString(16)} at byte ${at}`);
}

function limits(r: ByteReader): Limits {
  const flags = r.u8();
  if (flags > 7) throw new HotpatchError('E_INVALID_WASM', `malformed module: limits flags ${flags} at byte ${r.pos - 1}`);
  const is64 = (flags & 4) !== 0;
  const min = is64 ? Number(r.s64()) : r.u32();
  const max = flags & 1 ? (is64 ? Number(r.s64()) : r.u32()) : undefined;
  if (is64) throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'unsupported feature: memory64');
  return max === undefined ? { min, shared: (flags & 2) !== 0, is64 } : { min, max, shared: (flags & 2) !== 0, is64 };
}

function tableType(r: ByteReader): TableType {
  const element = valType(r);
  return { element, limits: limits(r) };
}

function globalType(r: ByteReader): GlobalType {
  const type = valType(r);
  const mut = r.u8();
  if (mut > 1) throw new HotpatchError('E_INVALID_WASM', `malformed module: global mutability ${mut}`);
  return { type, mutable: mut === 1 };
}

function constExprBytes(r: ByteReader): Uint8Array {
  const start = r.pos;
  readConstExpr(r);
  return r.bytes.subarray(start, r.pos);
}

/** V8's reason a module does not validate, or undefined when it does. */
export function invalidity(bytes: Uint8Array): string | undefined {
  const source = bytes as Uint8Array<ArrayBuffer>;
  if (WebAssembly.validate(source)) return undefined;
  try {
    new WebAssembly.Module(source); // validate() says no, compiling says why
  } catch (error) {
    return (error as Error).message;
  }
  return 'validation failed';
}

/** True when the bytes start with the Wasm magic number. */
export function looksLikeWasm(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

/**
 * Parses a Wasm binary's structure (not its code) and checks it is well-formed enough to rewrite.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_UNSUPPORTED_FEATURE
 */
export function parseModule(bytes: Uint8Array): WasmModule {
  if (!looksLikeWasm(bytes)) {
    throw new HotpatchError('E_NOT_WASM', 'not a WebAssembly module: the file does not start with "\\0asm"');
  }
  const version = bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24);
  if (version !== 1) {
    throw new HotpatchError('E_UNSUPPORTED_FEATURE', version === 0x1000d ? 'unsupported feature: component model (this is a component, not a core module)' : `unsupported binary version ${version}`);
  }
  const r = new ByteReader(bytes, 8);
  const sections: Section[] = [];
  const types: FuncType[] = [];
  const imports: Import[] = [];
  const functions: number[] = [];
  const tables: TableType[] = [];
  const memories: Limits[] = [];
  const globals: GlobalDef[] = [];
  const tags: number[] = [];
  const exports: Export[] = [];
  const elements: ElementSegment[] = [];
  const bodies: FunctionBody[] = [];
  const functionNames = new Map<number, string>();
  const globalNames = new Map<number, string>();
  const data: { mode: 'active' | 'passive'; memory: number }[] = [];
  let start: number | undefined;
  let dataCount: number | undefined;
  let lastOrder = 0;

  while (!r.done) {
    const sectionStart = r.pos;
    const id = r.u8();
    const size = r.u32();
    const contentStart = r.pos;
    const end = contentStart + size;
    if (end > bytes.length) throw new HotpatchError('E_INVALID_WASM', `malformed module: section ${id} runs past the end of the file`);
    const s = new ByteReader(bytes, contentStart, end);
    if (id === 0) {
      const name = s.name();
      sections.push({ id, start: sectionStart, contentStart, end, name, payloadStart: s.pos });
      if (name === 'name') readNames(new ByteReader(bytes, s.pos, end), functionNames, globalNames);
      r.pos = end;
      continue;
    }
    const order = SECTION_ORDER[id];
    if (order === undefined) throw new HotpatchError('E_UNSUPPORTED_FEATURE', `unsupported section id ${id}`);
    if (order <= lastOrder) throw new HotpatchError('E_INVALID_WASM', `malformed module: section ${id} out of order`);
    lastOrder = order;
    sections.push({ id, start: sectionStart, contentStart, end });
    switch (id) {
      case 1: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const form = s.u8();
          if (form !== 0x60) {
            throw new HotpatchError(
              form === 0x4e || form === 0x50 || form === 0x4f || form === 0x5f || form === 0x5e ? 'E_UNSUPPORTED_FEATURE' : 'E_INVALID_WASM',
              form === 0x4e || form === 0x50 || form === 0x4f || form === 0x5f || form === 0x5e
                ? 'unsupported feature: garbage collection (recursive or struct/array types)'
                : `malformed module: type form 0x${form.toString(16)}`,
            );
          }
          const params: ValType[] = [];
          for (let n = s.u32(); n > 0; n--) params.push(valType(s));
          const results: ValType[] = [];
          for (let n = s.u32(); n > 0; n--) results.push(valType(s));
          types.push({ params, results });
        }
        break;
      }
      case 2: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const module = s.name();
          const name = s.name();
          const kind = s.u8();
          switch (kind) {
            case 0:
              imports.push({ module, name, kind: 'func', typeIndex: s.u32() });
              break;
            case 1:
              imports.push({ module, name, kind: 'table', table: tableType(s) });
              break;
            case 2:
              imports.push({ module, name, kind: 'memory', memory: limits(s) });
              break;
            case 3:
              imports.push({ module, name, kind: 'global', global: globalType(s) });
              break;
            case 4:
              s.u8();
              imports.push({ module, name, kind: 'tag', typeIndex: s.u32() });
              break;
            default:
              throw new HotpatchError('E_INVALID_WASM', `malformed module: import kind ${kind}`);
          }
        }
        break;
      }
      case 3: {
        const n = s.u32();
        for (let i = 0; i < n; i++) functions.push(s.u32());
        break;
      }
      case 4: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          if (s.bytes[s.pos] === 0x40) throw new HotpatchError('E_UNSUPPORTED_FEATURE', 'unsupported feature: table with initializer expression');
          tables.push(tableType(s));
        }
        break;
      }
      case 5: {
        const n = s.u32();
        for (let i = 0; i < n; i++) memories.push(limits(s));
        break;
      }
      case 13: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          s.u8();
          tags.push(s.u32());
        }
        break;
      }
      case 6: {
        const n = s.u32();
        for (let i = 0; i < n; i++) globals.push({ type: globalType(s), init: constExprBytes(s) });
        break;
      }
      case 7: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const name = s.name();
          const kind = KINDS[s.u8()];
          if (!kind) throw new HotpatchError('E_INVALID_WASM', 'malformed module: export kind');
          exports.push({ name, kind, index: s.u32() });
        }
        break;
      }
      case 8:
        start = s.u32();
        break;
      case 9: {
        const n = s.u32();
        for (let i = 0; i < n; i++) elements.push(readElement(s));
        break;
      }
      case 12:
        dataCount = s.u32();
        break;
      case 10: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const bodyStartAt = s.pos;
          const size = s.u32();
          const bodyStart = s.pos;
          const bodyEnd = bodyStart + size;
          const groups = s.u32();
          for (let g = 0; g < groups; g++) {
            s.u32();
            valType(s);
          }
          bodies.push({ start: bodyStartAt, bodyStart, codeStart: s.pos, end: bodyEnd });
          s.pos = bodyEnd;
        }
        break;
      }
      case 11: {
        const n = s.u32();
        for (let i = 0; i < n; i++) {
          const flags = s.u32();
          if (flags > 2) throw new HotpatchError('E_INVALID_WASM', `malformed module: data segment flags ${flags}`);
          const memory = flags === 2 ? s.u32() : 0;
          if (flags !== 1) readConstExpr(s);
          s.skip(s.u32());
          data.push({ mode: flags === 1 ? 'passive' : 'active', memory });
        }
        break;
      }
      default:
        break;
    }
    if (id !== 10 && s.pos !== end) {
      throw new HotpatchError('E_INVALID_WASM', `malformed module: section ${id} has ${end - s.pos} trailing bytes`);
    }
    r.pos = end;
  }

  // Indices the checks will follow before V8 ever sees the module: refuse dangling ones here.
  const badType = [...imports.filter((i) => i.kind === 'func' || i.kind === 'tag').map((i) => i.typeIndex!), ...functions, ...tags].find((t) => t >= types.length);
  if (badType !== undefined) throw new HotpatchError('E_INVALID_WASM', `malformed module: type index ${badType} out of range (${types.length} types)`);
  if (functions.length !== bodies.length) {
    throw new HotpatchError('E_INVALID_WASM', `malformed module: ${functions.length} functions declared but ${bodies.length} bodies`);
  }
  const count = (kind: ExternalKind): number => imports.filter((i) => i.kind === kind).length;
  return {
    bytes,
    sections,
    types,
    imports,
    functions,
    tables,
    memories,
    globals,
    tags,
    exports,
    ...(start === undefined ? {} : { start }),
    elements,
    bodies,
    ...(dataCount === undefined ? {} : { dataCount }),
    data,
    importedFunctions: count('func'),
    importedTables: count('table'),
    importedMemories: count('memory'),
    importedGlobals: count('global'),
    functionNames,
    globalNames,
  };
}

function readElement(s: ByteReader): ElementSegment {
  const flags = s.u32();
  if (flags > 7) throw new HotpatchError('E_INVALID_WASM', `malformed module: element segment flags ${flags}`);
  const passiveOrDeclarative = (flags & 1) !== 0;
  const explicitTable = (flags & 2) !== 0;
  const usesExpressions = (flags & 4) !== 0;
  const mode: ElementSegment['mode'] = passiveOrDeclarative ? (explicitTable ? 'declarative' : 'passive') : 'active';
  let table = 0;
  let offset: Uint8Array | undefined;
  if (mode === 'active') {
    if (explicitTable) table = s.u32();
    offset = constExprBytes(s);
  }
  let type: ValType = 'funcref';
  if (passiveOrDeclarative || explicitTable) {
    if (usesExpressions) type = valType(s);
    else if (s.u8() !== 0x00) throw new HotpatchError('E_INVALID_WASM', 'malformed module: element kind');
  }
  const n = s.u32();
  const items: number[] | Uint8Array[] = [];
  if (usesExpressions) {
    for (let i = 0; i < n; i++) (items as Uint8Array[]).push(constExprBytes(s));
  } else {
    for (let i = 0; i < n; i++) (items as number[]).push(s.u32());
  }
  return {
    mode,
    table,
    ...(offset ? { offset } : {}),
    type,
    items,
    encoding: usesExpressions ? 'expressions' : 'indices',
    flags,
  };
}

function readNames(r: ByteReader, functionNames: Map<number, string>, globalNames: Map<number, string>): void {
  // A malformed name section is ignored (engines do the same): names are debug information.
  try {
    while (!r.done) {
      const id = r.u8();
      const size = r.u32();
      const end = r.pos + size;
      const target = id === 1 ? functionNames : id === 7 ? globalNames : undefined;
      if (target) {
        const sub = new ByteReader(r.bytes, r.pos, end);
        const n = sub.u32();
        for (let i = 0; i < n; i++) {
          const index = sub.u32();
          target.set(index, sub.name());
        }
      }
      r.pos = end;
    }
  } catch {
    functionNames.clear();
    globalNames.clear();
  }
}

/** Function indices referenced by `ref.func` in a constant expression. */
export function refFuncsIn(expr: Uint8Array): number[] {
  const out: number[] = [];
  readConstExpr(new ByteReader(expr), (ins) => {
    if (ins.op === Op.refFunc) out.push(ins.index);
  });
  return out;
}

/** The signature of function `index` (imported or defined). */
export function functionType(module: WasmModule, index: number): FuncType {
  let typeIndex: number | undefined;
  if (index < module.importedFunctions) {
    let seen = 0;
    for (const imp of module.imports) {
      if (imp.kind !== 'func') continue;
      if (seen++ === index) {
        typeIndex = imp.typeIndex;
        break;
      }
    }
  } else {
    typeIndex = module.functions[index - module.importedFunctions];
  }
  const type = typeIndex === undefined ? undefined : module.types[typeIndex];
  if (!type) throw new HotpatchError('E_INVALID_WASM', `malformed module: function ${index} has no type`);
  return type;
}

/** A signature as text, e.g. `(i32, i32) -> (i64)`. */
export function signatureText(type: FuncType): string {
  return `(${type.params.join(', ')}) -> (${type.results.join(', ')})`;
}

/** Custom sections with a given name, as payload byte ranges. */
export function customSections(module: WasmModule, name: string): Section[] {
  return module.sections.filter((s) => s.id === 0 && s.name === name);
}

/** Iterates over every instruction of a function body. */
export function forEachInstruction(bytes: Uint8Array, body: FunctionBody, visit: (ins: ReturnType<typeof newInstruction>) => void): void {
  const r = new ByteReader(bytes, body.codeStart, body.end);
  const ins = newInstruction();
  while (!r.done) {
    readInstruction(r, ins);
    visit(ins);
  }
}
