import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { generateKeys, signPatch } from '../src/build/sign.js';
import { Guest, type GuestOptions, trustKey } from '../src/engine/index.js';
import { decodePatchManifest } from '../src/format/manifest.js';
import { signedBytes } from '../src/format/signature.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';
import { digest, watFixture } from './helpers.js';

let baseline: Baseline;
let patch: Uint8Array;
const release = generateKeys();
const other = generateKeys();
beforeAll(async () => {
  baseline = await prepare(await watFixture('calls.wat'));
  patch = (
    await buildPatch({
      wat: '(module (func (export "f") (param i32) (result i32) (i32.const 9)))',
      manifest: { id: 'p', sequence: 1, targets: [{ function: 'double', export: 'f' }] },
      baseline: baseline.bytes,
    })
  ).bytes;
});
const guestWith = async (policy: GuestOptions['policy']) => Guest.instantiate(baseline.bytes, { env: { log: () => {} } }, { policy });
const untouched = (guest: Guest) => ({ memory: digest((guest.exports.memory as WebAssembly.Memory).buffer), status: guest.status(), behaviour: (guest.exports as any).apply(0, 4) });

describe('signed patches and the host policy', () => {
  it('signs (key id in the manifest) and a host trusting the key loads it', async () => {
    const signed = await signPatch(patch, release.privateKey);
    expect(decodePatchManifest(signed.bytes).signer).toBe(signed.keyId);
    const guest = await guestWith({ trustedKeys: [await trustKey(release.publicKey)] });
    guest.apply(await guest.load(signed.bytes));
    expect((guest.exports as any).apply(0, 4)).toBe(9);
  });

  it('refuses unsigned, unknown-key, tampered and oversized patches, each with its code, the guest untouched', async () => {
    const signed = (await signPatch(patch, release.privateKey)).bytes;
    const byOther = (await signPatch(patch, other.privateKey)).bytes;
    const guest = await guestWith({ trustedKeys: [await trustKey(release.publicKey)], maxPatchSize: 4096 });
    const before = untouched(guest);
    const cases: [Uint8Array, string][] = [
      [patch, 'E_UNSIGNED'],
      [byOther, 'E_UNTRUSTED_KEY'],
      [new Uint8Array(5000), 'E_PATCH_TOO_LARGE'],
    ];
    // A changed byte anywhere in what the signature covers: header, code, the manifest at its end.
    const covered = signedBytes(signed).length;
    for (const at of [9, Math.floor(covered / 3), covered - 5]) {
      const tampered = signed.slice();
      tampered[at]! ^= 0x01;
      cases.push([tampered, 'E_BAD_SIGNATURE']);
    }
    // And in the signature itself.
    const forged = signed.slice();
    forged[signed.length - 3]! ^= 0x01;
    cases.push([forged, 'E_BAD_SIGNATURE']);
    for (const [bytes, code] of cases) {
      await expect(guest.load(bytes)).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code })] });
    }
    expect({ ...untouched(guest), behaviour: 8 }).toEqual({ ...before, behaviour: 8 });
  });

  it('a policy can forbid forcing a downgrade', async () => {
    const guest = await guestWith({ allowForcedDowngrade: false });
    const cumulative = (
      await buildPatch({
        wat: '(module (func (export "f") (param i32) (result i32) (i32.const 1)))',
        manifest: { id: 'c', sequence: 5, cumulative: true, targets: [{ function: 'square', export: 'f' }] },
        baseline: baseline.bytes,
      })
    ).bytes;
    guest.apply(await guest.load(cumulative));
    const old = (
      await buildPatch({
        wat: '(module (func (export "f") (param i32) (result i32) (i32.const 2)))',
        manifest: { id: 'old', sequence: 1, targets: [{ function: 'double', export: 'f' }] },
        baseline: baseline.bytes,
      })
    ).bytes;
    await expect(guest.load(old, { force: true })).rejects.toMatchObject({ problems: [expect.objectContaining({ code: 'E_DOWNGRADE', message: expect.stringContaining('policy') })] });
  });

  it('keygen, sign and verify on the command line', async () => {
    const run = promisify(execFile);
    const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const stem = join(dir, 'release');
    const made = JSON.parse((await run(process.execPath, [cli, 'keygen', '-o', stem, '--json'])).stdout);
    expect(readFileSync(`${stem}.key`, 'utf8')).toContain('PRIVATE KEY');
    const file = join(dir, 'p.wasm');
    (await import('node:fs')).writeFileSync(file, patch);
    const signed = JSON.parse((await run(process.execPath, [cli, 'sign', file, '--key', `${stem}.key`, '--json'])).stdout);
    expect(signed.keyId).toBe(made.keyId);
    expect(JSON.parse((await run(process.execPath, [cli, 'verify', file, '--trust', `${stem}.pub`, '--json'])).stdout)).toEqual({ verified: true, keyId: made.keyId });
    const bytes = readFileSync(file);
    bytes[20]! ^= 1;
    (await import('node:fs')).writeFileSync(file, bytes);
    const failed = await run(process.execPath, [cli, 'verify', file, '--trust', `${stem}.pub`]).catch((e) => e);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('E_BAD_SIGNATURE');
  });
});

describe('the policy of a worker guest is enforced in the host', () => {
  it('an unsigned patch never reaches the worker', async () => {
    const { WorkerGuest } = await import('../src/runtime/index.js');
    const guest = await WorkerGuest.start(baseline.bytes, { policy: { trustedKeys: [await trustKey(release.publicKey)] }, imports: new URL('./fixtures/calls-imports.mjs', import.meta.url) });
    try {
      await expect(guest.load(patch)).rejects.toMatchObject({ code: 'E_PATCH_REJECTED', problems: [expect.objectContaining({ code: 'E_UNSIGNED' })] });
      expect((await guest.status()).patches).toEqual([]);
      const signed = (await signPatch(patch, release.privateKey)).bytes;
      await guest.apply((await guest.load(signed)).id);
      expect(await guest.call('apply', 0, 4)).toBe(9);
    } finally {
      await guest.close();
    }
  });
});
