import { readFileSync } from 'node:fs';
import { buildPatch } from '../build/build.js';
import { signPatch } from '../build/sign.js';

const file = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../patches/${path}`, import.meta.url)));

/** The baselines the fleet demo, tests and benchmark run: the account service, and the Rust quota service as "another baseline". */
export const fleetBaselines = {
  account: (): Uint8Array => file('account-service/service.baseline.wasm'),
  quota: (): Uint8Array => file('rust-quota/quota.baseline.wasm'),
};

/**
 * A bad fix for the account service: it checks names as the real fix does, but traps on names of
 * exactly 7 bytes (as "user-42" is), so some ordinary requests trap once it is in.
 */
const BAD_WAT = `(module
  (import "baseline" "memory" (memory 1))
  (import "original" "set_name" (func $set_name (param i32 i32 i32) (result i32)))
  (func (export "set_name") (param $id i32) (param $src i32) (param $len i32) (result i32)
    (if (i32.eq (local.get $len) (i32.const 7)) (then unreachable))
    (if (i32.ge_u (local.get $len) (i32.const 16)) (then (return (i32.const -2))))
    (i32.store8 (i32.add (local.get $src) (local.get $len)) (i32.const 0))
    (call $set_name (local.get $id) (local.get $src) (local.get $len))))`;

const target = [{ function: 'set_name', export: 'set_name' }];

/** The fleet's patches, built from the checked-in sources and signed with `privateKey` when given. */
export async function fleetPatches(privateKey?: string): Promise<{ bad: Uint8Array; fix: Uint8Array; quotaFix: Uint8Array; oldFix: Uint8Array }> {
  const baseline = fleetBaselines.account();
  const sign = async (bytes: Uint8Array): Promise<Uint8Array> => (privateKey ? (await signPatch(bytes, privateKey)).bytes : bytes);
  const fixWat = readFileSync(new URL('../../patches/account-service/fix-name-overflow.wat', import.meta.url), 'utf8');
  const bad = await buildPatch({ wat: BAD_WAT, manifest: { id: 'name-check-1', sequence: 2, description: 'set_name: refuse over-long names (traps on 7-byte names)', targets: target }, baseline });
  const fix = await buildPatch({
    wat: fixWat,
    manifest: { id: 'name-check-2', sequence: 3, cumulative: true, description: 'set_name: refuse names without room for the terminator', targets: target },
    baseline,
  });
  const oldFix = await buildPatch({ wat: fixWat, manifest: { id: 'name-check-0', sequence: 1, cumulative: true, description: 'an older build of the fix', targets: target }, baseline });
  return {
    bad: await sign(bad.bytes),
    fix: await sign(fix.bytes),
    oldFix: await sign(oldFix.bytes),
    quotaFix: await sign(file('rust-quota/fix-quota-overflow.patch.wasm')),
  };
}
