import type { PatchManifest } from '../format/manifest.js';
import type { HOOKS } from '../format/check.js';
import type { Committer } from './_committer.js';

/** Where a patch is in its life: loaded (ready, no effect), applied, reverted, replaced by a cumulative patch, or rolled back by its health checks. */
export type PatchState = 'loaded' | 'applied' | 'reverted' | 'replaced' | 'rolled-back';

/** Why the engine rolled a patch back, and what it saw. */
export interface Rollback {
  readonly reason: string;
  readonly evidence?: string;
  readonly at: Date;
}

/** What the engine keeps of a patch that only the engine may touch. */
export interface PatchInternals {
  /** Target slots, in manifest order, and the function each gets. */
  readonly slots: Int32Array;
  readonly refs: readonly Function[];
  /** For larger patches: writes all slots from inside Wasm (see _committer.ts). */
  readonly committer?: Committer;
  readonly hooks: Partial<Record<keyof typeof HOOKS, () => unknown>>;
  /** The guest that loaded it: a patch works only there. */
  readonly owner: object;
}

const internals = new WeakMap<Patch, PatchInternals>();

/** The engine-private part of a patch. */
export function patchInternals(patch: Patch): PatchInternals | undefined {
  return internals.get(patch);
}

/** Moves a patch through its life (engine only): the one writer of a patch's state. */
export let transition: (patch: Patch, state: PatchState, detail?: { replacedBy?: string; rollback?: Rollback }) => void;

/**
 * A patch module loaded into one guest: validated, compiled and instantiated, applied or not.
 * Its state is read-only outside the engine: only the guest moves it.
 */
export class Patch {
  readonly id: string;
  readonly sequence: number;
  readonly cumulative: boolean;
  readonly description: string;
  readonly manifest: PatchManifest;
  /** The patch's own instance: its globals and memory live as long as the patch. */
  readonly instance: WebAssembly.Instance;
  /** Names of the baseline functions it replaces. */
  readonly targets: readonly string[];
  readonly loadedAt: Date;
  #state: PatchState = 'loaded';
  #appliedAt: Date | undefined;
  #revertedAt: Date | undefined;
  #replacedBy: string | undefined;
  #rollback: Rollback | undefined;

  static {
    // No default object for `detail`: apply and revert call this on their path, and allocate nothing extra.
    transition = (p, state, detail) => {
      p.#state = state;
      if (state === 'applied') {
        p.#appliedAt = new Date();
        p.#revertedAt = undefined;
        p.#replacedBy = undefined;
        p.#rollback = undefined;
      } else if (state === 'reverted') p.#revertedAt = new Date();
      else if (state === 'replaced') p.#replacedBy = detail?.replacedBy;
      else if (state === 'rolled-back') p.#rollback = detail?.rollback;
    };
  }

  /** @internal Created by the guest's loader only. */
  constructor(manifest: PatchManifest, instance: WebAssembly.Instance, targets: readonly string[], inner: PatchInternals) {
    this.id = manifest.id;
    this.sequence = manifest.sequence;
    this.cumulative = manifest.cumulative;
    this.description = manifest.description;
    this.manifest = manifest;
    this.instance = instance;
    this.targets = targets;
    this.loadedAt = new Date();
    internals.set(this, inner);
  }

  /** Where the patch is in its life. */
  get state(): PatchState {
    return this.#state;
  }

  /** When it was last applied. */
  get appliedAt(): Date | undefined {
    return this.#appliedAt;
  }

  /** When it was last reverted (a rollback included). */
  get revertedAt(): Date | undefined {
    return this.#revertedAt;
  }

  /** The cumulative patch that replaced this one. */
  get replacedBy(): string | undefined {
    return this.#replacedBy;
  }

  /** Why the engine rolled this patch back, and what it saw. */
  get rollback(): Rollback | undefined {
    return this.#rollback;
  }
}
