import type { Committer } from './_committer.js';
import { type Patch, type PatchInternals, patchInternals } from './patch.js';
import { PatchStacks } from './stacks.js';

/** The baseline's slot setter: `set(slot, target, patched)` (see prepare). */
export type Setter = (slot: number, target: unknown, patched: number) => void;

const now = (): number => globalThis.performance.now();

/**
 * The one writer of a guest's hotpatch table, like livepatch's `patch.c` owning `func_stack` and
 * the ftrace ops: the per-slot stacks, the effective function of every (patch, slot) — the
 * patch's own, or its watch wrapper while watched — and the commit. Every slot write of apply,
 * cumulative replace, revert, rollback, unwatch and test stubs goes through `#commit`, which picks
 * the loop or the patch's committer (while it is live: an unloaded patch's region is reused), times the writes, bumps the generation and sets
 * `lastCommit`. Nothing here can fail: callers check and build everything before.
 */
export class Slots {
  readonly #table: WebAssembly.Table;
  readonly #set: Setter;
  readonly #stacks: PatchStacks<Patch>;
  /** What each slot holds when no patch owns it, read from the table once, so commits only write. */
  readonly #restores: (Function | undefined)[];
  readonly #restoreOf: (slot: number) => Function;
  /** Watch wrappers of the patches watched now, in the order of their slots. */
  readonly #wrapped = new Map<Patch, readonly Function[]>();
  // Write lists, allocated once: a commit fills them and writes them, and allocates nothing.
  readonly #writeSlots: Int32Array;
  readonly #writeFns: (Function | undefined)[];
  readonly #writeFlags: Uint8Array;
  readonly #mark: Uint8Array;
  /** Slots whose setter path has run once (see `prime`). */
  readonly #primed: Uint8Array;
  #generation = 0;
  #lastCommit = 0;

  /** @param restoreOf reads what a slot holds unpatched (called once per slot, lazily). */
  constructor(table: WebAssembly.Table, set: Setter, slots: number, restoreOf: (slot: number) => Function) {
    this.#table = table;
    this.#set = set;
    this.#stacks = new PatchStacks(slots);
    this.#restores = new Array(slots).fill(undefined);
    this.#restoreOf = restoreOf;
    this.#writeSlots = new Int32Array(slots);
    this.#writeFns = new Array(slots).fill(undefined);
    this.#writeFlags = new Uint8Array(slots);
    this.#mark = new Uint8Array(slots);
    this.#primed = new Uint8Array(slots);
    // Compile the setter now (V8 compiles lazily) by writing slot 0's unpatched state again: the
    // first apply is not the slow one. Not a commit: nothing changes.
    if (slots > 0) set(0, this.restore(0), 0);
  }

  /** Milliseconds the last apply or revert (a rollback included) spent writing slots: the pause the guest saw. */
  get lastCommit(): number {
    return this.#lastCommit;
  }

  /** Bumped by every commit: cached lookups of what a function runs compare it. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Readies these slots at load, so a later commit only writes: reads what each holds unpatched,
   * and the first time a slot is primed, writes it again with the state it already has. V8
   * compiles Wasm lazily, and the baseline's flag setter for a slot's range is compiled at its
   * first call (~100 µs on a 1 MB baseline): that call belongs here, not in the guest's pause.
   */
  prime(slots: Int32Array): void {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      this.restore(slot);
      if (this.#primed[slot] === 1) continue;
      this.#primed[slot] = 1;
      const top = this.#stacks.top(slot);
      // What the slot holds now, exactly: an entry-dispatch slot never patched is still null,
      // and a load that is then rejected must leave the table as it was.
      if (top === undefined) this.#set(slot, this.#table.get(slot), 0);
      else this.#set(slot, this.effective(top, slot), 1);
    }
  }

  /** What a slot holds when no patch owns it. */
  restore(slot: number): Function {
    let restore = this.#restores[slot];
    if (restore === undefined) {
      restore = this.#restoreOf(slot);
      this.#restores[slot] = restore;
    }
    return restore;
  }

  /** What a slot holds now: its top patch's function (as `effective`), or what it holds unpatched. */
  current(slot: number): Function {
    const top = this.#stacks.top(slot);
    return top === undefined ? this.restore(slot) : this.effective(top, slot);
  }

  /** The patch that owns a slot now, or undefined when the original runs. */
  top(slot: number): Patch | undefined {
    return this.#stacks.top(slot);
  }

  /** The patch right under `p` in a slot's stack (undefined: the original). */
  under(slot: number, p: Patch): Patch | undefined {
    return this.#stacks.under(slot, p);
  }

  /** Every non-empty stack, bottom first. */
  snapshot(): Map<number, Patch[]> {
    return this.#stacks.snapshot();
  }

  /** Whether a patch is watched now. */
  watched(p: Patch): boolean {
    return this.#wrapped.has(p);
  }

