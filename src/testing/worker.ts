/**
 * The testing helpers for guests in worker threads. A JavaScript function cannot cross threads,
 * so across threads a replacement is Wasm: a module you write, or one these helpers generate (a
 * fault, a call counter). Each installs an ordinary patch in the worker, like any other.
 */
import { buildPatch } from '../build/build.js';
import { parseSignature } from '../format/functype.js';
import { HotpatchError } from '../errors.js';
import type { WorkerGuest } from '../runtime/index.js';

/** A replacement in a worker guest; restore it with `restore()` or `await using`. */
export interface WorkerStub extends AsyncDisposable {
  /** The id of the patch that carries it. */
  readonly patch: string;
  restore(): Promise<void>;
}

let stubs = 0;

async function install(guest: WorkerGuest, name: string, source: { wat: string } | { wasm: Uint8Array }, kind: string): Promise<string> {
  const id = `${kind}:${name}#${++stubs}`;
  const { bytes } = await buildPatch({ ...source, manifest: { id, sequence: 0, description: `${kind} for ${name}`, targets: [{ function: name, export: 'replacement' }] }, baseline: guest.manifest });
  await guest.load(bytes, { force: true });
  await guest.apply(id, { force: true });
  return id;
}

function handle(guest: WorkerGuest, id: string): WorkerStub {
  let restored = false;
  const restore = async (): Promise<void> => {
    if (restored) return;
    restored = true;
    await guest.revert(id).catch(() => {}); // already reverted (a cumulative patch replaced it): nothing to do
    await guest.unload(id);
  };
  return { patch: id, restore, [Symbol.asyncDispose]: restore };
}

/**
 * Replaces a function of a worker guest with Wasm: a module (text or binary) exporting
 * `replacement` with the target's signature. It may import the baseline like any patch
 * (`baseline.memory`, `live.*`, `original.*`).
 * @throws HotpatchError E_PATCH_REJECTED (wrong signature, unknown function, …)
 */
export async function replaceInWorker(guest: WorkerGuest, name: string, replacement: { wat: string } | Uint8Array): Promise<WorkerStub> {
  return handle(guest, await install(guest, name, replacement instanceof Uint8Array ? { wasm: replacement } : replacement, 'stub'));
}

function signatureOf(guest: WorkerGuest, name: string) {
  const fn = guest.manifest.functions.find((f) => f.name === name || f.exports.includes(name) || `#${f.index}` === name);
  if (!fn) throw new HotpatchError('E_UNKNOWN_FUNCTION', `the baseline has no function named "${name}"`);
  return { fn, type: parseSignature(fn.signature) };
}

const forwardCall = (count: number): string => `(call $orig ${Array.from({ length: count }, (_, i) => `(local.get ${i})`).join(' ')})`;
const params = (types: readonly string[]): string => (types.length ? `(param ${types.join(' ')})` : '');
const results = (types: readonly string[]): string => (types.length ? `(result ${types.join(' ')})` : '');

/** A fault in a worker guest; `injected()` asks the guest how many calls it changed. */
export interface WorkerFault extends WorkerStub {
  injected(): Promise<number>;
}

/**
 * Makes a worker guest's function trap, or return a constant, for its next `times` calls (default:
 * every call), then run its original. The fault is generated Wasm with a counter of its own
 * (a predicate in JS cannot run in the guest's thread).
 * @throws HotpatchError E_UNKNOWN_FUNCTION, E_USAGE
 */
export async function failInWorker(guest: WorkerGuest, name: string, options: { trap?: boolean; returns?: number | bigint; times?: number }): Promise<WorkerFault> {
  const { fn, type } = signatureOf(guest, name);
  if (!options.trap && options.returns === undefined && type.results.length > 0) throw new HotpatchError('E_USAGE', 'failInWorker needs `trap` or `returns`');
  if (!options.trap && type.results.length > 1) throw new HotpatchError('E_USAGE', `${name} returns several values: only \`trap\` is supported across threads`);
  const inject = options.trap ? '(unreachable)' : type.results.length === 0 ? '(return)' : `(return (${type.results[0]}.const ${String(options.returns)}))`;
  const times = Math.min(options.times ?? 0x7fffffff, 0x7fffffff);
  const wat = `(module
    (import "original" "#${fn.index}" (func $orig ${params(type.params)} ${results(type.results)}))
    (global $left (mut i32) (i32.const ${times}))
    (global $injected (mut i32) (i32.const 0))
    (func (export "injected") (result i32) (global.get $injected))
    (func (export "replacement") ${params(type.params)} ${results(type.results)}
      (if (i32.gt_s (global.get $left) (i32.const 0))
        (then
          (global.set $left (i32.sub (global.get $left) (i32.const 1)))
          (global.set $injected (i32.add (global.get $injected) (i32.const 1)))
          ${inject}))
      ${forwardCall(type.params.length)}))`;
  const id = await install(guest, name, { wat }, 'fault');
  return { ...handle(guest, id), injected: async () => (await guest.callPatch(id, 'injected')) as number };
}

/** A call counter in a worker guest. */
export interface WorkerCounter extends WorkerStub {
  count(): Promise<number>;
}

/**
 * Counts the calls of a worker guest's function while it keeps running its original: the spy
 * that can cross threads (arguments stay in the guest's thread; record them in a patch of your
 * own if you need them).
 * @throws HotpatchError E_UNKNOWN_FUNCTION
 */
export async function countCallsInWorker(guest: WorkerGuest, name: string): Promise<WorkerCounter> {
  const { fn, type } = signatureOf(guest, name);
  const wat = `(module
    (import "original" "#${fn.index}" (func $orig ${params(type.params)} ${results(type.results)}))
    (global $n (mut i32) (i32.const 0))
    (func (export "count") (result i32) (global.get $n))
    (func (export "replacement") ${params(type.params)} ${results(type.results)}
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      ${forwardCall(type.params.length)}))`;
  const id = await install(guest, name, { wat }, 'count');
  return { ...handle(guest, id), count: async () => (await guest.callPatch(id, 'count')) as number };
}
