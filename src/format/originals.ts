import { HotpatchError } from '../errors.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { newInstruction, Op, readInstruction } from './instructions.js';
import type { BaselineExport, BaselineFunction, BaselineManifest } from './manifest.js';
import { type FunctionBody, forEachInstruction, kindByte, parseModule, type WasmModule } from './module.js';
import { vectorItems } from './sections.js';
import { encodeModule, Section, vector, writeGlobalType, writeLimits, writeTableType } from './encode.js';

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
  functionCount = module.importedFunctions + module.functions.length,
  // Size prefixes re-encoded minimally, so a module built here and one derived from the baseline
  // (deriveOriginals) are byte for byte the same when their bodies are.
  bodyOf: (index: number) => Uint8Array = (index) => originalBody(module, index),
): Originals {
  const { unavailable, refs, included } = scanOriginals(module, patchable);

  const total = functionCount;
  // Only what the original module had: a baseline appends its own table, globals and functions
  // after them (indices never move), and the originals module imports the original's alone.
  const typeOf = (index: number): number =>
    index < module.importedFunctions ? module.imports.filter((i) => i.kind === 'func')[index]!.typeIndex! : module.functions[index - module.importedFunctions]!;

  const imports: Uint8Array[] = [];
  for (let i = 0; i < total; i++) imports.push(new ByteWriter().name(ORIGINALS_LIVE).name(String(i)).u8(kindByte('func')).u32(typeOf(i)).finish());
  const tableTypes = [...module.imports.filter((i) => i.kind === 'table').map((i) => i.table!), ...module.tables];
  for (const [i, t] of tableTypes.slice(0, exported.tables.length).entries())
    imports.push(writeTableType(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.tables[i]!.export).u8(kindByte('table')), t).finish());
  const memoryTypes = [...module.imports.filter((i) => i.kind === 'memory').map((i) => i.memory!), ...module.memories];
  for (const [i, m] of memoryTypes.slice(0, exported.memories.length).entries())
    imports.push(writeLimits(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.memories[i]!.export).u8(kindByte('memory')), m).finish());
  const globalTypes = [...module.imports.filter((i) => i.kind === 'global').map((i) => i.global!), ...module.globals.map((g) => g.type)];
  for (const [i, g] of globalTypes.slice(0, exported.globals.length).entries())
    imports.push(writeGlobalType(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.globals[i]!.export).u8(kindByte('global')), g).finish());
  const tagTypes = [...module.imports.filter((i) => i.kind === 'tag').map((i) => i.typeIndex!), ...module.tags];
  for (const [i, t] of tagTypes.slice(0, exported.tags.length).entries())
    imports.push(new ByteWriter().name(ORIGINALS_BASELINE).name(exported.tags[i]!.export).u8(kindByte('tag')).u8(0).u32(t).finish());

  const { items: typeItems, count: typeCount } = vectorItems(module, 1);
  const sections: [number, Uint8Array][] = [
    [Section.type, new ByteWriter().u32(typeCount).bytes(typeItems).finish()],
    [Section.import, vector(imports)],
    [Section.function, vector(included.map((f) => new ByteWriter().u32(typeOf(f.index)).finish()))],
    [
      Section.export,
      vector(
        included.map((f, k) =>
          new ByteWriter()
            .name(String(f.index))
            .u8(kindByte('func'))
            .u32(total + k)
            .finish(),
        ),
      ),
    ],
  ];
  if (refs.size > 0) {
    // ref.func needs its target declared in an element segment of this module (flags 3: declarative).
    const declared = new ByteWriter().u32(3).u8(0x00).u32(refs.size);
    for (const r of refs) declared.u32(r);
    sections.push([Section.element, vector([declared.finish()])]);
  }
  sections.push([Section.code, vector(included.map((f) => bodyOf(f.index)))]);
  return { bytes: encodeModule(sections), unavailable };
}

/**
 * The originals module of an entry-dispatch baseline, rebuilt from the baseline's own bytes: each
 * patchable body there is the original body with the entry check in front (`global.get; i32.const;
 * i32.and; if … end`), so cutting that block out gives the original back byte for byte. Baselines prepared with
 * safepoints or quiescent consistency rewrite more than the entry and embed their originals instead.
 * @throws HotpatchError E_MANIFEST_INVALID when a body does not start with the entry check
 */
