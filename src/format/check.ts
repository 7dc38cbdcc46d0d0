import type { Problem } from '../errors.js';
import type { BaselineFunction, BaselineManifest, PatchManifest } from './manifest.js';
import { type FuncType, functionType, type Import, signatureText, type WasmModule } from './module.js';

/** Import module names a patch uses to bind back to its baseline (see README, "Patch imports"). */
export const IMPORT_BASELINE = 'baseline';
export const IMPORT_LIVE = 'live';
export const IMPORT_ORIGINAL = 'original';
/** Import module of shadow state (livepatch's `klp_shadow_*`), provided by the host: see `ShadowState`. */
export const IMPORT_SHADOW = 'hotpatch.shadow';
/** The functions of {@link IMPORT_SHADOW}, by name. */
export const SHADOW_FUNCTIONS = ['get', 'alloc', 'get_or_alloc', 'free', 'free_all'] as const;

/** Lifecycle hooks a patch may export, run by the engine like livepatch callbacks. */
export const HOOKS = {
  preApply: 'hotpatch_pre_apply',
  postApply: 'hotpatch_post_apply',
  preRevert: 'hotpatch_pre_revert',
  postRevert: 'hotpatch_post_revert',
} as const;

/** How one import of a patch is satisfied. */
export type ImportBinding = { readonly kind: 'live' | 'original'; readonly fn: BaselineFunction } | { readonly kind: 'baseline'; readonly export: string } | { readonly kind: 'host' };

/** A target resolved against the baseline. */
export interface ResolvedTarget {
  readonly fn: BaselineFunction;
  readonly slot: number;
  readonly export: string;
}

/** The result of checking a patch against a baseline: what to bind, and every problem found. */
export interface PatchCheck {
  readonly targets: ResolvedTarget[];
  readonly imports: { readonly import: Import; readonly binding: ImportBinding }[];
  readonly hooks: Partial<Record<keyof typeof HOOKS, string>>;
  readonly problems: Problem[];
}

/** Looks up baseline functions by name, export name or `#index`. */
export class FunctionIndex {
  readonly #byName = new Map<string, BaselineFunction[]>();
  readonly #byIndex = new Map<number, BaselineFunction>();

  constructor(functions: readonly BaselineFunction[]) {
    for (const f of functions) {
      this.#byIndex.set(f.index, f);
      const names = new Set([f.name, ...f.exports]);
      for (const n of names) {
        const list = this.#byName.get(n) ?? [];
        list.push(f);
        this.#byName.set(n, list);
      }
    }
  }

  /** The function a reference names, or a problem saying why there is none. */
  resolve(ref: string, path: string): BaselineFunction | Problem {
    const m = /^#(\d+)$/.exec(ref);
    if (m) {
      const f = this.#byIndex.get(Number(m[1]));
      return f ?? { code: 'E_UNKNOWN_FUNCTION', message: `${path}: the baseline has no function with index ${m[1]}`, path };
    }
    const found = this.#byName.get(ref);
    if (!found || found.length === 0) {
      return { code: 'E_UNKNOWN_FUNCTION', message: `${path}: the baseline has no function named "${ref}"`, path };
    }
    if (found.length > 1) {
      return {
        code: 'E_AMBIGUOUS_FUNCTION',
        message: `${path}: "${ref}" names ${found.length} baseline functions (${found.map((f) => `#${f.index}`).join(', ')}); name one by index`,
        path,
      };
    }
    return found[0]!;
  }

  /** The one function a plain name (not `#index`) names, or undefined (then `resolve` says why). */
  unique(ref: string): BaselineFunction | undefined {
    if (ref.charCodeAt(0) === 35 /* # */) return undefined;
    const found = this.#byName.get(ref);
    return found?.length === 1 ? found[0] : undefined;
  }

  get size(): number {
    return this.#byIndex.size;
  }
}

function isProblem(x: BaselineFunction | Problem): x is Problem {
  return 'code' in x;
}

const signatures = new WeakMap<FuncType, string>();

/** Whether a type has the given signature text (memoized: patches repeat a few types many times). */
function sameType(a: FuncType, text: string): boolean {
  let sig = signatures.get(a);
  if (sig === undefined) {
    sig = signatureText(a);
    signatures.set(a, sig);
  }
  return sig === text;
}

/**
 * Checks a parsed patch against its baseline without instantiating anything: manifest, targets,
 * signatures, imports, hooks, and that instantiating it cannot write to the baseline.
 * `hostImports` lists `module.name` imports the host's policy allows.
 */
