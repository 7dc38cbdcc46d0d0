import { Op } from '../format/instructions.js';
import { body, encodeModule, exportEntry, funcImport, Section, typeSection, vector } from '../format/encode.js';
import { ByteWriter } from '../format/bytes.js';
import { kindByte } from '../format/module.js';

/** Patches with at least this many targets get a committer; below it, a JS loop is as fast. */
export const COMMITTER_MIN_TARGETS = 8;

/** `apply()` writes every target slot to its replacement; `restore()` writes every one back to its original. */
export interface Committer {
  apply(): void;
  restore(): void;
  /** False once released (its patch forgotten): the slots' own loop writes instead. */
  readonly live: boolean;
  /** Gives its staging back to the guest's committers (idempotent). */
  release(): void;
}

/**
 * The committer module, one instance per guest; a patch owns a region `[at, at + k)` of it:
 *
 * ```wasm
 * (import "c" "set" (func $set (param i32 funcref i32)))   ;; the baseline's slot setter
 * (import "c" "slots" (memory 1))                          ;; i32 slot numbers: region at → words [at, at + k)
 * (import "c" "staging" (table 0 funcref))                 ;; region at → [2at, 2at + k) replacements, then k originals
 * (func (export "apply") (param $at i32) (param $k i32))   ;; for i < k: set(slots[at + i], staging[2at + i], 1)
 * (func (export "restore") (param $at i32) (param $k i32)) ;; for i < k: set(slots[at + i], staging[2at + k + i], 0)
 * (func (export "clear") (param $at i32) (param $k i32))   ;; table.fill: a released region holds no patch's functions
 * ```
 *
 * A commit is one call from JS and k Wasm-to-Wasm calls of the setter, instead of k calls from
 * JS (each as dear as a `table.set` from JS). A loop keeps the code small whatever k is.
 */
function committerBytes(): Uint8Array {
  const [at, k, i] = [0, 1, 2];
  const get = (w: ByteWriter, local: number): ByteWriter => w.u8(Op.localGet).u32(local);
  const loop = (offsetByK: boolean, patched: number): Uint8Array =>
    body(
      (w) => {
        w.u8(Op.block).u8(0x40).u8(Op.loop).u8(0x40);
        get(get(w, i), k).u8(0x4f /* i32.ge_u */).u8(Op.brIf).u32(1);
        get(get(w, at), i).u8(0x6a /* i32.add */).u8(Op.i32Const).u8(2).u8(0x74 /* i32.shl */).u8(0x28 /* i32.load */).u32(2).u32(0);
        get(w, at).u8(Op.i32Const).u8(1).u8(0x74 /* i32.shl */);
        get(w, i).u8(0x6a);
        if (offsetByK) get(w, k).u8(0x6a);
        w.u8(Op.tableGet).u32(0).u8(Op.i32Const).u8(patched).u8(Op.call).u32(0);
        get(w, i).u8(Op.i32Const).u8(1).u8(0x6a).u8(Op.localSet).u32(i);
        w.u8(Op.br).u32(0).u8(Op.end).u8(Op.end);
      },
      ['i32'],
    );
  const clear = body((w) => {
    get(w, at).u8(Op.i32Const).u8(1).u8(0x74);
    w.u8(Op.refNull).u8(0x70);
    get(w, k).u8(Op.prefixFC).u32(17 /* table.fill */).u32(0);
  });
  const type1 = new ByteWriter().u32(1).finish();
  return encodeModule([
    [
      Section.type,
      typeSection([
        { params: ['i32', 'funcref', 'i32'], results: [] },
        { params: ['i32', 'i32'], results: [] },
      ]),
    ],
    [
      Section.import,
      vector([
        funcImport('c', 'set', 0),
        new ByteWriter().name('c').name('slots').u8(kindByte('memory')).u8(0).u32(1).finish(),
        new ByteWriter().name('c').name('staging').u8(kindByte('table')).u8(0x70).u8(0).u32(0).finish(),
      ]),
    ],
    [Section.function, vector([type1, type1, type1])],
    [Section.export, vector([exportEntry('apply', 'func', 1), exportEntry('restore', 'func', 2), exportEntry('clear', 'func', 3)])],
    [Section.code, vector([loop(false, 1), loop(true, 0), clear])],
  ]);
}

let compiled: WebAssembly.Module | undefined;

interface CommitterExports {
  apply(at: number, k: number): void;
  restore(at: number, k: number): void;
  clear(at: number, k: number): void;
}

/** A patch's region of its guest's committer: staged at load, finished once the patch is instantiated. */
export interface StagedCommitter {
  readonly k: number;
  /** Gives the region back (a load that failed after staging). */
  release(): void;
}