export function deriveOriginals(baseline: Uint8Array | WasmModule, manifest: Pick<BaselineManifest, 'functions' | 'memories' | 'tables' | 'globals' | 'tags'>): Originals {
  const module = baseline instanceof Uint8Array ? parseModule(baseline) : baseline;
  const patchable = manifest.functions.filter((f) => f.slot !== undefined);
  return buildOriginals(module, patchable, manifest, manifest.functions.length, (index) => derivedBody(module, index));
}

/** A function's original body (size prefix included) rebuilt from a baseline: its entry check cut out. */
export function derivedBody(baseline: WasmModule, index: number): Uint8Array {
  return withoutEntryCheck(baseline.bytes, baseline.bodies[index - baseline.importedFunctions]!, index);
}

/** A function's body as the original module has it, size prefix re-encoded minimally (as `derivedBody` writes it). */
export function originalBody(module: WasmModule, index: number): Uint8Array {
  const b = module.bodies[index - module.importedFunctions]!;
  return new ByteWriter()
    .u32(b.end - b.bodyStart)
    .bytes(module.bytes.subarray(b.bodyStart, b.end))
    .finish();
}

const ENTRY_CHECK = [Op.globalGet, Op.i32Const, 0x71 /* i32.and */, Op.if] as const;

/** A body (size prefix included) with its leading entry check removed. */
function withoutEntryCheck(bytes: Uint8Array, b: FunctionBody, index: number): Uint8Array {
  const from = entryCheckEnd(bytes, b, index);
  const content = new ByteWriter().bytes(bytes.subarray(b.bodyStart, b.codeStart)).bytes(bytes.subarray(from, b.end)).finish();
  return new ByteWriter().u32(content.length).bytes(content).finish();
}

/**
 * Whether `derivedBody(baseline, index)` is the original module's body, byte for byte: compared in
 * place (locals, then the code after the entry check), without building either body. prepare runs
 * it on every patchable function of every baseline whose originals are derived.
 * @throws HotpatchError E_MANIFEST_INVALID when the baseline body does not start with the entry check
 */
export function derivesExactly(baseline: WasmModule, module: WasmModule, index: number): boolean {
  const b = baseline.bodies[index - baseline.importedFunctions]!;
  const o = module.bodies[index - module.importedFunctions]!;
  const from = entryCheckEnd(baseline.bytes, b, index);
  return sameRange(baseline.bytes, b.bodyStart, b.codeStart, module.bytes, o.bodyStart, o.codeStart) && sameRange(baseline.bytes, from, b.end, module.bytes, o.codeStart, o.end);
}

function sameRange(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0; i < aEnd - aStart; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

/** Where a baseline body's own code starts: past its entry check. */
function entryCheckEnd(bytes: Uint8Array, b: FunctionBody, index: number): number {
  const r = new ByteReader(bytes, b.codeStart, b.end);
  const ins = newInstruction();
  // global.get $flags; i32.const $bit; i32.and; if: the flag bit of the function's slot.
  let shape = true;
  for (const op of ENTRY_CHECK) {
    if (!shape || r.done) {
      shape = false;
      break;
    }
    readInstruction(r, ins);
    shape = ins.op === op;
  }
  if (!shape) {
    throw new HotpatchError('E_MANIFEST_INVALID', `function ${index} does not start with the entry check its baseline manifest promises`);
  }
  for (let depth = 1; depth > 0; ) {
    readInstruction(r, ins);
    const op: number = ins.op;
    if (op === Op.block || op === Op.loop || op === Op.if || op === Op.try) depth++;
    else if (op === Op.end || op === Op.delegate) depth--;
  }
  return r.pos;
}

/**
 * Which patchable functions can have an original in another module (not those whose bodies use
 * the module's own data or element segments), and the functions their bodies name with `ref.func`.
 */
export function scanOriginals(module: WasmModule, patchable: readonly BaselineFunction[]): { unavailable: Map<number, string>; refs: Set<number>; included: BaselineFunction[] } {
  const unavailable = new Map<number, string>();
  const refs = new Set<number>();
  const included: BaselineFunction[] = [];
  for (const f of patchable) {
    const b = module.bodies[f.index - module.importedFunctions]!;
    let reason: string | undefined;
    const seen: number[] = [];
    forEachInstruction(module.bytes, b, (ins) => {
      if (ins.op === Op.prefixFC && (ins.sub === 8 || ins.sub === 9 || ins.sub === 12 || ins.sub === 13)) {
        reason ??= "its body uses the baseline's data or element segments (memory.init, data.drop, table.init, elem.drop)";
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

  return { unavailable, refs, included };
}
