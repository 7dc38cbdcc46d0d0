import { readFileSync } from 'node:fs';
import { buildPatch, generateKeys, signPatch, trustKey } from 'wasm-hotpatch';

const examples = new URL('../patches/account-service/', import.meta.url);
export const baselinePath = new URL('service.baseline.wasm', examples).pathname;
export const baselineBytes = new Uint8Array(readFileSync(baselinePath));
export const fixPatch = new Uint8Array(readFileSync(new URL('fix-name-overflow.patch.wasm', examples)));
export const fixPatchC = new Uint8Array(readFileSync(new URL('fix-name-overflow-c.patch.wasm', examples)));

/** One key pair for a test file, and the policy that trusts it. */
export async function release() {
  const keys = generateKeys();
  return { keys, policy: { trustedKeys: [await trustKey(keys.publicKey)] }, sign: async (bytes: Uint8Array) => (await signPatch(bytes, keys.privateKey)).bytes };
}

/**
 * A patch of the account service's `role(id)`: it answers `value`, and may carry a pre-apply hook
 * (WAT instructions leaving an i32) or replace `role` with a body of its own.
 */
export async function rolePatch(id: string, sequence: number, options: { value?: number; cumulative?: boolean; preApply?: string; body?: string } = {}): Promise<Uint8Array> {
  const hook = options.preApply === undefined ? '' : `(func (export "hotpatch_pre_apply") (result i32) ${options.preApply})`;
  const { bytes } = await buildPatch({
    wat: `(module (import "baseline" "memory" (memory 1))
      (func (export "role") (param i32) (result i32) ${options.body ?? `(i32.const ${options.value ?? sequence})`}) ${hook})`,
    manifest: { id, sequence, ...(options.cumulative ? { cumulative: true } : {}), targets: [{ function: 'role', export: 'role' }] },
    baseline: baselineBytes,
  });
  return bytes;
}

/** The applied patch ids of a status, in load order. */
export const appliedIds = (status: { patches: readonly { id: string; state: string }[] }): string[] => status.patches.filter((p) => p.state === 'applied').map((p) => p.id);
