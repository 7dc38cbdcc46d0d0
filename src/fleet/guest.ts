import type { ApplyOptions, GuestStatus } from '../engine/index.js';

/**
 * What the agent needs of a guest: the narrow part of the guest contract that `Guest` (in this
 * thread) and `WorkerGuest` (in a worker) both implement. A guest reports health rollbacks as
 * `rolled-back` events.
 */
export interface FleetGuest extends EventTarget {
  readonly manifest: { readonly id: string };
  /** Verifies (by the guest's own policy) and loads a patch, with no effect yet. */
  load(bytes: Uint8Array): Promise<{ readonly id: string }>;
  /** Applies a loaded patch; with `probe` or `watch`, a failing health check rolls it back. */
  apply(id: string, options?: ApplyOptions): unknown;
  /** Takes an applied patch back out. */
  revert(id: string): unknown;
  /** The guest's patch level. */
  status(): GuestStatus | Promise<GuestStatus>;
}
