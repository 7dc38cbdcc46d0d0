import { ByteReader, ByteWriter } from '../format/bytes.js';
import { newInstruction, Op, readInstruction } from '../format/instructions.js';
import type { BaselineFunction, Dispatch } from '../format/manifest.js';
import { kindByte, type FunctionBody, valTypeByte, type WasmModule } from '../format/module.js';
import { appendToVector } from '../format/sections.js';
import { activeSegment, body, encodeElement, encodeType, localGets, remapConstExpr, vector } from '../format/encode.js';

const I32_AND = 0x71;
const I32_OR = 0x72;
const I32_XOR = 0x73;
const I32_SHL = 0x74;
const I32_DIV_U = 0x6e;
const I32_REM_U = 0x70;
const SELECT = 0x1b;

/** Export names prepare adds; a module that already uses them is rejected. */
export const HOTPATCH_TABLE_EXPORT = 'hotpatch.table';
export const HOTPATCH_SETTER_EXPORT = 'hotpatch.set';
export const HOTPATCH_ACTIVE_EXPORT = 'hotpatch.active';

const CHUNK = 128; // flag and activity setters dispatch over this many globals each: keeps br_table nesting shallow
/**
 * Entry dispatch: patchable functions per flag global, one bit each. Bits 0–12 keep the entry
 * check's `i32.const` at 1–2 bytes; a flag global costs 5 bytes and a case in the flag setter ~13,
 * so packing 13 to a global saves ~10 bytes a function against one global each.
 */
export const FLAG_BITS = 13;

/** Where a busy guest polls for pending patch work (see {@link rewrite}). */
export interface SafepointOptions {
  /** Poll at every loop header. */
  readonly loops: boolean;
  /** Poll at every function entry (for guests that recurse without loops). */
  readonly entries: boolean;
  /** Polls between two calls of the poll handler. */
  readonly interval: number;
}

/** The new and changed sections, and where the table regions start. */
export interface Rewritten {
  /** Table index of function 0's live entry. */
  readonly live: number;
  /** Table index of the poll handler's slot, when safepoints were inserted. */
  readonly pollSlot?: number;
  /** Function index of `hotpatch.active(slot)`, in quiescent mode. */
  readonly activeGetter?: number;
  /** Table index of slot 0's original (indirect dispatch only). */
  readonly original?: number;
  sections(extraExports: readonly Uint8Array[]): Map<number, Uint8Array>;
}

/**
 * Builds the sections of a baseline. Everything new is appended (types, globals, functions, one
 * table, one element segment, exports), so no existing index changes.
 *
 * Table layout: `[0, n)` dispatch slots, one per patchable function (null until first set, with entry
 * dispatch); `[n, n + T)` the live entry of
 * every function (T = all functions, imported ones included); with indirect dispatch,
 * `[n + T, 2n + T)` the original of each slot.
 *
 * Entry dispatch: each patchable function starts with `global.get $flags; i32.const $bit; i32.and;
 * if … return_call_indirect (slot s) end` (see FLAG_BITS); calls stay direct. The taken branch
 * always leaves, so the common path is a load, a test and a branch (a fall-through that merged back into the body costs 13% more
 * on recursive code, measured with bench/call-overhead); it leaves by a tail call, so diverting
 * never grows the stack (tail-recursive code stays tail-recursive when patched).
 *
 * Indirect dispatch: every `call f` / `return_call f` becomes a `call_indirect` /
 * `return_call_indirect` on slot s, and every other way in (exports, element segments, `ref.func`)
 * names a thunk that tail-calls slot s.
 */
