/**
 * The engine: guests, patches and their stacks. Runs anywhere WebAssembly and WebCrypto do
 * (Node, browsers, workers): no Node APIs, no binaryen.
 */
export { Guest, type ApplyOptions, type GuestOptions } from './guest.js';
export { AsyncGuest } from './async-guest.js';
export type { CommitOptions, CommitResult, GuestEventMap, GuestListener, GuestStatus, HotpatchGuest, LoadOptions, LoadResult, PatchStatus, ShadowOptions, WatchOptions } from './contract.js';
export { checkTrust, type PatchPolicy } from './policy.js';
export { trustKey, verifySignature, type TrustedKey } from '../format/signature.js';
export { Patch, type PatchState, type Rollback } from './patch.js';
export { GuestEvent, type GuestEventType } from './events.js';
export { HOOKS, IMPORT_BASELINE, IMPORT_LIVE, IMPORT_ORIGINAL, IMPORT_SHADOW, SHADOW_FUNCTIONS } from '../format/check.js';
export { ShadowState, type ShadowAllocator } from './shadow.js';
export { HotpatchError, type HotpatchErrorCode, type Problem } from '../errors.js';
