/**
 * Per-slot patch stacks, like livepatch's `func_stack`: the newest applied patch of a function is
 * on top and owns its slot; removing any patch uncovers whatever is below it. Pure bookkeeping,
 * no table access: the guest turns the slots whose owner changed into table writes.
 */
export class PatchStacks {
  readonly #stacks = new Map<number, string[]>();

  /** The patch that owns a slot now, or undefined when the original runs. */
  top(slot: number): string | undefined {
    const stack = this.#stacks.get(slot);
    return stack?.[stack.length - 1];
  }

  /** Every slot that is patched now, with its owner. */
  *owners(): IterableIterator<[slot: number, patch: string]> {
    for (const [slot, stack] of this.#stacks) yield [slot, stack[stack.length - 1]!];
  }

  /** The slots whose owner changes if `id` is removed from `slots`, with their new owners. */
  planRemove(id: string, slots: Iterable<number>): Map<number, string | undefined> {
    const plan = new Map<number, string | undefined>();
    for (const slot of slots) {
      const stack = this.#stacks.get(slot);
      if (!stack || stack[stack.length - 1] !== id) continue;
      plan.set(slot, stack[stack.length - 2]);
    }
    return plan;
  }

  /** New owners if a cumulative patch `id` replaces everything: its slots, and every other patched slot back to the original. */
  planReplaceAll(id: string, slots: Iterable<number>): Map<number, string | undefined> {
    const plan = new Map<number, string | undefined>();
    for (const [slot] of this.#stacks) plan.set(slot, undefined);
    for (const slot of slots) plan.set(slot, id);
    return plan;
  }

  push(id: string, slots: Iterable<number>): void {
    for (const slot of slots) {
      const stack = this.#stacks.get(slot);
      if (stack) stack.push(id);
      else this.#stacks.set(slot, [id]);
    }
  }

  remove(id: string, slots: Iterable<number>): void {
    for (const slot of slots) {
      const stack = this.#stacks.get(slot);
      if (!stack) continue;
      const at = stack.lastIndexOf(id);
      if (at >= 0) stack.splice(at, 1);
      if (stack.length === 0) this.#stacks.delete(slot);
    }
  }

  clear(): void {
    this.#stacks.clear();
  }

  /** A copy of every stack, bottom first, for status and tests. */
  snapshot(): Map<number, string[]> {
    return new Map([...this.#stacks].map(([slot, stack]) => [slot, [...stack]]));
  }
}
