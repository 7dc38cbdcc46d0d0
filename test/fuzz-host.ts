// The host side of prepare's differential fuzzer: imports for a generated module that log every
// call, a script of calls to its exports, and what each call observably did (result or trap,
// imports called, globals, memory), so an original and its prepared baseline can be compared.
import { createHash } from 'node:crypto';
import { ByteWriter } from '../src/format/bytes.js';
import { functionType, kindByte, parseModule, type FuncType, type ValType, type WasmModule } from '../src/format/module.js';
import { appendToVector, rebuildModule } from '../src/format/sections.js';

/** Export names the fuzzer adds so the original's whole state can be read from JS. */
export const OBSERVE_PREFIX = 'fuzz.';

/** An export the script calls, with the arguments of each call. */
export interface ScriptCall {
  readonly name: string;
  readonly args: readonly unknown[];
}

/** Everything one call did that the host can see. */
export interface Observation {
  readonly call: string;
  readonly outcome: string;
  readonly log: readonly string[];
  readonly globals: readonly string[];
  readonly memory: string;
}

/** Re-emits a module with every global, memory and tag exported (append-only), so both sides expose the same state. */
export function observable(bytes: Uint8Array): Uint8Array {
  const module = parseModule(bytes);
  const count = (kind: 'global' | 'memory' | 'tag', defined: number) => module.imports.filter((i) => i.kind === kind).length + defined;
  const extra: Uint8Array[] = [];
  const add = (kind: 'global' | 'memory' | 'tag', n: number) => {
    for (let i = 0; i < n; i++) extra.push(new ByteWriter().name(`${OBSERVE_PREFIX}${kind}.${i}`).u8(kindByte(kind)).u32(i).finish());
  };
  add('global', count('global', module.globals.length));
  add('memory', count('memory', module.memories.length));
  add('tag', count('tag', module.tags.length));
  return rebuildModule(module, new Map([[7, appendToVector(module, 7, extra)]]));
}

/** A generated module may export this: the host calls it before each call of the script (hang limits). */
export const REFUEL_EXPORT = `${OBSERVE_PREFIX}refuel`;

/** Import calls kept in full per scripted call; beyond them only a count and a hash. */
export const LOG_KEPT = 200;

/** Import calls one scripted call may make before every further one throws. */
export const IMPORT_BUDGET = 20_000;

/** A value as text that compares equal exactly when the values are the same (−0, NaN, bigints, references). */
export function show(value: unknown): string {
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `[${value.map(show).join(', ')}]`;
  if (value === null || value === undefined) return String(value);
  return typeof value; // a function or a host object: identities differ between instances by design
}

/** A stack overflow depends on frame sizes, which prepare changes: such a run proves nothing. */
export const isExhaustion = (text: string): boolean => text.includes('Maximum call stack size exceeded');

// Exception handling's JS API, which TypeScript's lib does not declare yet.
type Tag = object;
interface WasmException {
  is(tag: Tag): boolean;
  getArg(tag: Tag, index: number): unknown;
}
const EH = WebAssembly as unknown as { Exception: new (...args: never[]) => WasmException; Tag: new (type: { parameters: string[] }) => Tag };

/** What an export call threw, comparable across instances (exception tags by their index in the module). */
function showError(error: unknown, exports: Record<string, any>): string {
  if (error instanceof EH.Exception) {
    for (const [name, tag] of Object.entries(exports)) {
      if (!name.startsWith(`${OBSERVE_PREFIX}tag.`) || !error.is(tag as Tag)) continue;
      const args: unknown[] = [];
      for (let i = 0; ; i++) {
        try {
          args.push(error.getArg(tag as Tag, i));
        } catch {
          break;
        }
      }
      return `exception ${name}(${args.map(show).join(', ')})`;
    }
    return 'exception with a foreign tag';
  }
  const e = error as Error;
  return `${e?.constructor?.name}: ${e?.message}`;
}

function defaultValue(type: ValType): unknown {
  return type === 'i64' ? 0n : type === 'funcref' || type === 'externref' ? null : 0;
}

/** The host a generated module runs against: its imports, a call log, and the exports once instantiated. */
export class FuzzHost {
  /** The first {@link LOG_KEPT} import calls of the current call; the rest are counted and hashed (a loop may log millions). */
  readonly log: string[] = [];
  #logged = 0;
  #logHash = 0x811c9dc5;
  exports: Record<string, any> = {};
  /** Errors the host caught inside the last call (`call-export-catch`): a trap among them ends activation counting. */
  caught = 0;
  readonly #module: WasmModule;
  readonly #callable: string[];

  constructor(bytes: Uint8Array) {
    this.#module = parseModule(bytes);
    this.#callable = this.#module.exports.filter((e) => e.kind === 'func' && !e.name.startsWith(OBSERVE_PREFIX)).map((e) => e.name);
  }