export function checkPatch(baseline: BaselineManifest, functions: FunctionIndex, patch: WasmModule, manifest: PatchManifest, hostImports: ReadonlySet<string>): PatchCheck {
  const problems: Problem[] = [];
  const problem = (code: Problem['code'], message: string, path?: string): void => {
    problems.push(path === undefined ? { code, message } : { code, message, path });
  };

  if (manifest.baseline !== baseline.id) {
    problem('E_BASELINE_MISMATCH', `patch "${manifest.id}" was built for baseline ${manifest.baseline.slice(0, 12)}…, this guest runs ${baseline.id.slice(0, 12)}…`, 'baseline');
  }

  const exportsByName = new Map<string, (typeof patch.exports)[number]>();
  for (const e of patch.exports) exportsByName.set(e.name, e);
  const targets: ResolvedTarget[] = [];
  const seen = new Map<number, number>();
  // Paths are built only for a problem, and a defined function's signature text is kept by its
  // type index: a load of a 100-target patch made 300 strings it never used and 100 WeakMap lookups.
  const texts: (string | undefined)[] = [];
  const signatureOf = (index: number): string => {
    const typeIndex = index >= patch.importedFunctions ? patch.functions[index - patch.importedFunctions] : undefined;
    if (typeIndex === undefined) return signatureText(functionType(patch, index));
    let text = texts[typeIndex];
    if (text === undefined) {
      text = signatureText(functionType(patch, index));
      texts[typeIndex] = text;
    }
    return text;
  };
  for (let i = 0; i < manifest.targets.length; i++) {
    const t = manifest.targets[i]!;
    let fn = functions.unique(t.function);
    if (fn === undefined) {
      const resolved = functions.resolve(t.function, `targets[${i}].function`);
      if (isProblem(resolved)) {
        problems.push(resolved);
        continue;
      }
      fn = resolved;
    }
    if (fn.slot === undefined) {
      problem('E_NOT_PATCHABLE', `targets[${i}].function: "${t.function}" is not patchable (${fn.reason ?? 'no slot'})`, `targets[${i}].function`);
    } else if (seen.has(fn.index)) {
      problem('E_DUPLICATE_TARGET', `targets[${i}].function: "${t.function}" is already replaced by targets[${seen.get(fn.index)}]`, `targets[${i}].function`);
    } else {
      seen.set(fn.index, i);
    }
    const exp = exportsByName.get(t.export);
    if (exp?.kind !== 'func') {
      problem('E_MISSING_EXPORT', `targets[${i}].export: the patch exports no function "${t.export}"`, `targets[${i}].export`);
      continue;
    }
    const text = signatureOf(exp.index);
    if (text !== fn.signature) {
      problem('E_SIGNATURE_MISMATCH', `targets[${i}]: "${t.export}" has signature ${text} but "${fn.name}" has ${fn.signature}`, `targets[${i}]`);
      continue;
    }
    if (fn.slot !== undefined) targets.push({ fn, slot: fn.slot, export: t.export });
  }

  const imports: PatchCheck['imports'] = [];
  for (const imp of patch.imports) {
    const path = `import ${imp.module}.${imp.name}`;
    if (imp.module === IMPORT_LIVE || imp.module === IMPORT_ORIGINAL) {
      if (imp.kind !== 'func') {
        problem('E_IMPORT_TYPE_MISMATCH', `${path}: only functions can be imported from "${imp.module}"`, path);
        continue;
      }
      const fn = functions.resolve(imp.name, path);
      if (isProblem(fn)) {
        problems.push({ ...fn, code: fn.code === 'E_UNKNOWN_FUNCTION' ? 'E_IMPORT_UNRESOLVED' : fn.code });
        continue;
      }
      const type = patch.types[imp.typeIndex!]!;
      if (!sameType(type, fn.signature)) {
        problem('E_IMPORT_TYPE_MISMATCH', `${path}: declared as ${signatureText(type)} but "${fn.name}" has ${fn.signature}`, path);
        continue;
      }
      const noOriginal = imp.module === IMPORT_ORIGINAL && fn.slot !== undefined ? baseline.noOriginal?.[String(fn.index)] : undefined;
      if (noOriginal) {
        problem('E_IMPORT_UNRESOLVED', `${path}: the original of "${fn.name}" cannot be imported: ${noOriginal}`, path);
        continue;
      }
      imports.push({ import: imp, binding: { kind: imp.module, fn } });
    } else if (imp.module === IMPORT_BASELINE) {
      const resolved = resolveBaselineImport(baseline, imp);
      if (typeof resolved !== 'string') {
        problem(resolved.code, `${path}: ${resolved.message}`, path);
        continue;
      }
      imports.push({ import: imp, binding: { kind: 'baseline', export: resolved } });
    } else if (hostImports.has(`${imp.module}.${imp.name}`)) {
      imports.push({ import: imp, binding: { kind: 'host' } });
    } else {
      problem(
        'E_IMPORT_NOT_ALLOWED',
        `${path}: a patch may import only from its baseline ("${IMPORT_BASELINE}", "${IMPORT_LIVE}", "${IMPORT_ORIGINAL}"); the host's policy does not allow "${imp.module}.${imp.name}"`,
        path,
      );
    }
  }

  if (patch.start !== undefined) {
    problem('E_PATCH_HAS_START', 'the patch has a start function: loading it would run code before it is applied', 'start');
  }
  if (patch.data.some((d) => d.mode === 'active' && d.memory < patch.importedMemories)) {
    problem('E_PATCH_WRITES_BASELINE', "the patch has active data segments that would write the baseline's memory when loaded; use passive segments and memory.init in a hook", 'data');
  }
  patch.elements.forEach((seg, i) => {
    if (seg.mode === 'active' && seg.table < patch.importedTables) {
      problem('E_PATCH_WRITES_BASELINE', `element segment ${i} would write the baseline's table ${seg.table} when loaded`, `elem[${i}]`);
    }
  });

  const hooks: PatchCheck['hooks'] = {};
  for (const [key, name] of Object.entries(HOOKS) as [keyof typeof HOOKS, string][]) {
    const exp = exportsByName.get(name);
    if (!exp) continue;
    const type = exp.kind === 'func' ? functionType(patch, exp.index) : undefined;
    const ok = type && type.params.length === 0 && (type.results.length === 0 || (type.results.length === 1 && type.results[0] === 'i32'));
    if (!ok) {
      problem('E_BAD_HOOK', `hook "${name}" must be a function () -> () or () -> (i32)`, `export ${name}`);
      continue;
    }
    hooks[key] = name;
  }

  return { targets, imports, hooks, problems };
}

