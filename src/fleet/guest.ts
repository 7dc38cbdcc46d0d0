import type { HotpatchGuest } from '../engine/index.js';

/**
 * What the agent patches: any guest that keeps the engine's contract (`guest.async` for an
 * in-thread `Guest`, a worker guest, a threaded guest).
 */
export type FleetGuest = HotpatchGuest;
