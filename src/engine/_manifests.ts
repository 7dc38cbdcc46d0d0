import { type PatchManifest, parsePatchManifest, patchManifestText } from '../format/manifest.js';

/** Parsed manifests kept, most recently used last. */
const ENTRIES = 32;
/** Manifest texts longer than this (a patch of ~7,000 targets) are parsed each time, not kept. */
const MAX_TEXT = 256 * 1024;
const parsed = new Map<string, PatchManifest>();

/**
 * A patch's manifest, parsed once per distinct text in this process: JSON.parse and validation of
 * a 100-target manifest take ~25 µs, a tenth of a load, and the same patch is loaded again after
 * an unload, a restart of its guest, or by each guest of a host. Keyed by the exact text, so a hit
 * is the parse the text would give; frozen, because every patch of that text shares it.
 * @throws HotpatchError E_NOT_WASM, E_INVALID_WASM, E_MANIFEST_MISSING, E_MANIFEST_INVALID
 */
export function patchManifest(bytes: Uint8Array): PatchManifest {
  const text = patchManifestText(bytes);
  const hit = parsed.get(text);
  if (hit !== undefined) {
    parsed.delete(text);
    parsed.set(text, hit);
    return hit;
  }
  const manifest = parsePatchManifest(text);
  for (const t of manifest.targets) Object.freeze(t);
  Object.freeze(manifest.targets);
  Object.freeze(manifest);
  if (text.length <= MAX_TEXT) {
    parsed.set(text, manifest);
    if (parsed.size > ENTRIES) parsed.delete(parsed.keys().next().value!);
  }
  return manifest;
}
