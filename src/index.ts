/**
 * wasm-hotpatch: make Wasm modules hotpatch-ready, build patch modules, and attach and detach them
 * on running guests. The engine alone (browser-safe) is also at `wasm-hotpatch/engine`.
 */
export { prepare, type Baseline, type PrepareOptions } from './prepare/prepare.js';
export {
  type CountingBuild,
  type HotExclusion,
  parseProfile,
  prepareProfile,
  type Profile,
  type ProfiledFunction,
  readProfile,
} from './prepare/profile.js';
export { buildPatch, type BuildPatchInput, type BuiltPatch, type PatchManifestInput } from './build/build.js';
export { watToWasm } from './build/wat.js';
export { generateKeys, signPatch } from './build/sign.js';
export { diffBuilds, type DiffOptions, type DiffReason, type Hotpatchable, type NotHotpatchable, type ThroughCallers } from './build/diff.js';
export * from './engine/index.js';
export {
  type BaselineExport,
  type BaselineFunction,
  type BaselineManifest,
  decodeBaselineManifest,
  decodePatchManifest,
  type Dispatch,
  type PatchManifest,
  type PatchTarget,
} from './format/manifest.js';
