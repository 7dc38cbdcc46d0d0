/**
 * Per-slot patch stacks, like livepatch's `func_stack`: the newest applied patch of a function is
 * on top and owns its slot; removing any patch uncovers whatever is below it. Pure bookkeeping,
 * no table access: the guest turns changes of owner into table writes.
 *
 * apply and revert touch every slot of a patch while the guest waits, so the common case (one
 * patch per function) costs one array write per slot: owners live in a slot-indexed array, and
 * only slots with more than one patch keep a list of what is below.
 */
export class PatchStacks<T> {
  readonly #top: (T | undefined)[];
  /** Entries below the top, bottom first, for slots that have any. */
  readonly #below = new Map<number, T[]>();

  constructor(slots: number) {
    this.#top = new Array(slots).fill(undefined);
  }

  /** The entry that owns a slot now, or undefined when the original runs. */
  top(slot: number): T | undefined {
    return this.#top[slot];
  }

  /** What owns a slot once `entry` is removed, if `entry` is on top; `null` if it is not on top. */
  below(slot: number, entry: T): T | undefined | null {
    if (this.#top[slot] !== entry) return null;
    const rest = this.#below.get(slot);
    return rest === undefined ? undefined : rest[rest.length - 1];
  }

  /** The entry right under `entry` in a slot's stack (undefined: the original), wherever `entry` is. */
  under(slot: number, entry: T): T | undefined {
    const rest = this.#below.get(slot) ?? [];
    if (this.#top[slot] === entry) return rest[rest.length - 1];
    const at = rest.lastIndexOf(entry);
    return at > 0 ? rest[at - 1] : undefined;
  }

  push(entry: T, slots: ArrayLike<number>): void {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const current = this.#top[slot];
      if (current !== undefined) {
        const rest = this.#below.get(slot);
        if (rest === undefined) this.#below.set(slot, [current]);
        else rest.push(current);
      }
      this.#top[slot] = entry;
    }
  }

  remove(entry: T, slots: ArrayLike<number>): void {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      const rest = this.#below.get(slot);
      if (this.#top[slot] === entry) {
        this.#top[slot] = rest?.pop();
      } else if (rest !== undefined) {
        const at = rest.lastIndexOf(entry);
        if (at >= 0) rest.splice(at, 1);
      }
      if (rest !== undefined && rest.length === 0) this.#below.delete(slot);
    }
  }

  /** Every slot that has an owner now. */
  patchedSlots(): number[] {
    const out: number[] = [];
    for (let slot = 0; slot < this.#top.length; slot++) if (this.#top[slot] !== undefined) out.push(slot);
    return out;
  }

  clear(): void {
    this.#top.fill(undefined);
    this.#below.clear();
  }

  /** Every non-empty stack, bottom first, for status and tests. */
  snapshot(): Map<number, T[]> {
    const out = new Map<number, T[]>();
    for (const slot of this.patchedSlots()) out.set(slot, [...(this.#below.get(slot) ?? []), this.#top[slot]!]);
    return out;
  }
}
