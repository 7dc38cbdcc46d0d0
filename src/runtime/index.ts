/**
 * Guests in worker threads: `WorkerGuest` drives a guest running in a worker with the in-thread
 * API; `serveGuest` and `waitServing` are the worker side, for hosts that write their own worker.
 */
export { WorkerGuest, type Answer, type RemotePatch, type WorkerGuestOptions } from './worker-guest.js';
export type { RemoteApplyOptions } from './protocol.js';
export { serveGuest, waitServing, type Server } from './serve.js';
export type { ImportsContext } from './worker.js';
export { ThreadedGuest, Transition, type ThreadedGuestOptions, type ThreadState, type TransitionResult } from './threads.js';
export { PatchStore, type LevelGuest, type PatchLevel, type StoredPatch, type StoreOptions } from './store.js';
export { serveEndpoint, type Endpoint, type EndpointGuest, type EndpointOptions } from './endpoint.js';
export type { ChangeAnswer } from './_recorded.js';
export { endpointRequest } from './endpoint-client.js';
export { SupervisedGuest, type SupervisedGuestOptions } from './supervisor.js';
