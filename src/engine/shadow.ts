import { HotpatchError } from '../errors.js';
import { IMPORT_SHADOW } from '../format/check.js';
import type { ShadowOptions } from './contract.js';

/**
 * The allocator a guest exports under `names` (emscripten's by default).
 * @throws HotpatchError E_IMPORT_UNRESOLVED when the guest exports no such function or memory
 */
export function allocatorOf(e: WebAssembly.Exports, names: ShadowOptions = {}): ShadowAllocator {
  const [malloc, free, memory] = [e[names.malloc ?? 'malloc'], e[names.free ?? 'free'], e[names.memory ?? 'memory']];
  if (typeof malloc !== 'function' || !(memory instanceof WebAssembly.Memory) || (names.free !== undefined && typeof free !== 'function')) {
    const missing = [
      typeof malloc !== 'function' && `no function ${names.malloc ?? 'malloc'}`,
      !(memory instanceof WebAssembly.Memory) && `no memory ${names.memory ?? 'memory'}`,
      names.free !== undefined && typeof free !== 'function' && `no function ${names.free}`,
    ].filter(Boolean);
    throw new HotpatchError('E_IMPORT_UNRESOLVED', `shadow state needs the guest's allocator: it exports ${missing.join(', ')}`);
  }
  return { malloc: malloc as (size: number) => number, ...(typeof free === 'function' ? { free: free as (pointer: number) => void } : {}), memory };
}

/**
 * Where shadow fields live: the guest's own allocator and memory. Without `free` (emscripten
 * exports only what its glue uses, often `malloc` alone) freed fields are kept on a free list per
 * size and reused by the next allocation of that size, so repeated apply/revert does not grow.
 */
export interface ShadowAllocator {
  malloc(size: number): number;
  free?(pointer: number): void;
  readonly memory: WebAssembly.Memory;
}

/**
 * Shadow state, as livepatch's shadow variables (`kernel/livepatch/shadow.c`): a patch attaches a
 * new field to an existing object by its address instead of changing the object's struct, whose
 * layout the running guest's objects already have. Fields are keyed by object address and id, live
 * in the guest's memory (its own `malloc`), are zeroed when allocated, and are freed by the patch's
 * post-revert hook calling `free_all(id)` (livepatch's `klp_shadow_free_all` in a post-unpatch
 * callback). Patches reach it as the `hotpatch.shadow` import module: name the guest's allocator
 * exports in its `shadow` option (every guest kind: in-thread, worker), or give {@link imports} to
 * an in-thread guest as `hostImports`. One store per guest; ids are chosen by the patches.
 */
export class ShadowState {
  readonly #allocator: () => ShadowAllocator;
  /** id → object address → field address and size. */
  readonly #fields = new Map<number, Map<number, { at: number; size: number }>>();
  /** Freed fields by size, when the guest has no `free`. */
  readonly #spare = new Map<number, number[]>();

  /** @param allocator the guest's allocator, or a function giving it once the guest exists */
  constructor(allocator: ShadowAllocator | (() => ShadowAllocator)) {
    this.#allocator = typeof allocator === 'function' ? allocator : () => allocator;
  }

  /**
   * A store over a guest's exported `malloc`, `free` (if any) and `memory` (emscripten's names by default),
   * looked up on first use, so it can be made before the guest is instantiated.
   * @throws HotpatchError E_IMPORT_UNRESOLVED (on first use) when the guest exports no such functions
   */
  static fromExports(exports: () => WebAssembly.Exports, names: ShadowOptions = {}): ShadowState {
    return new ShadowState(() => allocatorOf(exports(), names));
  }

  /** The `hotpatch.shadow` import module, for the guest's `hostImports`. */
  get imports(): Record<string, Record<string, (...args: number[]) => number | void>> {
    return {
      [IMPORT_SHADOW]: {
        get: (obj, id) => this.get(obj!, id!),
        alloc: (obj, id, size) => this.alloc(obj!, id!, size!),
        get_or_alloc: (obj, id, size) => this.getOrAlloc(obj!, id!, size!),
        free: (obj, id) => this.free(obj!, id!),
        free_all: (id) => this.freeAll(id!),
      },
    };
  }

  /** The field `id` of the object at `obj`, or 0. */
  get(obj: number, id: number): number {
    return this.#fields.get(id >>> 0)?.get(obj >>> 0)?.at ?? 0;
  }

  /** A new zeroed field of `size` bytes, or 0 if the object has one already or memory ran out. */
  alloc(obj: number, id: number, size: number): number {
    return this.get(obj, id) === 0 ? this.#allocate(obj >>> 0, id >>> 0, size >>> 0) : 0;
  }

  /** The field if it exists, else a new zeroed one (0 if memory ran out). */
  getOrAlloc(obj: number, id: number, size: number): number {
    return this.get(obj, id) || this.#allocate(obj >>> 0, id >>> 0, size >>> 0);
  }

  /** Frees the field `id` of the object at `obj`, if it has one. */
  free(obj: number, id: number): void {
    const byObject = this.#fields.get(id >>> 0);
    const field = byObject?.get(obj >>> 0);
    if (field === undefined) return;
    byObject!.delete(obj >>> 0);
    this.#release(field);
  }

  /** Frees the field `id` of every object. */
  freeAll(id: number): void {
    const byObject = this.#fields.get(id >>> 0);
    if (!byObject) return;
    this.#fields.delete(id >>> 0);
    for (const field of byObject.values()) this.#release(field);
  }

  /** How many fields are alive, of one id or of all. */
  count(id?: number): number {
    if (id !== undefined) return this.#fields.get(id >>> 0)?.size ?? 0;
    let n = 0;
    for (const byObject of this.#fields.values()) n += byObject.size;
    return n;
  }

  #allocate(obj: number, id: number, size: number): number {
    const { malloc, memory } = this.#allocator();
    const bytes = Math.max(size, 1);
    const field = this.#spare.get(bytes)?.pop() ?? malloc(bytes) >>> 0;
    if (field === 0) return 0;
    new Uint8Array(memory.buffer, field, bytes).fill(0);
    let byObject = this.#fields.get(id);
    if (!byObject) {
      byObject = new Map();
      this.#fields.set(id, byObject);
    }
    byObject.set(obj, { at: field, size: bytes });
    return field;
  }

  #release(field: { at: number; size: number }): void {
    const { free } = this.#allocator();
    if (free) {
      free(field.at);
      return;
    }
    let spare = this.#spare.get(field.size);
    if (!spare) {
      spare = [];
      this.#spare.set(field.size, spare);
    }
    spare.push(field.at);
  }
}