/** Resolves a `baseline.<name>` import to the baseline export that satisfies it. */
function resolveBaselineImport(baseline: BaselineManifest, imp: Import): string | Problem {
  const alias = /^(memory|table|global|tag):(\d+)$/.exec(imp.name);
  const find = <T extends { index: number; export: string }>(list: readonly T[], kind: string): T | undefined =>
    alias && alias[1] === kind ? list.find((x) => x.index === Number(alias[2])) : list.find((x) => x.export === imp.name);
  switch (imp.kind) {
    case 'memory': {
      const m = imp.name === 'memory' ? baseline.memories[0] : find(baseline.memories, 'memory');
      if (!m) return { code: 'E_IMPORT_UNRESOLVED', message: 'the baseline has no such memory' };
      return m.export;
    }
    case 'table': {
      const t = find(baseline.tables, 'table');
      if (!t) return { code: 'E_IMPORT_UNRESOLVED', message: 'the baseline has no such table' };
      if (t.type !== imp.table!.element) {
        return { code: 'E_IMPORT_TYPE_MISMATCH', message: `declared as a ${imp.table!.element} table, the baseline's holds ${t.type}` };
      }
      return t.export;
    }
    case 'global': {
      const g = find(baseline.globals, 'global');
      if (!g) return { code: 'E_IMPORT_UNRESOLVED', message: 'the baseline has no such global' };
      const want = imp.global!;
      if (g.type !== want.type || g.mutable !== want.mutable) {
        return {
          code: 'E_IMPORT_TYPE_MISMATCH',
          message: `declared as ${want.mutable ? 'mut ' : ''}${want.type}, the baseline's is ${g.mutable ? 'mut ' : ''}${g.type}`,
        };
      }
      return g.export;
    }
    case 'tag': {
      const t = find(baseline.tags, 'tag');
      if (!t) return { code: 'E_IMPORT_UNRESOLVED', message: 'the baseline has no such exception tag' };
      return t.export;
    }
    default:
      return { code: 'E_IMPORT_NOT_ALLOWED', message: `a patch cannot import a ${imp.kind} from its baseline` };
  }
}
