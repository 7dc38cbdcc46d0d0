/**
 * Guests in worker threads: `WorkerGuest` drives a guest running in a worker with the in-thread
 * API; `serveGuest` and `waitServing` are the worker side, for hosts that write their own worker.
 */
export { WorkerGuest, type NoticeEvent, type ServedIn, type WorkerCommitResult, type WorkerGuestEventMap, type WorkerGuestOptions, type WorkerLoadResult } from './worker-guest.js';
export { GuestThread } from './guest-thread.js';
export type { RemoteApplyOptions, ServedAt } from './protocol.js';
export { serveGuest, waitServing, type Server } from './serve.js';
export type { ImportsContext } from './worker.js';
export { ThreadedGuest, type ThreadedCommitResult, type ThreadedGuestOptions, type ThreadedStatus } from './threads.js';
export { Transition, type ThreadState, type TransitionOptions, type TransitionResult } from './transition.js';
export { PatchStore, type LevelGuest, type PatchLevel, type StoredPatch, type StoreOptions } from './store.js';
export { serveEndpoint, type Endpoint, type EndpointGuest, type EndpointOptions } from './endpoint.js';
export type { ChangeAnswer } from './_recorded.js';
export { endpointRequest } from './endpoint-client.js';
export { SupervisedGuest, type SupervisedGuestOptions } from './supervisor.js';