  /** Imports for every import of the module, fresh for each instance. */
  imports(): WebAssembly.Imports {
    const out: Record<string, Record<string, unknown>> = {};
    for (const imp of this.#module.imports) {
      out[imp.module] ??= {};
      const ns = out[imp.module]!;
      if (imp.kind === 'func') ns[imp.name] = this.#func(imp.name, this.#module.types[imp.typeIndex!]!);
      else if (imp.kind === 'global') {
        const g = imp.global!;
        ns[imp.name] = new WebAssembly.Global({ value: g.type as WebAssembly.ValueType, mutable: g.mutable }, g.type === 'externref' ? { host: imp.name } : defaultValue(g.type));
      } else if (imp.kind === 'memory') {
        const m = imp.memory!;
        ns[imp.name] = new WebAssembly.Memory({ initial: m.min, ...(m.max === undefined ? {} : { maximum: m.max }), ...(m.shared ? { shared: true } : {}) });
      } else if (imp.kind === 'table') {
        const t = imp.table!;
        ns[imp.name] = new WebAssembly.Table({ element: t.element === 'funcref' ? 'anyfunc' : 'externref', initial: t.limits.min, ...(t.limits.max === undefined ? {} : { maximum: t.limits.max }) });
      } else {
        ns[imp.name] = new EH.Tag({ parameters: [...this.#module.types[imp.typeIndex!]!.params] });
      }
    }
    return out as WebAssembly.Imports;
  }

  #record(entry: string): void {
    this.#logged++;
    if (this.log.length < LOG_KEPT) this.log.push(entry);
    // FNV-1a over every entry, so calls past the kept ones still compare.
    let h = this.#logHash;
    for (let i = 0; i < entry.length; i++) h = Math.imul(h ^ entry.charCodeAt(i), 0x01000193) >>> 0;
    this.#logHash = Math.imul(h ^ 0x0a, 0x01000193) >>> 0;
  }

  /** binaryen's `fuzzing-support` imports (logging, table access, calling exports, throwing), every call logged. */
  #func(name: string, type: FuncType): (...args: unknown[]) => unknown {
    return (...args: unknown[]) => {
      this.#record(`${name}(${args.map(show).join(', ')})`);
      // A runaway call ends at the same import call on both sides: deterministic, unlike a timeout.
      if (this.#logged > IMPORT_BUDGET) throw new Error('import budget exhausted');
      const table = this.exports.table as WebAssembly.Table | undefined;
      switch (name) {
        case 'table-get':
          return table!.get(args[0] as number);
        case 'table-set':
          return table!.set(args[0] as number, args[1] as any);
        case 'call-export':
        case 'call-export-catch': {
          const target = this.#callable[args[0] as number];
          try {
            if (target === undefined) throw new Error(`no export ${String(args[0])}`);
            const fn = functionType(this.#module, this.#module.exports.find((e) => e.name === target)!.index);
            this.exports[target](...fn.params.map(defaultValue));
          } catch (error) {
            if (name === 'call-export') throw error;
            this.caught++;
            return 1;
          }
          return name === 'call-export-catch' ? 0 : undefined;
        }
        case 'throw':
          throw new Error(`thrown by the host (${args.map(show).join(', ')})`);
        default:
          return type.results.length === 0 ? undefined : type.results.length === 1 ? defaultValue(type.results[0]!) : type.results.map(defaultValue);
      }
    };
  }

  /** `count` calls to the exports a host can call (no v128 in their signature), arguments from `random`. */
  script(random: () => number, count: number): ScriptCall[] {
    const candidates = this.#callable.filter((name) => {
      const t = functionType(this.#module, this.#module.exports.find((e) => e.name === name)!.index);
      return ![...t.params, ...t.results].includes('v128');
    });
    if (candidates.length === 0) return [];
    return Array.from({ length: count }, () => {
      const name = candidates[Math.floor(random() * candidates.length)]!;
      const t = functionType(this.#module, this.#module.exports.find((e) => e.name === name)!.index);
      return { name, args: t.params.map((p) => argument(p, random)) };
    });
  }

  /** Runs one call and records what it did. */
  observe(call: ScriptCall): Observation {
    this.exports[REFUEL_EXPORT]?.();
    this.log.length = 0;
    this.#logged = 0;
    this.#logHash = 0x811c9dc5;
    this.caught = 0;
    let outcome: string;
    try {
      outcome = `value ${show(this.exports[call.name](...call.args))}`;
    } catch (error) {
      outcome = `threw ${showError(error, this.exports)}`;
    }
    const globals: string[] = [];
    const memories: string[] = [];
    for (const [name, value] of Object.entries(this.exports)) {
      if (name.startsWith(`${OBSERVE_PREFIX}global.`)) {
        try {
          globals.push(`${name}=${show((value as WebAssembly.Global).value)}`);
        } catch {
          globals.push(`${name}=v128`); // JS cannot read a v128 global
        }
      } else if (name.startsWith(`${OBSERVE_PREFIX}memory.`)) {
        memories.push(
          createHash('sha256')
            .update(new Uint8Array((value as WebAssembly.Memory).buffer))
            .digest('hex')
            .slice(0, 16),
        );
      }
    }
    const log = this.#logged > LOG_KEPT ? [...this.log, `… ${this.#logged} calls in all, hash ${this.#logHash.toString(16)}`] : [...this.log];
    return { call: `${call.name}(${call.args.map(show).join(', ')})`, outcome, log, globals, memory: memories.join(',') };
  }
}

function argument(type: ValType, random: () => number): unknown {
  const r = random();
  switch (type) {
    case 'i32':
      return r < 0.3 ? [0, 1, -1, 2147483647, -2147483648][Math.floor(random() * 5)] : Math.floor(random() * 2 ** 32) | 0;
    case 'i64':
      return r < 0.3 ? [0n, 1n, -1n][Math.floor(random() * 3)] : BigInt.asIntN(64, (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32)));
    case 'f32':
    case 'f64':
      return r < 0.3 ? [0, -0, Number.NaN, Infinity, -Infinity, 1.5][Math.floor(random() * 6)] : (random() - 0.5) * 2 ** Math.floor(random() * 80);
    default:
      return null;
  }
}
