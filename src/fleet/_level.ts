import { appliedInOrder as orderApplied } from '../runtime/applied-order.js';
import type { GuestStatus } from '../engine/index.js';
import { decodePatchManifest } from '../format/manifest.js';
import { PatchStore } from '../runtime/store.js';
import type { FleetGuest } from './guest.js';

/**
 * The agent's use of the host's patch store, in one place: restore the recorded level when the
 * agent starts, check the store's sequence floor before an apply, and record the level the guest
 * reports after every change, so a restarted host comes back to what it ran (with signatures
 * verified again by its own policy) before it asks the fleet, and never below what it once ran.
 */
export class HostLevel {
  readonly #store: PatchStore | undefined;
  /** Whether this agent opened the store (from a folder), and so closes it. */
  readonly #owned: boolean;

  /**
   * Uses a host's store, or opens one from a folder (taking its writer lock until `close`).
   * @throws HotpatchError E_STORE_UNSAFE, E_STORE_LOCKED, E_IO
   */
  constructor(store: PatchStore | string | undefined) {
    this.#owned = typeof store === 'string';
    this.#store = typeof store === 'string' ? PatchStore.open(store) : store;
  }

  /**
   * Restores the guest to its baseline's recorded level (nothing when none was recorded).
   * @throws HotpatchError E_STORE_CORRUPT, E_DOWNGRADE, and whatever the guest's load or apply refuses
   */
  async restore(guest: FleetGuest): Promise<void> {
    await this.#store?.restore(guest);
  }

  /**
   * Refuses a patch below the baseline's floor, before the guest loads it (so a refusal changes nothing).
   * @throws HotpatchError E_DOWNGRADE, E_MANIFEST_MISSING / E_MANIFEST_INVALID (not a patch)
   */
  admit(baseline: string, bytes: Uint8Array): void {
    if (!this.#store) return;
    const manifest = decodePatchManifest(bytes);
    this.#store.admit(baseline, { id: manifest.id, sequence: manifest.sequence });
  }

  /**
   * Gives the store a patch the guest loaded (its policy verified it), so a later record can name it.
   * @throws HotpatchError E_IO
   */
  loaded(bytes: Uint8Array): void {
    this.#store?.add(bytes);
  }

  /**
   * Records what the guest has applied now, read from the guest itself.
   * @throws HotpatchError E_STORE_UNKNOWN_PATCH, E_DOWNGRADE, E_STORE_CORRUPT, E_IO (nothing recorded)
   */
  async record(guest: FleetGuest): Promise<void> {
    await this.#store?.record(guest);
  }

  /** Releases the store's writer lock when this agent opened the store. */
  close(): void {
    if (this.#owned) this.#store?.close();
  }
}

/** The patches a guest has applied, bottom first. */
export function appliedInOrder(status: GuestStatus): GuestStatus['patches'] {
  const byId = new Map(status.patches.map((p) => [p.id, p]));
  return orderApplied(status).map((id) => byId.get(id)!);
}
