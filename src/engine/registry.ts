import { HotpatchError, type Problem } from '../errors.js';
import type { PatchStatus } from './contract.js';
import { type Patch, patchInternals } from './patch.js';
import type { PatchPolicy } from './policy.js';

/**
 * The patches a guest knows, by id, and the rules their ids and sequences follow: one loaded or
 * applied patch per id, and no downgrade under an applied cumulative patch unless forced (and the
 * host's policy allows forcing).
 */
export class Patches {
  readonly #byId = new Map<string, Patch>();
  readonly #owner: object;
  readonly #policy: PatchPolicy;

  constructor(owner: object, policy: PatchPolicy) {
    this.#owner = owner;
    this.#policy = policy;
  }

  /** A patch by id. */
  get(id: string): Patch | undefined {
    return this.#byId.get(id);
  }

  /** Every known patch, in load order. */
  values(): IterableIterator<Patch> {
    return this.#byId.values();
  }

  /** Records a loaded patch (replacing a reverted one of the same id, in its place). */
  add(p: Patch): void {
    const replaced = this.#byId.get(p.id);
    if (replaced && replaced !== p) patchInternals(replaced)?.committer?.release();
    this.#byId.set(p.id, p);
  }

  /** Forgets a patch; its committer's staging goes back to the guest. */
  delete(id: string): void {
    const p = this.#byId.get(id);
    if (p) patchInternals(p)?.committer?.release();
    this.#byId.delete(id);
  }

  /**
   * A patch of this guest, by object or id.
   * @throws HotpatchError E_UNKNOWN_PATCH, E_WRONG_GUEST
   */
  resolve(patch: Patch | string): Patch {
    const p = typeof patch === 'string' ? this.#byId.get(patch) : patch;
    if (!p) throw new HotpatchError('E_UNKNOWN_PATCH', `no patch "${String(patch)}" is loaded in this guest`);
    if (patchInternals(p)?.owner !== this.#owner) throw new HotpatchError('E_WRONG_GUEST', `patch "${p.id}" was loaded into another guest`);
    return p;
  }

  /** What the current patch level says against loading a patch: its id in use, a downgrade. */
  loadProblems(id: string, sequence: number, force: boolean | undefined): Problem[] {
    const problems: Problem[] = [];
    const existing = this.#byId.get(id);
    if (existing?.state === 'applied') problems.push({ code: 'E_ALREADY_APPLIED', message: `a patch with id "${id}" is already applied`, path: 'id' });
    else if (existing?.state === 'loaded') problems.push({ code: 'E_ALREADY_LOADED', message: `a patch with id "${id}" is already loaded`, path: 'id' });
    const downgrade = this.downgrade(id, sequence, force);
    if (downgrade) problems.push(downgrade);
    return problems;
  }

  /** Whether a patch of this sequence would go under an applied cumulative patch, and may not. */
  downgrade(id: string, sequence: number, force: boolean | undefined): Problem | undefined {
    if (force && this.#policy.allowForcedDowngrade !== false) return undefined;
    for (const p of this.#byId.values()) {
      if (p.id !== id && p.state === 'applied' && p.cumulative && p.sequence > sequence) {
        return {
          code: 'E_DOWNGRADE',
          message: `sequence ${sequence} is older than cumulative patch "${p.id}" (sequence ${p.sequence}) that is applied; ${this.#policy.allowForcedDowngrade === false ? "this host's policy does not allow forcing a downgrade" : 'pass force to downgrade'}`,
          path: 'sequence',
        };
      }
    }
    return undefined;
  }

  /** Every patch as `status()` reports it. */
  status(): PatchStatus[] {
    return [...this.#byId.values()].map(
      (p): PatchStatus => ({
        id: p.id,
        sequence: p.sequence,
        cumulative: p.cumulative,
        description: p.description,
        state: p.state,
        targets: p.targets,
        loadedAt: p.loadedAt.toISOString(),
        ...(p.appliedAt ? { appliedAt: p.appliedAt.toISOString() } : {}),
        ...(p.revertedAt ? { revertedAt: p.revertedAt.toISOString() } : {}),
        ...(p.replacedBy ? { replacedBy: p.replacedBy } : {}),
        ...(p.rollback ? { rollback: { reason: p.rollback.reason, ...(p.rollback.evidence ? { evidence: p.rollback.evidence } : {}), at: p.rollback.at.toISOString() } } : {}),
      }),
    );
  }
}
