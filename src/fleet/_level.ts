import type { GuestStatus } from '../engine/index.js';
import { PatchStore } from '../runtime/store.js';
import type { FleetGuest } from './guest.js';

/**
 * The agent's use of the host's patch store, in one place: restore the recorded level when the
 * agent starts, and record the level after every change, so a restarted host comes back to what
 * it ran (with signatures verified again by its own policy) before it asks the fleet.
 */
export class HostLevel {
  readonly #store: PatchStore | undefined;
  readonly #bytes = new Map<string, Uint8Array>();

  constructor(store: PatchStore | string | undefined) {
    this.#store = typeof store === 'string' ? PatchStore.open(store) : store;
  }

  /** Restores the guest to its recorded level; the bytes of restored patches are kept for the next record. */
  async restore(guest: FleetGuest): Promise<void> {
    if (!this.#store) return;
    const level = this.#store.level(guest.manifest.id);
    if (!level) return;
    for (const entry of level.applied) this.#bytes.set(entry.id, this.#store.patch(entry.sha256));
    await this.#store.restore(guest as unknown as Parameters<PatchStore['restore']>[0]);
  }

  /** Remembers a patch's bytes once the guest loaded it. */
  loaded(id: string, bytes: Uint8Array): void {
    this.#bytes.set(id, bytes);
  }

  /** Records what the guest has applied now, in apply order. */
  record(baseline: string, status: GuestStatus): void {
    if (!this.#store) return;
    const applied = appliedInOrder(status).filter((p) => this.#bytes.has(p.id));
    this.#store.record(baseline, applied.map((p) => ({ id: p.id, bytes: this.#bytes.get(p.id)! })));
  }
}

/** The patches a guest has applied, bottom first. */
export function appliedInOrder(status: GuestStatus): GuestStatus['patches'] {
  return status.patches
    .filter((p) => p.state === 'applied')
    .sort((a, b) => (a.appliedAt ?? '').localeCompare(b.appliedAt ?? '') || a.sequence - b.sequence);
}
