import { HotpatchError, patchRejected } from '../errors.js';
import { checkPatch, FunctionIndex } from '../format/check.js';
import {
  type BaselineManifest,
  decodeBaselineManifest,
  encodePatchManifest,
  findCustomSections,
  PATCH_SECTION,
  type PatchManifest,
  validatePatchManifest,
  withModuleName,
  withoutRanges,
} from '../format/manifest.js';
import { invalidity, parseModule } from '../format/module.js';
import { watToWasm } from './wat.js';

/** What a patch author writes: the manifest without the baseline id, which the builder fills in. */
export interface PatchManifestInput {
  readonly id: string;
  readonly sequence: number;
  readonly description?: string;
  readonly cumulative?: boolean;
  readonly targets: readonly { readonly function: string; readonly export: string }[];
  /** Optional: if given, must equal the baseline's id. */
  readonly baseline?: string;
}

/** Inputs of {@link buildPatch}: the patch code as WAT or Wasm, its manifest, and the baseline it is for. */
export interface BuildPatchInput {
  readonly wat?: string;
  readonly wasm?: Uint8Array;
  readonly manifest: PatchManifestInput | PatchManifest;
  /** The baseline's bytes, or its manifest. */
  readonly baseline: Uint8Array | BaselineManifest;
  /** Host imports (`module.name`) the patch may take beyond its baseline. */
  readonly hostImports?: readonly string[];
  /** Used in error messages. */
  readonly filename?: string;
}

/** A built patch. */
export interface BuiltPatch {
  readonly bytes: Uint8Array;
  readonly manifest: PatchManifest;
}

/**
 * Builds a patch module: compiles WAT if given, writes the manifest section (pinning the
 * baseline id), and checks the result against the baseline the way `Guest.load` will.
 * @throws HotpatchError E_USAGE, E_INVALID_WASM, E_MANIFEST_INVALID, E_NOT_A_BASELINE, E_PATCH_REJECTED (with every problem)
 */
export async function buildPatch(input: BuildPatchInput): Promise<BuiltPatch> {
  if ((input.wat === undefined) === (input.wasm === undefined)) {
    throw new HotpatchError('E_USAGE', 'buildPatch needs exactly one of `wat` or `wasm`');
  }
  const baseline = input.baseline instanceof Uint8Array ? decodeBaselineManifest(input.baseline) : input.baseline;
  const given = validatePatchManifest({ format: 1, ...input.manifest, baseline: input.manifest.baseline ?? baseline.id }, { requireBaseline: true });
  if (given.baseline !== baseline.id) {
    throw new HotpatchError('E_BASELINE_MISMATCH', `manifest names baseline ${given.baseline.slice(0, 12)}…, but the baseline given is ${baseline.id.slice(0, 12)}…`);
  }
  const code = input.wat !== undefined ? await watToWasm(input.wat, input.filename) : input.wasm!;
  // Named `hotpatch:<id>`, so stack frames in its code say which patch they are.
  const bare = withModuleName(withoutRanges(code, findCustomSections(code, PATCH_SECTION)), `hotpatch:${given.id}`);
  const section = encodePatchManifest(given);
  const bytes = new Uint8Array(bare.length + section.length);
  bytes.set(bare);
  bytes.set(section, bare.length);

  const invalid = invalidity(bytes);
  if (invalid) throw new HotpatchError('E_INVALID_WASM', `${input.filename ?? 'patch'}: invalid WebAssembly: ${invalid}`);
  const check = checkPatch(baseline, new FunctionIndex(baseline.functions), parseModule(bytes), given, new Set(input.hostImports ?? []));
  if (check.problems.length > 0) throw patchRejected(given.id, check.problems);
  return { bytes, manifest: given };
}
