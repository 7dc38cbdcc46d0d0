import type { PatchManifest } from '../format/manifest.js';
import type { HOOKS } from '../format/check.js';
import type { Committer } from './_committer.js';

/** Where a patch is in its life: loaded (ready, no effect), applied, reverted, replaced by a cumulative patch, or rolled back by its health checks. */
export type PatchState = 'loaded' | 'applied' | 'reverted' | 'replaced' | 'rolled-back';

/** What the engine keeps of a patch that only the engine may touch. */
export interface PatchInternals {
  /** Target slots, in manifest order, and the function each gets. */
  readonly slots: Int32Array;
  readonly refs: readonly Function[];
  /** What each slot holds when no patch owns it: read once at load, so revert only writes. */
  readonly restores: readonly Function[];
  /** For larger patches: writes all slots from inside Wasm (see _committer.ts). */
  readonly committer?: Committer;
  readonly hooks: Partial<Record<keyof typeof HOOKS, () => unknown>>;
  readonly owner: object;
}

const internals = new WeakMap<Patch, PatchInternals>();

/** The engine-private part of a patch. */
export function patchInternals(patch: Patch): PatchInternals | undefined {
  return internals.get(patch);
}

/** A patch module loaded into one guest: validated, compiled and instantiated, applied or not. */
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
  state: PatchState = 'loaded';
  readonly loadedAt: Date;
  appliedAt?: Date;
  revertedAt?: Date;
  /** The cumulative patch that replaced this one. */
  replacedBy?: string;
  /** Why the engine rolled this patch back, and what it saw. */
  rollback?: { readonly reason: string; readonly evidence?: string; readonly at: Date };

  /** @internal Created by `Guest.load` only. */
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
}
