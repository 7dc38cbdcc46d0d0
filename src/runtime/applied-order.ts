import type { GuestStatus } from '../engine/index.js';

/**
 * The applied patches of a status in the order they were applied: every per-function stack
 * (bottom first) is respected, and otherwise the apply time, then the load order, decides. Read
 * from the guest, so it is the guest's own level and not a copy kept beside it.
 */
export function appliedInOrder(status: GuestStatus): string[] {
  const applied = status.patches.filter((p) => p.state === 'applied');
  const rank = new Map(applied.map((p, i) => [p.id, i]));
  const before = new Map<string, Set<string>>(applied.map((p) => [p.id, new Set()]));
  for (const fn of status.functions) {
    for (let i = 1; i < fn.stack.length; i++) {
      const below = fn.stack[i - 1]!;
      if (rank.has(below) && rank.has(fn.stack[i]!)) before.get(fn.stack[i]!)!.add(below);
    }
  }
  const key = (id: string): [string, number] => [applied[rank.get(id)!]!.appliedAt ?? '', rank.get(id)!];
  const order: string[] = [];
  const done = new Set<string>();
  while (order.length < applied.length) {
    const ready = applied.filter((p) => !done.has(p.id) && [...before.get(p.id)!].every((b) => done.has(b))).map((p) => p.id);
    // A cycle cannot come from real stacks; fall back to time order rather than loop.
    const pool = ready.length > 0 ? ready : applied.filter((p) => !done.has(p.id)).map((p) => p.id);
    pool.sort((a, b) => {
      const [ta, ia] = key(a);
      const [tb, ib] = key(b);
      return ta < tb ? -1 : ta > tb ? 1 : ia - ib;
    });
    order.push(pool[0]!);
    done.add(pool[0]!);
  }
  return order;
}
