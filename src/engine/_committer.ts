import { ByteWriter } from '../format/bytes.js';
import { Op } from '../format/instructions.js';
import { encodeFuncType, kindByte } from '../format/module.js';

/** Patches with at least this many targets get a committer; below it, a JS loop is as fast. */
export const COMMITTER_MIN_TARGETS = 8;

/** `apply()` writes every target slot to its replacement; `restore()` writes every one back to its original. */
export interface Committer {
  apply(): void;
  restore(): void;
}

/** Browsers refuse synchronous compiles of larger modules on the main thread. */
const SYNC_COMPILE_LIMIT = 4096;

/**
 * Compiles a committer for one patch: a module holding the patch's replacements and the slots'
 * originals in its own staging table, whose two functions call the baseline's slot setter once per
 * target from inside Wasm. A commit is then one call from JS instead of one per slot. Compiled at
 * load, alongside the patch itself; the commit only writes.
 */
export function compileCommitter(slots: Int32Array): WebAssembly.Module | Promise<WebAssembly.Module> {
  const k = slots.length;
  const section = (id: number, content: Uint8Array): Uint8Array => new ByteWriter().u8(id).u32(content.length).bytes(content).finish();
  const vec = (items: readonly Uint8Array[]): Uint8Array => {
    const w = new ByteWriter().u32(items.length);
    for (const item of items) w.bytes(item);
    return w.finish();
  };
  // staging[i] is target i's replacement, staging[k + i] its original.
  const commitBody = (first: number, patched: number): Uint8Array =>
    new ByteWriter()
      .sized((w) => {
        w.u32(0);
        for (let i = 0; i < k; i++) {
          w.u8(Op.i32Const).s32(slots[i]!).u8(Op.i32Const).s32(first + i).u8(Op.tableGet).u32(0).u8(Op.i32Const).u8(patched).u8(Op.call).u32(0);
        }
        w.u8(Op.end);
      })
      .finish();
  const bytes = new ByteWriter()
    .bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))
    .bytes(section(1, vec([encodeFuncType({ params: ['i32', 'funcref', 'i32'], results: [] }), encodeFuncType({ params: [], results: [] })])))
    .bytes(section(2, vec([new ByteWriter().name('h').name('set').u8(kindByte('func')).u32(0).finish()])))
    .bytes(section(3, vec([new ByteWriter().u32(1).finish(), new ByteWriter().u32(1).finish()])))
    .bytes(section(4, vec([new ByteWriter().u8(0x70).u8(0x01).u32(2 * k).u32(2 * k).finish()])))
    .bytes(
      section(
        7,
        vec([
          new ByteWriter().name('apply').u8(kindByte('func')).u32(1).finish(),
          new ByteWriter().name('restore').u8(kindByte('func')).u32(2).finish(),
          new ByteWriter().name('staging').u8(kindByte('table')).u32(0).finish(),
        ]),
      ),
    )
    .bytes(section(10, vec([commitBody(0, 1), commitBody(k, 0)])))
    .finish();
  const source = bytes as Uint8Array<ArrayBuffer>;
  // Small modules compile faster synchronously than through a task; browsers allow that below 4 KiB.
  return bytes.length <= SYNC_COMPILE_LIMIT ? new WebAssembly.Module(source) : WebAssembly.compile(source);
}

/** Instantiates a compiled committer and stages the patch's replacements and originals in it. */
export function instantiateCommitter(module: WebAssembly.Module, setter: Function, refs: readonly Function[], restores: readonly Function[]): Committer {
  const instance = new WebAssembly.Instance(module, { h: { set: setter } } as WebAssembly.Imports);
  const staging = instance.exports.staging as WebAssembly.Table;
  const k = refs.length;
  for (let i = 0; i < k; i++) {
    staging.set(i, refs[i]);
    staging.set(k + i, restores[i]);
  }
  return instance.exports as unknown as Committer;
}
