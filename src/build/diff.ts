import { HotpatchError } from '../errors.js';
import { type BaselineManifest, decodeBaselineManifest, sha256 } from '../format/manifest.js';
import { readLinking } from '../format/linking.js';
import { invalidity, parseModule, type WasmModule } from '../format/module.js';
import { identityMaps, relocateBody } from '../format/relocate.js';
import { type BuiltPatch, buildPatch } from './build.js';
import { type Carried, emitPatch } from './_emit.js';
import { type DiffReason, gname, isHookExport, isShadowImport, structuralReasons } from './_eligibility.js';
import { type ThroughCallers, throughCallers } from './_callers.js';
import { type Build, bodyComparer, Canon, calleeInOld, functionRefs, matchFunctions } from './_match.js';
import { staticReasons } from './_statics.js';
import { classifyChanges, type LeftOut } from './_changes.js';

export type { DiffReason } from './_eligibility.js';
export type { LeftOut } from './_changes.js';
export type { ThroughCallers } from './_callers.js';

/** Options of {@link diffBuilds}. */
export interface DiffOptions {
  /** The baseline prepared from `old` (bytes, or its manifest). */
  readonly baseline: Uint8Array | BaselineManifest;
  readonly id: string;
  readonly sequence?: number;
  readonly cumulative?: boolean;
  readonly description?: string;
  /** Carry functions that differ only in line numbers instead of leaving them out (default false). */
  readonly carryLineNumbers?: boolean;
  /** Carry functions whose struct field offsets changed instead of refusing (LAYOUT_CHANGED). */
  readonly allowLayoutChange?: boolean;
}

/**
 * How exact the comparison was. `exact`: both builds carry relocations (-Wl,--emit-relocs), so
 * every static address is compared by symbol. `heuristic`: no relocations, so constants are told
 * apart by where their value goes (a call argument is a value, a load or store address is an
 * address). `names` says whether both had a name section (functions matched by name first).
 */
export interface DiffMode {
  readonly statics: 'exact' | 'heuristic';
  readonly names: boolean;
}

/** A patch was built: which baseline functions it replaces and which new helpers it carries. */
export interface Hotpatchable {
  readonly hotpatchable: true;
  readonly patch: BuiltPatch;
  /** Baseline functions the patch replaces: those whose code changed, and callers re-pointed at a carried helper. */
  readonly changed: readonly string[];
  readonly added: readonly string[];
  /**
   * Changed functions the baseline cannot patch (excluded, e.g. as hot), carried as helpers of the
   * patch through their callers, which the patch replaces (transitively while a caller cannot be patched either).
   */
  readonly throughCallers: readonly ThroughCallers[];
  /** New globals the patch defines itself: state that starts when the patch loads and lives with it. */
  readonly ownedGlobals: readonly string[];
  /** True when both builds carried relocations (-Wl,--emit-relocs): static moves were checked exactly. */
  readonly exactStatics: boolean;
  /** Lifecycle hooks the fixed build exports, carried as the patch's (`hotpatch_post_revert`, …). */
  readonly hooks: readonly string[];
  /** Shadow-state functions the patch imports from the host (`hotpatch.shadow.*`). */
  readonly shadow: readonly string[];
  readonly mode: DiffMode;
  /** Functions that differ but are not in the patch, and why. */
  readonly leftOut: readonly LeftOut[];
  /** Changes carried because the author confirmed them (`allowLayoutChange`). */
  readonly warnings: readonly DiffReason[];
}

/** The change needs a new baseline, for these reasons. */
export interface NotHotpatchable {
  readonly hotpatchable: false;
  readonly reasons: readonly DiffReason[];
  readonly mode: DiffMode;
  readonly leftOut: readonly LeftOut[];
}

const name = (build: Build, i: number): string => build.module.functionNames.get(i) ?? build.module.exports.find((e) => e.kind === 'func' && e.index === i)?.name ?? `#${i}`;

/**
 * Builds a patch from two builds of the same program, the way kpatch-build's create-diff-object
 * does: `old` is the build the baseline was prepared from, `new` the fixed one. The patch carries
 * every function whose code changed (compared by structure, not bytes) and the new helpers they
 * call, bound back to the baseline. When the change cannot be carried, says why, every reason.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_UNSUPPORTED_FEATURE, E_NOT_A_BASELINE,
 * E_WRONG_BUILD (old is not the baseline's source), E_NOTHING_TO_PATCH, E_PATCH_REJECTED
 */
