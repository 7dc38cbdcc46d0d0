import { ByteReader } from '../format/bytes.js';
import { newInstruction, Op, readInstruction } from '../format/instructions.js';
import { identityMaps, relocateBody } from '../format/relocate.js';
import { type FuncType, signatureText, type WasmModule } from '../format/module.js';
import type { Linking } from '../format/linking.js';

/** A build to compare: its parsed module and, when linked with --emit-relocs, its relocations. */
export interface Build {
  readonly module: WasmModule;
  readonly linking: Linking | undefined;
}

/** Which old function each new function is, by function index. */
export interface Matching {
  readonly newToOld: ReadonlyMap<number, number>;
  readonly oldToNew: ReadonlyMap<number, number>;
}

const UNKNOWN = 0x0fffffff; // a callee not matched (yet): compares equal to any other unknown
const NEW_BASE = 0x08000000; // a callee that exists only in the new build

export const functionCount = (m: WasmModule): number => m.importedFunctions + m.functions.length;

/** The type of function `index`. */
export function typeOf(m: WasmModule, index: number): FuncType {
  if (index < m.importedFunctions) return m.types[m.imports.filter((i) => i.kind === 'func')[index]!.typeIndex!]!;
  return m.types[m.functions[index - m.importedFunctions]!]!;
}

/** A shared numbering of signatures and symbols, so two builds' canonical bodies compare byte for byte. */
export class Canon {
  readonly #signatures = new Map<string, number>();
  readonly #byType = new WeakMap<FuncType, number>();
  readonly #symbols = new Map<string, number>();

  signature(type: FuncType): number {
    const known = this.#byType.get(type);
    if (known !== undefined) return known;
    const key = signatureText(type);
    let id = this.#signatures.get(key);
    if (id === undefined) {
      id = this.#signatures.size;
      this.#signatures.set(key, id);
    }
    this.#byType.set(type, id);
    return id;
  }

  symbol(name: string): number {
    let id = this.#symbols.get(name);
    if (id === undefined) {
      id = this.#symbols.size;
      this.#symbols.set(name, id);
    }
    return id;
  }
}

/**
 * A function body in a form two builds can compare: callees as old-build identities (via
 * `callee`), types as signature ids, and — with relocations — static addresses as
 * `symbol + addend` instead of numbers, so code that only moved compares equal. `masked` hides
 * every constant and load/store offset (and ignores relocations): the body's shape.
 */