export function rewrite(
  module: WasmModule,
  functions: readonly BaselineFunction[],
  patchable: readonly BaselineFunction[],
  dispatch: Dispatch,
  safepoints?: SafepointOptions,
  quiescent = false,
): Rewritten {
  const n = patchable.length;
  const total = functions.length;
  const definedEnd = module.importedFunctions + module.functions.length;
  const typeBase = module.types.length;
  const globalBase = module.importedGlobals + module.globals.length;
  const table = module.importedTables + module.tables.length;
  const funcTypes = module.imports.filter((i) => i.kind === 'func').map((i) => i.typeIndex!);
  const typeIndexOf = (index: number): number => (index < module.importedFunctions ? funcTypes[index]! : module.functions[index - module.importedFunctions]!);
  const paramCount = (index: number): number => module.types[typeIndexOf(index)]!.params.length;

  const setterType = typeBase;
  const flagSetterType = typeBase + 1;
  const voidType = typeBase + 2;
  const newTypes = [encodeType({ params: ['i32', 'funcref', 'i32'], results: [] }), encodeType({ params: ['i32', 'i32', 'i32'], results: [] }), encodeType({ params: [], results: [] })];

  // Slot s's flag is bit s % FLAG_BITS of flag global s / FLAG_BITS.
  const flagGlobals = dispatch === 'entry' ? Math.ceil(n / FLAG_BITS) : 0;
  const flag = (slot: number): number => globalBase + Math.floor(slot / FLAG_BITS);
  const flagBit = (slot: number): number => 1 << (slot % FLAG_BITS);
  const newGlobals: Uint8Array[] = [];
  if (dispatch === 'entry') {
    const mutI32Zero = new ByteWriter().u8(0x7f).u8(1).u8(Op.i32Const).u8(0).u8(Op.end).finish();
    for (let i = 0; i < flagGlobals; i++) newGlobals.push(mutI32Zero);
  }
  // Quiescent mode: one activation count per slot, kept by the function's own body.
  const activeBase = globalBase + newGlobals.length;
  if (quiescent) {
    const mutI32Zero = new ByteWriter().u8(0x7f).u8(1).u8(Op.i32Const).u8(0).u8(Op.end).finish();
    for (let i = 0; i < n; i++) newGlobals.push(mutI32Zero);
  }
  // Safepoints count down a budget; at zero the poll handler in the table's poll slot runs.
  const budget = globalBase + newGlobals.length;
  if (safepoints) newGlobals.push(new ByteWriter().u8(0x7f).u8(1).u8(Op.i32Const).s32(safepoints.interval).u8(Op.end).finish());

  // New functions, after every existing one: indirect dispatch's per-slot thunks, the setter, the flag setters.
  const thunks = dispatch === 'indirect' ? n : 0;
  const thunk = (slot: number): number => definedEnd + slot;
  const setter = definedEnd + thunks;
  const chunks = Math.ceil(flagGlobals / CHUNK);
  const flagSetter = (chunk: number): number => setter + 1 + chunk;
  const newFunctionTypes: number[] = [];
  const newBodies: Uint8Array[] = [];

  if (dispatch === 'indirect') {
    for (const f of patchable) {
      newFunctionTypes.push(typeIndexOf(f.index));
      newBodies.push(
        body((w) => {
          localGets(w, paramCount(f.index));
          // A tail call: a `return_call_indirect` through the guest's table that lands here must
          // not grow the stack (clang musttail interpreters recurse millions deep).
          w.u8(Op.i32Const).s32(f.slot!).u8(Op.returnCallIndirect).u32(typeIndexOf(f.index)).u32(table);
        }),
      );
    }
  }
  // hotpatch.set(slot, target, patched): the table write and the flag bit together. Local 3: the
  // slot's bit; its flag setter gets the global's number, the bits to keep, and the bit to set.
  newFunctionTypes.push(setterType);
  newBodies.push(
    body(
      (w) => {
        w.u8(Op.localGet).u32(0).u8(Op.localGet).u32(1).u8(Op.tableSet).u32(table);
        if (chunks === 0) return;
        w.u8(Op.i32Const).s32(1).u8(Op.localGet).u32(0).u8(Op.i32Const).s32(FLAG_BITS).u8(I32_REM_U).u8(I32_SHL).u8(Op.localSet).u32(3);
        switchTable(
          w,
          chunks,
          () =>
            w
              .u8(Op.localGet)
              .u32(0)
              .u8(Op.i32Const)
              .s32(FLAG_BITS * CHUNK)
              .u8(I32_DIV_U),
          (c) =>
            w
              .u8(Op.localGet)
              .u32(0)
              .u8(Op.i32Const)
              .s32(FLAG_BITS)
              .u8(I32_DIV_U)
              .u8(Op.localGet)
              .u32(3)
              .u8(Op.i32Const)
              .s32(-1)
              .u8(I32_XOR)
              .u8(Op.localGet)
              .u32(3)
              .u8(Op.i32Const)
              .s32(0)
              .u8(Op.localGet)
              .u32(2)
              .u8(SELECT)
              .u8(Op.call)
              .u32(flagSetter(c))
              .u8(Op.return),
        );
      },
      chunks > 0 ? ['i32'] : [],
    ),
  );
  const safepoint = setter + 1 + chunks;
  // After the safepoint functions (2 when present): the activity getter and its chunks.
  const activeGetter = safepoint + (safepoints ? 2 : 0);
  const pollSlot = safepoints ? n + total + (dispatch === 'indirect' ? n : 0) : -1;
  for (let c = 0; c < chunks; c++) {
    // (global number, bits to keep, bit to set): flag global g = g & keep | set.
    const first = c * CHUNK;
    newFunctionTypes.push(flagSetterType);
    newBodies.push(
      body((w) =>
        switchTable(
          w,
          Math.min(CHUNK, flagGlobals - first),
          () => w.u8(Op.localGet).u32(0).u8(Op.i32Const).s32(first).u8(0x6b /* i32.sub */),
          (k) =>
            w
              .u8(Op.globalGet)
              .u32(globalBase + first + k)
              .u8(Op.localGet)
              .u32(1)
              .u8(I32_AND)
              .u8(Op.localGet)
              .u32(2)
              .u8(I32_OR)
              .u8(Op.globalSet)
              .u32(globalBase + first + k)
              .u8(Op.return),
        ),
      ),
    );
  }

  if (safepoints) {
    // $safepoint: refill the budget, then call whatever the runtime put in the poll slot.
    newFunctionTypes.push(voidType);
    newBodies.push(body((w) => w.u8(Op.i32Const).s32(safepoints.interval).u8(Op.globalSet).u32(budget).u8(Op.i32Const).s32(pollSlot).u8(Op.callIndirect).u32(voidType).u32(table)));
    // The poll slot's first occupant: nothing to do.
    newFunctionTypes.push(voidType);
    newBodies.push(body(() => {}));
  }
  if (quiescent) {
    // hotpatch.active(slot) -> i32: how many activations of the slot's own body are running.
    const getterType = typeBase + newTypes.length;
    newTypes.push(encodeType({ params: ['i32'], results: ['i32'] }));
    for (const b of globalReader({ globals: activeBase, count: n, offset: 0, chunkFunction: activeGetter + 1, zero: [Op.i32Const, 0] })) {
      newFunctionTypes.push(getterType);
      newBodies.push(b);
    }
  }
  const counting = (slot: number, delta: 1 | -1): Uint8Array =>
    new ByteWriter()
      .u8(Op.globalGet)
      .u32(activeBase + slot)
      .u8(Op.i32Const)
      .s32(1)
      .u8(delta === 1 ? 0x6a : 0x6b)
      .u8(Op.globalSet)
      .u32(activeBase + slot)
      .finish();
  // A multi-value function's wrapper needs a block type by index: one new type per result list.
  const resultTypes = new Map<string, number>();
  const blockTypeFor = (index: number): Uint8Array => {
    const results = module.types[typeIndexOf(index)]!.results;
    if (results.length === 0) return new Uint8Array([0x40]);
    if (results.length === 1) return new Uint8Array([valTypeByte(results[0]!)]);
    const key = results.join(',');
    let t = resultTypes.get(key);
    if (t === undefined) {
      t = typeBase + newTypes.length;
      newTypes.push(encodeType({ params: [], results }));
      resultTypes.set(key, t);
    }
    return new ByteWriter().s32(t).finish();
  };

  // Both polls end the same way: at a count of zero, call the poll handler.
  const pollAtZero = safepoints ? new ByteWriter().u8(0x45 /* i32.eqz */).u8(Op.if).u8(0x40).u8(Op.call).u32(safepoint).u8(Op.end).finish() : undefined;
  // Entry polls count a global budget down (a recursion has no local that survives the calls).
  const poll = safepoints
    ? new ByteWriter().u8(Op.globalGet).u32(budget).u8(Op.i32Const).u8(1).u8(0x6b /* i32.sub */).u8(Op.globalSet).u32(budget).u8(Op.globalGet).u32(budget).bytes(pollAtZero!).finish()
    : undefined;
  // Loop polls count in a local of their own function: a register, no memory traffic. The
  // interval is a power of two, so the test is a mask and the counter never needs a reset.
  const loopPoll = (local: number): Uint8Array =>
    new ByteWriter()
      .u8(Op.localGet)
      .u32(local)
      .u8(Op.i32Const)
      .u8(1)
      .u8(0x6a /* i32.add */)
      .u8(Op.localTee)
      .u32(local)
      .u8(Op.i32Const)
      .s32(safepoints!.interval - 1)
      .u8(0x71 /* i32.and */)
      .bytes(pollAtZero!)
      .finish();

  // Which function each way in names: with indirect dispatch, the thunk.
  const redirect = new Map<number, number>();
  if (dispatch === 'indirect') for (const f of patchable) redirect.set(f.index, thunk(f.slot!));

  const live = n;
  const original = dispatch === 'indirect' ? n + total : undefined;
  // Entry dispatch leaves the dispatch slots uninitialised (null): a slot is called through only
  // while its flag is set, and the setter writes both, so its initial content is never read (the
  // engine's unpatched state of a slot is the live entry). Indirect dispatch calls every slot.
  const slotsInitialised = dispatch === 'indirect';
  const layout = [
    ...(slotsInitialised ? patchable.map((f) => f.index) : []),
    ...functions.map((f) => redirect.get(f.index) ?? f.index),
    ...(dispatch === 'indirect' ? patchable.map((f) => f.index) : []),
    ...(safepoints ? [safepoint + 1] : []),
  ];
  const tableSize = layout.length + (slotsInitialised ? 0 : n);
  const newTable = new ByteWriter().u8(valTypeByte('funcref')).u8(0x01).u32(tableSize).u32(tableSize).finish();

  const slotOf = new Map(patchable.map((f) => [f.index, f.slot!]));
  const code = new ByteWriter().u32(module.bodies.length + newBodies.length);
  module.bodies.forEach((b, i) => {
    const index = module.importedFunctions + i;
    const slot = slotOf.get(index);
    let prefix: Uint8Array | undefined;
    if (dispatch === 'entry' && slot !== undefined) {
      const w = new ByteWriter().u8(Op.globalGet).u32(flag(slot)).u8(Op.i32Const).s32(flagBit(slot)).u8(I32_AND).u8(Op.if).u8(0x40);
      localGets(w, paramCount(index));
      // The divert is a tail call: a patched tail-recursive function, or a replacement that
      // tail-calls its original, keeps a constant stack. Only the cold branch changes.
      w.u8(Op.i32Const).s32(slot).u8(Op.returnCallIndirect).u32(typeIndexOf(index)).u32(table).u8(Op.end);
      prefix = w.finish();
    }
    if (poll && safepoints!.entries) prefix = prefix ? concatBytes(prefix, poll) : poll;
    const rewriting = dispatch === 'indirect' || safepoints?.loops || (quiescent && slot !== undefined);
    if (!prefix && !rewriting) {
      code.bytes(module.bytes.subarray(b.start, b.end));
      return;
    }
    code.bytes(
      transformBody(module.bytes, b, {
        prefix,
        afterLoop: safepoints?.loops ? loopPoll : undefined,
        params: paramCount(index),
        quiescent: quiescent && slot !== undefined ? { enter: counting(slot, 1), exit: counting(slot, -1), blockType: blockTypeFor(index) } : undefined,
        calls: dispatch === 'indirect' ? { slotOf, redirect, typeIndexOf, table } : undefined,
      }),
    );
  });
  for (const b of newBodies) code.bytes(b);

  return {
    live,
    ...(original === undefined ? {} : { original }),
    ...(safepoints ? { pollSlot } : {}),
    ...(quiescent ? { activeGetter } : {}),
    sections(extraExports) {
      const sections = new Map<number, Uint8Array>();
      sections.set(1, appendToVector(module, 1, newTypes));
      sections.set(
        3,
        appendToVector(
          module,
          3,
          newFunctionTypes.map((t) => new ByteWriter().u32(t).finish()),
        ),
      );
      sections.set(4, appendToVector(module, 4, [newTable]));
      if (newGlobals.length > 0 || redirect.size > 0) {
        const globals = module.globals.map((g) =>
          new ByteWriter()
            .u8(valTypeByte(g.type.type))
            .u8(g.type.mutable ? 1 : 0)
            .bytes(redirect.size > 0 ? remapConstExpr(g.init, redirect) : g.init)
            .finish(),
        );
        sections.set(6, vector([...globals, ...newGlobals]));
      }
      const exports = module.exports.map((e) =>
        new ByteWriter()
          .name(e.name)
          .u8(kindByte(e.kind))
          .u32(e.kind === 'func' ? (redirect.get(e.index) ?? e.index) : e.index)
          .finish(),
      );
      exports.push(new ByteWriter().name(HOTPATCH_TABLE_EXPORT).u8(kindByte('table')).u32(table).finish());
      exports.push(new ByteWriter().name(HOTPATCH_SETTER_EXPORT).u8(kindByte('func')).u32(setter).finish());
      if (quiescent) exports.push(new ByteWriter().name(HOTPATCH_ACTIVE_EXPORT).u8(kindByte('func')).u32(activeGetter).finish());
      sections.set(7, vector([...exports, ...extraExports]));
      sections.set(9, vector([...module.elements.map((seg) => encodeElement(seg, redirect)), activeSegment(table, layout, slotsInitialised ? 0 : n)]));
      sections.set(10, code.finish());
      return sections;
    },
  };
}