export async function diffBuilds(oldWasm: Uint8Array, newWasm: Uint8Array, options: DiffOptions): Promise<Hotpatchable | NotHotpatchable> {
  const baseline = options.baseline instanceof Uint8Array ? decodeBaselineManifest(options.baseline) : options.baseline;
  const oldModule = parseModule(oldWasm);
  const newModule = parseModule(newWasm);
  if ((await sha256(oldWasm)) !== baseline.source) {
    throw new HotpatchError('E_WRONG_BUILD', "the old build is not the one this baseline was prepared from (its SHA-256 differs from the baseline's source); pass the exact file given to prepare");
  }
  const invalid = invalidity(newWasm);
  if (invalid) throw new HotpatchError('E_INVALID_WASM', `the new build is not valid WebAssembly: ${invalid}`);
  const oldBuild: Build = { module: oldModule, linking: readLinking(oldModule) };
  const newBuild: Build = { module: newModule, linking: readLinking(newModule) };
  const exactStatics = oldBuild.linking !== undefined && newBuild.linking !== undefined;
  // Without relocations on both sides, compare raw constants: symbols on one side only would mismatch.
  const [a, b]: Build[] = exactStatics
    ? [oldBuild, newBuild]
    : [
        { ...oldBuild, linking: undefined },
        { ...newBuild, linking: undefined },
      ];

  const mode: DiffMode = { statics: exactStatics ? 'exact' : 'heuristic', names: oldModule.functionNames.size > 0 && newModule.functionNames.size > 0 };

  const canon = new Canon();
  const matching = matchFunctions(a!, b!, canon);
  const dataLines: LeftOut[] = [];
  const reasons = structuralReasons(a!, b!, matching, dataLines);

  const callee = calleeInOld(matching);
  const same = bodyComparer(a!, b!, canon, callee);
  const differing: [old: number, new: number][] = [];
  for (const [ni, oi] of matching.newToOld) {
    if (ni < newModule.importedFunctions) continue;
    if (!same(oi, ni)) differing.push([oi, ni]);
  }
  differing.sort((x, y) => x[0] - y[0]);
  const classified = classifyChanges(a!, b!, differing, callee, {
    exact: exactStatics,
    carryLineNumbers: options.carryLineNumbers ?? false,
    allowLayoutChange: options.allowLayoutChange ?? false,
    staticsMoved: reasons.some((r) => r.code === 'DATA_CHANGED' || r.code === 'GLOBAL_CHANGED'),
  });
  const leftOut = [...dataLines, ...classified.leftOut];
  // A changed function without a slot travels as a helper; its direct callers are replaced instead.
  const closure = throughCallers(
    baseline,
    oldModule,
    classified.carried.map(([oi]) => oi),
  );
  const helperOld = new Set(closure.helpers);
  const withNew = (oi: number): [number, number][] => {
    const ni = matching.oldToNew.get(oi);
    return ni === undefined ? [] : [[oi, ni]];
  };
  const changed: [old: number, new: number][] = [
    ...classified.carried.filter(([oi]) => !helperOld.has(oi)),
    ...closure.targets.filter((oi) => !classified.carried.some(([x]) => x === oi)).flatMap(withNew),
  ].sort((x, y) => x[0] - y[0]);
  const throughHelpers = closure.helpers.flatMap(withNew).map(([, ni]) => ni);

  // Lifecycle hooks the fixed build exports (say, a post-revert hook freeing shadow state) become the patch's.
  const hooks = newModule.exports.filter((e) => isHookExport(e) && !oldModule.exports.some((x) => x.name === e.name) && !matching.newToOld.has(e.index));
  // New functions the changed code and the hooks reach travel with the patch.
  const helpers: number[] = hooks.map((e) => e.index);
  const pending = [...changed.map(([, ni]) => ni), ...throughHelpers, ...helpers];
  const seen = new Set([...pending, ...throughHelpers]);
  while (pending.length > 0) {
    const fn = pending.pop()!;
    for (const c of functionRefs(b!.module, fn)) {
      if (!matching.newToOld.has(c) && !seen.has(c) && c >= newModule.importedFunctions) {
        seen.add(c);
        helpers.push(c);
        pending.push(c);
      }
    }
  }
  helpers.sort((x, y) => x - y);

  // A new global used only by code the patch carries becomes the patch's own state.
  const ownGlobals = carriedGlobals(b!, oldModule, new Set([...changed.map(([, ni]) => ni), ...throughHelpers, ...helpers]));
  for (let k = reasons.length - 1; k >= 0; k--) {
    const r = reasons[k]!;
    if (r.code === 'GLOBAL_ADDED' && [...ownGlobals].some((g) => gname(newModule, g) === r.item)) reasons.splice(k, 1);
  }
  reasons.push(...closure.reasons);
  reasons.push(...classified.reasons, ...(exactStatics ? staticReasons(oldBuild, newBuild) : []));
  if (changed.length === 0 && reasons.length === 0) {
    const why =
      throughHelpers.length > 0
        ? `only ${closure.through.map((t) => `\`${t.function}\``).join(', ')} changed, which no patchable function calls (unreachable code)`
        : leftOut.length > 0
          ? `only line numbers changed (${leftOut.length} function${leftOut.length === 1 ? '' : 's'} left out; pass carryLineNumbers to carry them)`
          : 'no function changed between the two builds';
    throw new HotpatchError('E_NOTHING_TO_PATCH', `${why}: nothing to patch`);
  }

  const targetName = (oi: number): string => {
    const fn = baseline.functions.find((f) => f.index === oi);
    const unique = fn && baseline.functions.filter((f) => f.name === fn.name).length === 1;
    return unique ? fn.name : `#${oi}`;
  };
  const hookOf = new Map(hooks.map((e) => [e.index, e.name]));
  const carried: Carried[] = [
    ...changed.map(([oi, ni]) => ({ index: ni, export: targetName(oi) })),
    ...throughHelpers.map((index) => ({ index })),
    ...helpers.map((index) => (hookOf.has(index) ? { index, export: hookOf.get(index)! } : { index })),
  ];
  const shadowNames = newModule.imports.filter(isShadowImport).map((imp) => `${imp.module}.${imp.name}`);
  let bytes: Uint8Array | undefined;
  try {
    bytes = emitPatch(b!, matching, carried, ownGlobals);
  } catch (error) {
    if (!(error instanceof HotpatchError)) throw error;
    reasons.push({ code: 'USES_SEGMENTS', item: 'changed code', message: `${error.message}; ship it with a new baseline` });
  }
  if (reasons.length > 0 || !bytes) return { hotpatchable: false, reasons, mode, leftOut };

  const patch = await buildPatch({
    wasm: bytes,
    manifest: {
      id: options.id,
      sequence: options.sequence ?? 1,
      cumulative: options.cumulative ?? false,
      description: options.description ?? `changed: ${changed.map(([oi]) => targetName(oi)).join(', ')}`,
      targets: changed.map(([oi]) => ({ function: targetName(oi), export: targetName(oi) })),
    },
    baseline,
    hostImports: shadowNames,
  });
  return {
    hotpatchable: true,
    patch,
    changed: changed.map(([oi]) => targetName(oi)),
    added: helpers.filter((h) => !hookOf.has(h)).map((h) => name(b!, h)),
    throughCallers: closure.through,
    hooks: hooks.map((e) => e.name),
    shadow: shadowNames,
    ownedGlobals: [...ownGlobals].map((g) => gname(newModule, g)),
    exactStatics,
    mode,
    leftOut,
    warnings: classified.warnings,
  };
}

