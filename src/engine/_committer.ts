import { ByteWriter } from '../format/bytes.js';
import { Op } from '../format/instructions.js';
import { encodeModule, exportEntry, funcImport, Section, typeSection, vector } from '../format/encode.js';
import { kindByte } from '../format/module.js';

/** Patches with at least this many targets get a committer; below it, a JS loop is as fast. */
export const COMMITTER_MIN_TARGETS = 8;

/** `apply()` writes every target slot to its replacement; `restore()` writes every one back to its original. */
export interface Committer {
  apply(): void;
  restore(): void;
}

/**
 * The committer module, the same for every patch:
 *
 * ```wasm
 * (import "c" "set" (func $set (param i32 funcref i32)))   ;; the baseline's slot setter
 * (import "c" "slots" (memory 1))                          ;; i32 slot numbers, one per target
 * (import "c" "staging" (table 0 funcref))                 ;; [replacements | originals]
 * (func (export "apply") (param $k i32)   ;; for i < k: set(slots[i], staging[i], 1)
 * (func (export "restore") (param $k i32) ;; for i < k: set(slots[i], staging[k + i], 0)
 * ```
 *
 * A commit is one call from JS and k Wasm-to-Wasm calls of the setter, instead of k calls from
 * JS (each as dear as a `table.set` from JS). A loop keeps the code small whatever k is.
 */
function committerBytes(): Uint8Array {
  const loop = (offsetByK: boolean, patched: number): Uint8Array =>
    new ByteWriter()
      .sized((w) => {
        w.u32(1).u32(1).u8(0x7f); // one local: $i
        w.u8(Op.block).u8(0x40).u8(Op.loop).u8(0x40);
        w.u8(Op.localGet).u32(1).u8(Op.localGet).u32(0).u8(0x4f /* i32.ge_u */).u8(Op.brIf).u32(1);
        w.u8(Op.localGet).u32(1).u8(Op.i32Const).u8(2).u8(0x74 /* i32.shl */).u8(0x28 /* i32.load */).u32(2).u32(0);
        w.u8(Op.localGet).u32(1);
        if (offsetByK) w.u8(Op.localGet).u32(0).u8(0x6a /* i32.add */);
        w.u8(Op.tableGet).u32(0).u8(Op.i32Const).u8(patched).u8(Op.call).u32(0);
        w.u8(Op.localGet).u32(1).u8(Op.i32Const).u8(1).u8(0x6a).u8(Op.localSet).u32(1);
        w.u8(Op.br).u32(0).u8(Op.end).u8(Op.end).u8(Op.end);
      })
      .finish();
  return encodeModule([
    [Section.type, typeSection([{ params: ['i32', 'funcref', 'i32'], results: [] }, { params: ['i32'], results: [] }])],
    [
      Section.import,
      vector([
        funcImport('c', 'set', 0),
        new ByteWriter().name('c').name('slots').u8(kindByte('memory')).u8(0).u32(1).finish(),
        new ByteWriter().name('c').name('staging').u8(kindByte('table')).u8(0x70).u8(0).u32(0).finish(),
      ]),
    ],
    [Section.function, vector([new ByteWriter().u32(1).finish(), new ByteWriter().u32(1).finish()])],
    [Section.export, vector([exportEntry('apply', 'func', 1), exportEntry('restore', 'func', 2)])],
    [Section.code, vector([loop(false, 1), loop(true, 0)])],
  ]);
}

let compiled: WebAssembly.Module | undefined;

/** A committer's staging area: slot numbers written, originals staged, replacements still to come. */
export interface StagedCommitter {
  readonly k: number;
  readonly memory: WebAssembly.Memory;
  readonly staging: WebAssembly.Table;
}

/**
 * First half of a committer, which needs only the slots: stage its slot numbers and the slots'
 * originals. Runs at load while the patch compiles, where failure is allowed.
 */
export function stageCommitter(slots: Int32Array, restores: readonly Function[]): StagedCommitter {
  const k = slots.length;
  const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil((k * 4) / 65536)) });
  new Int32Array(memory.buffer, 0, k).set(slots);
  const staging = new WebAssembly.Table({ element: 'anyfunc', initial: 2 * k });
  for (let i = 0; i < k; i++) staging.set(k + i, restores[i]);
  return { k, memory, staging };
}

/** Second half, once the patch is instantiated: stage its replacements and make the committer. */
export function finishCommitter(staged: StagedCommitter, setter: Function, refs: readonly Function[]): Committer {
  compiled ??= new WebAssembly.Module(committerBytes() as Uint8Array<ArrayBuffer>); // 150 bytes: fine synchronously anywhere
  const { k, memory, staging } = staged;
  for (let i = 0; i < k; i++) staging.set(i, refs[i]);
  const instance = new WebAssembly.Instance(compiled, { c: { set: setter, slots: memory, staging } } as WebAssembly.Imports);
  const { apply, restore } = instance.exports as unknown as { apply(k: number): void; restore(k: number): void };
  return { apply: () => apply(k), restore: () => restore(k) };
}