/**
 * Emits a jump table over `count` cases on the i32 `emitIndex` pushes: nested blocks, one `br_table`,
 * and each case's code after the block it leaves. Out-of-range values fall through past all cases.
 */
export function switchTable(w: ByteWriter, count: number, emitIndex: () => void, emitCase: (k: number) => void): void {
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

/**
 * Bodies of `read(index) -> value` over `count` consecutive globals from `globals`: the entry, then
 * one function per CHUNK globals (at `chunkFunction + c`), each a jump table, so nesting stays
 * shallow. `index - offset` picks the global; an index out of range reads `zero`.
 */
export function globalReader(o: { globals: number; count: number; offset: number; chunkFunction: number; zero: readonly number[] }): Uint8Array[] {
  const chunks = Math.ceil(o.count / CHUNK);
  const index = (w: ByteWriter, minus: number): ByteWriter => (minus === 0 ? w.u8(Op.localGet).u32(0) : w.u8(Op.localGet).u32(0).u8(Op.i32Const).s32(minus).u8(0x6b /* i32.sub */));
  const bodies = [
    body((w) => {
      switchTable(
        w,
        chunks,
        () => index(w, o.offset).u8(Op.i32Const).s32(Math.log2(CHUNK)).u8(0x76 /* i32.shr_u */),
        (c) =>
          w
            .u8(Op.localGet)
            .u32(0)
            .u8(Op.call)
            .u32(o.chunkFunction + c)
            .u8(Op.return),
      );
      for (const b of o.zero) w.u8(b);
    }),
  ];
  for (let c = 0; c < chunks; c++) {
    const first = c * CHUNK;
    bodies.push(
      body((w) => {
        switchTable(
          w,
          Math.min(CHUNK, o.count - first),
          () => index(w, o.offset + first),
          (k) =>
            w
              .u8(Op.globalGet)
              .u32(o.globals + first + k)
              .u8(Op.return),
        );
        for (const b of o.zero) w.u8(b);
      }),
    );
  }
  return bodies;
}

/**
 * Re-emits a body: `prefix` at entry, `afterLoop` after every `loop` header, and with indirect
 * dispatch `call f` → `i32.const slot; call_indirect` and `ref.func f` → its thunk. Every other
 * byte is copied.
 */
function transformBody(
  bytes: Uint8Array,
  b: FunctionBody,
  options: {
    prefix: Uint8Array | undefined;
    afterLoop: ((local: number) => Uint8Array) | undefined;
    params: number;
    quiescent?: { enter: Uint8Array; exit: Uint8Array; blockType: Uint8Array } | undefined;
    calls: { slotOf: ReadonlyMap<number, number>; redirect: ReadonlyMap<number, number>; typeIndexOf: (index: number) => number; table: number } | undefined;
  },
): Uint8Array {
  const out = new ByteWriter();
  if (!options.afterLoop && !options.calls && !options.quiescent) {
    // Only a prefix: no need to decode the body (prepare's common case, kept fast).
    const content = out
      .bytes(bytes.subarray(b.bodyStart, b.codeStart))
      .bytes(options.prefix ?? new Uint8Array(0))
      .bytes(bytes.subarray(b.codeStart, b.end))
      .finish();
    return new ByteWriter().u32(content.length).bytes(content).finish();
  }
  let poll: Uint8Array | undefined;
  if (options.afterLoop) {
    // One more i32 local, after all the others so no local index moves: the loop poll counter.
    const locals = new ByteReader(bytes, b.bodyStart, b.codeStart);
    const groups = locals.u32();
    const groupsEnd = locals.pos;
    let total = 0;
    for (let g = 0; g < groups; g++) {
      total += locals.u32();
      locals.u8();
    }
    out
      .u32(groups + 1)
      .bytes(bytes.subarray(groupsEnd, b.codeStart))
      .u32(1)
      .u8(0x7f);
    poll = options.afterLoop(options.params + total);
  } else {
    out.bytes(bytes.subarray(b.bodyStart, b.codeStart));
  }
  if (options.prefix) out.bytes(options.prefix);
  const q = options.quiescent;
  // Quiescent: count the activation, and run the body inside `try … catch_all` so that every way
  // out — falling off the end, a branch to the function's label (now the try's), an exception —
  // passes the decrement; `return` and tail calls get it in front of them.
  const end = q ? b.end - 1 : b.end;
  if (q) out.bytes(q.enter).u8(Op.try).bytes(q.blockType);
  const r = new ByteReader(bytes, b.codeStart, end);
  const ins = newInstruction();
  let from = b.codeStart;
  const { calls } = options;
  while (!r.done) {
    readInstruction(r, ins);
    if (q && (ins.op === Op.return || ins.op === Op.returnCall || ins.op === Op.returnCallIndirect)) {
      out.bytes(bytes.subarray(from, ins.start)).bytes(q.exit);
      from = ins.start;
    }
    if (poll && ins.op === Op.loop) {
      out.bytes(bytes.subarray(from, ins.end)).bytes(poll);
      from = ins.end;
    } else if (calls && (ins.op === Op.call || ins.op === Op.returnCall)) {
      const slot = calls.slotOf.get(ins.index);
      if (slot === undefined) continue;
      out.bytes(bytes.subarray(from, ins.start)).u8(Op.i32Const).s32(slot);
      out
        .u8(ins.op === Op.call ? Op.callIndirect : Op.returnCallIndirect)
        .u32(calls.typeIndexOf(ins.index))
        .u32(calls.table);
      from = ins.end;
    } else if (calls && ins.op === Op.refFunc && calls.redirect.has(ins.index)) {
      out.bytes(bytes.subarray(from, ins.indexStart)).u32(calls.redirect.get(ins.index)!);
      from = ins.end;
    }
  }
  out.bytes(bytes.subarray(from, end));
  if (q) out.u8(Op.catchAll).bytes(q.exit).u8(Op.rethrow).u32(0).u8(Op.end).bytes(q.exit).u8(Op.end);
  const content = out.finish();
  return new ByteWriter().u32(content.length).bytes(content).finish();
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