export function canonicalBody(build: Build, index: number, canon: Canon, callee: (index: number) => number, masked = false): string {
  const { module } = build;
  const linking = masked ? undefined : build.linking;
  const body = module.bodies[index - module.importedFunctions]!;
  const bytes = relocateBody(module.bytes, body, {
    ...identityMaps(),
    func: callee,
    type: (t) => canon.signature(module.types[t]!),
    segment: (_kind, i) => i,
    ...(linking
      ? {
          relocAt: (p: number) => {
            const reloc = linking.addressAt.get(p);
            if (!reloc) return undefined;
            // Not executable: a marker no LEB starts with, then the symbol and addend.
            const id = canon.symbol(reloc.symbol);
            return new Uint8Array([0xff, id & 0xff, (id >> 8) & 0xff, (id >> 16) & 0xff, reloc.addend & 0xff, (reloc.addend >> 8) & 0xff, (reloc.addend >> 16) & 0xff, (reloc.addend >>> 24) & 0xff]);
          },
        }
      : masked
        ? { relocAt: maskImmediates(module.bytes) }
        : {}),
  });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Compares matched pairs: whether two bodies are the same once callees are numbered by old-build
 * identity (`callee` for the new build's), as their canonical bodies say. Bodies that are byte for
 * byte the same, under the same type section, whose callees are the same functions, are the same
 * without making a canonical body: most functions of a fixed build did not change. With
 * relocations the canonical body also names each address's symbol, so it is always made.
 */
export function bodyComparer(a: Build, b: Build, canon: Canon, callee: (index: number) => number): (oi: number, ni: number) => boolean {
  const o = a.module;
  const n = b.module;
  const sameTypes = !a.linking && !b.linking && o.types.length === n.types.length && o.types.every((t, k) => signatureText(t) === signatureText(n.types[k]!));
  return (oi, ni) => {
    const x = o.bodies[oi - o.importedFunctions];
    const y = n.bodies[ni - n.importedFunctions];
    if (sameTypes && x && y && sameBytes(o.bytes, x.bodyStart, x.end, n.bytes, y.bodyStart, y.end)) {
      const xs = functionRefs(o, oi);
      const ys = functionRefs(n, ni);
      if (xs.every((c, k) => c === callee(ys[k]!))) return true;
    }
    return canonicalBody(a, oi, canon, (c) => c) === canonicalBody(b, ni, canon, callee);
  };
}

function sameBytes(x: Uint8Array, xStart: number, xEnd: number, y: Uint8Array, yStart: number, yEnd: number): boolean {
  if (xEnd - xStart !== yEnd - yStart) return false;
  for (let k = 0; k < xEnd - xStart; k++) if (x[xStart + k] !== y[yStart + k]) return false;
  return true;
}

/**
 * Matches the functions of two builds: imports by module and name, then names from the name
 * section, then export names, then, for what is left, the structure of their bodies (callees
 * already matched are part of the structure), repeated until nothing more matches. Robust to
 * functions renumbered because others were added, and to a missing name section.
 */
export function matchFunctions(oldBuild: Build, newBuild: Build, canon: Canon): Matching {
  const o = oldBuild.module;
  const n = newBuild.module;
  const newToOld = new Map<number, number>();
  const oldToNew = new Map<number, number>();
  const pair = (ni: number, oi: number): void => {
    if (newToOld.has(ni) || oldToNew.has(oi)) return;
    if (signatureText(typeOf(n, ni)) !== signatureText(typeOf(o, oi)) && (ni < n.importedFunctions || oi < o.importedFunctions)) return;
    newToOld.set(ni, oi);
    oldToNew.set(oi, ni);
    // A caller's fingerprint names this callee now: computed again when next asked for.
    for (const c of newCallers?.get(ni) ?? []) newCache.delete(c);
    for (const c of oldCallers?.get(oi) ?? []) oldCache.delete(c);
  };
  // Fingerprints (exact and shape) per function, kept until one of its callees is matched.
  const oldCache = new Map<number, [string, string?]>();
  const newCache = new Map<number, [string, string?]>();
  let oldCallers: Map<number, Set<number>> | undefined;
  let newCallers: Map<number, Set<number>> | undefined;

  const funcImports = (m: WasmModule) => m.imports.filter((i) => i.kind === 'func');
  const oldImports = new Map(funcImports(o).map((imp, i) => [`${imp.module}\u0000${imp.name}`, i]));
  funcImports(n).forEach((imp, i) => {
    const oi = oldImports.get(`${imp.module}\u0000${imp.name}`);
    if (oi !== undefined) pair(i, oi);
  });

  const uniqueBy = (entries: Iterable<[string, number]>): Map<string, number> => {
    const seen = new Map<string, number>();
    const dup = new Set<string>();
    for (const [k, v] of entries) {
      if (seen.has(k)) dup.add(k);
      seen.set(k, v);
    }
    for (const k of dup) seen.delete(k);
    return seen;
  };
  const definedNames = (m: WasmModule) => [...m.functionNames].filter(([i]) => i >= m.importedFunctions).map(([i, name]) => [name, i] as [string, number]);
  const oldNames = uniqueBy(definedNames(o));
  for (const [name, ni] of uniqueBy(definedNames(n))) {
    const oi = oldNames.get(name);
    if (oi !== undefined) pair(ni, oi);
  }
  const exported = (m: WasmModule) => m.exports.filter((e) => e.kind === 'func' && e.index >= m.importedFunctions).map((e) => [e.name, e.index] as [string, number]);
  const oldExports = new Map(exported(o));
  for (const [name, ni] of exported(n)) {
    const oi = oldExports.get(name);
    if (oi !== undefined) pair(ni, oi);
  }

  // Function pointers: the same slot of the same element segment. Before structure, because a
  // moved struct field can make one function's new body equal to another's old one.
  const bySlot = (): void => {
    o.elements.forEach((seg, s) => {
      const other = n.elements[s];
      if (!other || seg.encoding !== 'indices' || other.encoding !== 'indices') return;
      (other.items as number[]).forEach((ni, k) => {
        const oi = (seg.items as number[])[k];
        if (oi !== undefined && !newToOld.has(ni) && !oldToNew.has(oi) && signatureText(typeOf(n, ni)) === signatureText(typeOf(o, oi))) pair(ni, oi);
      });
    });
  };
  if (o.elements.length === n.elements.length && o.elements.every((seg, s) => seg.items.length === n.elements[s]!.items.length)) bySlot();
  // Structure, to a fixed point: each round's matches make the next round's fingerprints sharper.
  // A changed function has a new structure; it is found by where it sits instead: the same slot of
  // the same element segment (a function pointer), or the same matched callers.
  oldCallers = callersOf(o);
  newCallers = callersOf(n);
  const cached = (cache: Map<number, [string, string?]>, i: number, kind: 0 | 1, compute: () => string): string => {
    let entry = cache.get(i);
    if (!entry) {
      entry = [kind === 0 ? compute() : ''];
      cache.set(i, entry);
    }
    if (kind === 1 && entry[1] === undefined) entry[1] = compute();
    return entry[kind]!;
  };
  for (;;) {
    const oldLeft = range(o.importedFunctions, functionCount(o)).filter((i) => !oldToNew.has(i));
    const newLeft = range(n.importedFunctions, functionCount(n)).filter((i) => !newToOld.has(i));
    if (oldLeft.length === 0 || newLeft.length === 0) break;
    const before = newToOld.size;
    const fingerprint = (build: Build, i: number, toOld: (callee: number) => number | undefined): string =>
      `${canon.signature(typeOf(build.module, i))}:${canonicalBody(build, i, canon, (c) => toOld(c) ?? UNKNOWN)}`;
    const oldPrints = uniqueBy(oldLeft.map((i) => [cached(oldCache, i, 0, () => fingerprint(oldBuild, i, (c) => (oldToNew.has(c) ? c : undefined))), i]));
    const newPrints = uniqueBy(newLeft.map((i) => [cached(newCache, i, 0, () => fingerprint(newBuild, i, (c) => newToOld.get(c))), i]));
    for (const [print, ni] of newPrints) {
      const oi = oldPrints.get(print);
      if (oi !== undefined) pair(ni, oi);
    }
    if (newToOld.size > before) continue;

    bySlot();
    if (newToOld.size > before) continue;

    // The same instructions with other constants or field offsets: line numbers that moved, a struct
    // field that moved. Release builds without names change hundreds of functions this way.
    const shapeOf = (build: Build, i: number, toOld: (callee: number) => number | undefined): string =>
      `${canon.signature(typeOf(build.module, i))}:${canonicalBody(build, i, canon, (c) => toOld(c) ?? UNKNOWN, true)}`;
    const oldShapes = uniqueBy(oldLeft.map((i) => [cached(oldCache, i, 1, () => shapeOf(oldBuild, i, (c) => (oldToNew.has(c) ? c : undefined))), i]));
    const newShapes = uniqueBy(newLeft.map((i) => [cached(newCache, i, 1, () => shapeOf(newBuild, i, (c) => newToOld.get(c))), i]));
    for (const [shape, ni] of newShapes) {
      const oi = oldShapes.get(shape);
      if (oi !== undefined) pair(ni, oi);
    }
    if (newToOld.size > before) continue;

    const place = (m: WasmModule, i: number, callers: Map<number, Set<number>>, toOld: (c: number) => number | undefined): string | undefined => {
      const known = [...(callers.get(i) ?? [])].map(toOld).filter((c): c is number => c !== undefined);
      return known.length === 0 ? undefined : `${signatureText(typeOf(m, i))}|${known.sort((a, b) => a - b).join(',')}`;
    };
    const oldPlaces = uniqueBy(
      oldLeft.flatMap((i) => {
        const key = place(o, i, oldCallers, (c) => (oldToNew.has(c) ? c : undefined));
        return key === undefined ? [] : [[key, i] as [string, number]];
      }),
    );
    const newPlaces = uniqueBy(
      newLeft.flatMap((i) => {
        const key = place(n, i, newCallers, (c) => newToOld.get(c));
        return key === undefined ? [] : [[key, i] as [string, number]];
      }),
    );
    for (const [key, ni] of newPlaces) {
      const oi = oldPlaces.get(key);
      if (oi !== undefined) pair(ni, oi);
    }
    if (newToOld.size === before) break;
  }
  return { newToOld, oldToNew };
}

const MASK = new Uint8Array([0xfe]);

/** A `relocAt` that hides every constant and every load/store offset (not the alignment). */
function maskImmediates(bytes: Uint8Array): (position: number, start: number) => Uint8Array | undefined {
  return (p, start) => {
    const op = bytes[start]!;
    if (op === 0x41 || op === 0x42) return p === start + 1 ? MASK : undefined;
    if (op < 0x28 || op > 0x3e) return undefined;
    let q = start + 1;
    while (bytes[q]! & 0x80) q++;
    return p === q + 1 ? MASK : undefined;
  };
}

/** For every function, the functions that call it or take its address. */
function callersOf(m: WasmModule): Map<number, Set<number>> {
  const callers = new Map<number, Set<number>>();
  for (let k = 0; k < m.bodies.length; k++) {
    const caller = m.importedFunctions + k;
    for (const callee of functionRefs(m, caller)) {
      let set = callers.get(callee);
      if (!set) {
        set = new Set();
        callers.set(callee, set);
      }
      set.add(caller);
    }
  }
  return callers;
}

/**
 * `compute(m, index)` remembered per module and defined function: diff reads the same bodies of
 * two builds many times (matching rounds, comparison, the helper walk), so each is worked out once.
 */
export function perFunction<T>(compute: (m: WasmModule, index: number) => T): (m: WasmModule, index: number) => T {
  const cache = new WeakMap<WasmModule, T[]>();
  return (m, index) => {
    let all = cache.get(m);
    if (!all) {
      all = [];
      cache.set(m, all);
    }
    const k = index - m.importedFunctions;
    let value = all[k];
    if (value === undefined) {
      value = compute(m, index);
      all[k] = value;
    }
    return value;
  };
}

/** The functions a body calls or takes the address of (`call`, `return_call`, `ref.func`), in order. */
export const functionRefs: (m: WasmModule, index: number) => readonly number[] = perFunction((m, index) => scanFunctionRefs(m, index));

function scanFunctionRefs(m: WasmModule, index: number): number[] {
  const body = m.bodies[index - m.importedFunctions]!;
  const r = new ByteReader(m.bytes, body.codeStart, body.end);
  const ins = newInstruction();
  const out: number[] = [];
  while (!r.done) {
    readInstruction(r, ins);
    if (ins.op === Op.call || ins.op === Op.returnCall || ins.op === Op.refFunc) out.push(ins.index);
  }
  return out;
}

/** The callee numbering for comparing a matched pair: old identities, new-only functions apart. */
export function calleeInOld(matching: Matching): (index: number) => number {
  return (c) => matching.newToOld.get(c) ?? NEW_BASE + c;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