/**
 * One guest's committer: one instance, one staging memory and table, grown as needed and handed
 * to patches as regions. A load used to make a Memory, a Table and an instance of its own (~30 µs
 * and a 64 KiB buffer for the GC to find, each load); now it writes its region's entries.
 */
export class Committers {
  readonly #set: Function;
  #exports: CommitterExports | undefined;
  #memory: WebAssembly.Memory | undefined;
  #staging: WebAssembly.Table | undefined;
  /** Free regions as [at, length] pairs, sorted by `at`, none touching another or `#top`. */
  readonly #free: [number, number][] = [];
  #top = 0;

  constructor(set: Function) {
    this.#set = set;
  }

  /**
   * First half of a patch's committer, which needs only the slots: a region with its slot numbers
   * and the slots' originals. Runs at load while the patch compiles, where failure is allowed.
   */
  stage(slots: Int32Array, restores: readonly Function[]): StagedCommitter {
    const k = slots.length;
    const at = this.#allocate(k);
    const staging = this.#staging!;
    new Int32Array(this.#memory!.buffer, at * 4, k).set(slots);
    for (let i = 0; i < k; i++) staging.set(2 * at + k + i, restores[i]);
    return new Region(this, this.#exports!, at, k);
  }

  /** Second half, once the patch is instantiated: stage its replacements; the region is its committer. */
  finish(staged: StagedCommitter, refs: readonly Function[]): Committer {
    const region = staged as Region;
    const staging = this.#staging!;
    for (let i = 0; i < region.k; i++) staging.set(2 * region.at + i, refs[i]);
    return region;
  }

  /** @internal Takes a region back: its replacements are dropped, so an unloaded patch's instance can be freed. */
  free(at: number, k: number): void {
    this.#exports!.clear(at, k);
    const free = this.#free;
    let i = 0;
    while (i < free.length && free[i]![0] < at) i++;
    free.splice(i, 0, [at, k]);
    // Coalesce with the next and the previous free region, then give the last one back to the top.
    if (i + 1 < free.length && free[i]![0] + free[i]![1] === free[i + 1]![0]) free[i]![1] += free.splice(i + 1, 1)[0]![1];
    if (i > 0 && free[i - 1]![0] + free[i - 1]![1] === at) free[i - 1]![1] += free.splice(i, 1)[0]![1];
    const last = free[free.length - 1];
    if (last && last[0] + last[1] === this.#top) {
      this.#top = last[0];
      free.pop();
    }
  }

  #allocate(k: number): number {
    const free = this.#free;
    for (let i = 0; i < free.length; i++) {
      const span = free[i]!;
      if (span[1] < k) continue;
      const at = span[0];
      if (span[1] === k) free.splice(i, 1);
      else {
        span[0] += k;
        span[1] -= k;
      }
      return at;
    }
    const at = this.#top;
    this.#top += k;
    this.#reserve(this.#top);
    return at;
  }

  /** Room for `units` regions' worth of targets: 4 bytes of memory and 2 table entries each. */
  #reserve(units: number): void {
    if (!this.#exports) {
      compiled ??= new WebAssembly.Module(committerBytes() as Uint8Array<ArrayBuffer>); // ~200 bytes: fine synchronously anywhere
      this.#memory = new WebAssembly.Memory({ initial: 1 });
      this.#staging = new WebAssembly.Table({ element: 'anyfunc', initial: Math.max(256, 2 * units) });
      const c = { set: this.#set, slots: this.#memory, staging: this.#staging };
      this.#exports = new WebAssembly.Instance(compiled, { c } as WebAssembly.Imports).exports as unknown as CommitterExports;
    }
    const memory = this.#memory!;
    const pages = Math.ceil((units * 4) / 65536);
    if (pages > memory.buffer.byteLength / 65536) memory.grow(pages - memory.buffer.byteLength / 65536);
    const staging = this.#staging!;
    if (2 * units > staging.length) staging.grow(Math.max(2 * units, 2 * staging.length) - staging.length);
  }
}

/** A patch's region: its committer once finished. */
class Region implements Committer, StagedCommitter {
  readonly #owner: Committers;
  readonly at: number;
  readonly k: number;
  // Closures over the region, as the per-patch committer had: the commit path reads no field.
  readonly apply: () => void;
  readonly restore: () => void;
  #live = true;

  constructor(owner: Committers, calls: CommitterExports, at: number, k: number) {
    this.#owner = owner;
    this.at = at;
    this.k = k;
    const { apply, restore } = calls;
    this.apply = () => apply(at, k);
    this.restore = () => restore(at, k);
  }

  get live(): boolean {
    return this.#live;
  }

  release(): void {
    if (!this.#live) return;
    this.#live = false;
    this.#owner.free(this.at, this.k);
  }
}