/**
 * New globals (beyond the old build's) that only carried functions touch, that are not exported
 * and start from a plain constant: the patch can define them itself. They start from their initial
 * value when the patch loads and live as long as the patch (livepatch's shadow variables).
 */
function carriedGlobals(build: Build, oldModule: WasmModule, carried: ReadonlySet<number>): Set<number> {
  const m = build.module;
  const oldCount = oldModule.importedGlobals + oldModule.globals.length;
  const candidates = new Set<number>();
  for (let g = Math.max(oldCount, m.importedGlobals); g < m.importedGlobals + m.globals.length; g++) {
    const init = m.globals[g - m.importedGlobals]!.init;
    const plainConstant = init.length >= 2 && [0x41, 0x42, 0x43, 0x44].includes(init[0]!) && init[init.length - 1] === 0x0b;
    if (plainConstant && !m.exports.some((e) => e.kind === 'global' && e.index === g)) candidates.add(g);
  }
  if (candidates.size === 0) return candidates;
  for (let f = m.importedFunctions; f < m.importedFunctions + m.functions.length; f++) {
    if (carried.has(f)) continue;
    relocateBody(m.bytes, m.bodies[f - m.importedFunctions]!, {
      ...identityMaps(),
      segment: (_kind, i) => i,
      global: (g) => {
        candidates.delete(g);
        return g;
      },
    });
  }
  return candidates;
}