  /** What `p` puts in `slot`: its replacement, or the replacement's watch wrapper while watched. */
  effective(p: Patch, slot: number): Function {
    const inner = patchInternals(p)!;
    const i = inner.slots.indexOf(slot);
    return (this.#wrapped.get(p) ?? inner.refs)[i]!;
  }

  /**
   * Forward attach: `p` goes on top of each of its slots' stacks. With `wrappers` (its watch
   * wrappers, one per slot) the slots get those and `p` counts as watched.
   */
  apply(p: Patch, inner: PatchInternals, wrappers?: readonly Function[]): number {
    const ms =
      wrappers || !inner.committer?.live
        ? this.#commit(inner.slots.length, inner.slots, wrappers ?? inner.refs, 1, undefined, false, true)
        : this.#commit(0, inner.slots, inner.refs, 1, inner.committer, false, true);
    this.#stacks.push(p, inner.slots);
    if (wrappers) this.#wrapped.set(p, wrappers);
    return ms;
  }

  /**
   * Cumulative replace, livepatch's way: an ordinary push of `p` plus a restore of every other
   * patched slot, in one commit. Every stack then holds `p` alone.
   */
  replaceAll(p: Patch, inner: PatchInternals, wrappers?: readonly Function[]): number {
    const { slots } = inner;
    const fns = wrappers ?? inner.refs;
    const mark = this.#mark;
    let n = 0;
    for (let i = 0; i < slots.length; i++) n = this.#stage(n, slots[i]!, fns[i]!, 1);
    for (let i = 0; i < slots.length; i++) mark[slots[i]!] = 1;
    for (const slot of this.#stacks.patchedSlots()) if (mark[slot] === 0) n = this.#stage(n, slot, this.restore(slot), 0);
    for (let i = 0; i < slots.length; i++) mark[slots[i]!] = 0;
    const ms = this.#commit(n, this.#writeSlots, this.#writeFns, this.#writeFlags, undefined, false, true);
    this.#stacks.clear();
    this.#wrapped.clear();
    this.#stacks.push(p, slots);
    if (wrappers) this.#wrapped.set(p, wrappers);
    return ms;
  }

  /** Reverse attach: each slot `p` owns goes to what is below it (an earlier patch as it runs, or the original). */
  revert(p: Patch, inner: PatchInternals): number {
    const { slots } = inner;
    let n = 0;
    let allRestore = true;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const below = this.#stacks.below(slot, p);
      if (below === null)
        allRestore = false; // a newer patch owns the slot and keeps it
      else if (below === undefined) n = this.#stage(n, slot, this.#restores[slot] ?? this.restore(slot), 0);
      else {
        allRestore = false;
        n = this.#stage(n, slot, this.effective(below, slot), 1);
      }
    }
    const committer = allRestore && inner.committer?.live ? inner.committer : undefined;
    const ms = this.#commit(n, this.#writeSlots, this.#writeFns, this.#writeFlags, committer, true, true);
    this.#stacks.remove(p, slots);
    if (this.#wrapped.size > 0) this.#wrapped.delete(p);
    return ms;
  }

  /** Ends a watch: slots `p` owns get its plain replacements again. Not an apply or revert: `lastCommit` stays. */
  unwatch(p: Patch): void {
    if (!this.#wrapped.delete(p)) return;
    const { slots, refs } = patchInternals(p)!;
    let n = 0;
    for (let i = 0; i < slots.length; i++) if (this.#stacks.top(slots[i]!) === p) n = this.#stage(n, slots[i]!, refs[i]!, 1);
    this.#commit(n, this.#writeSlots, this.#writeFns, this.#writeFlags, undefined, false, false);
  }

  /** Runs `fn` (the guest's warm-up: commits that write nothing) and leaves the generation and `lastCommit` as they were. */
  unrecorded(fn: () => void): void {
    const generation = this.#generation;
    const lastCommit = this.#lastCommit;
    fn();
    this.#generation = generation;
    this.#lastCommit = lastCommit;
  }

  /** Installs the function a busy guest calls at its safepoints (a table entry outside the hotpatch slots). */
  setSafepoint(index: number, handler: Function): void {
    this.#table.set(index, handler);
  }

  #stage(n: number, slot: number, fn: Function, flag: number): number {
    this.#writeSlots[n] = slot;
    this.#writeFns[n] = fn;
    this.#writeFlags[n] = flag;
    return n + 1;
  }

  /** The only code that writes hotpatch slots: `n` writes from the lists given, or the committer. */
  #commit(n: number, slots: Int32Array, fns: readonly (Function | undefined)[], flags: Uint8Array | number, committer: Committer | undefined, restore: boolean, record: boolean): number {
    const set = this.#set;
    const t0 = now();
    if (committer) {
      if (restore) committer.restore();
      else committer.apply();
    } else if (typeof flags === 'number') {
      for (let i = 0; i < n; i++) set(slots[i]!, fns[i], flags);
    } else {
      for (let i = 0; i < n; i++) set(slots[i]!, fns[i], flags[i]!);
    }
    const ms = now() - t0;
    this.#generation++;
    if (record) this.#lastCommit = ms;
    // Drop the references the write list held, so an unloaded patch's instance can be freed.
    if (fns === this.#writeFns) this.#writeFns.fill(undefined, 0, n);
    return ms;
  }
}
