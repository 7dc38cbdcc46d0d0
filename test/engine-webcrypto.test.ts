import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateKeys, signPatch } from '../src/build/sign.js';
import { Guest, HotpatchError, trustKey, verifySignature } from '../src/engine/index.js';

// A browser page served over plain http from anything but localhost has `crypto` without
// `subtle`; hiding it here is that page, as far as the engine can tell.
const baseline = new Uint8Array(readFileSync(new URL('../patches/account-service/service.baseline.wasm', import.meta.url)));
const patch = new Uint8Array(readFileSync(new URL('../patches/account-service/fix-name-overflow.patch.wasm', import.meta.url)));
const keys = generateKeys();
const withoutWebCrypto = () => vi.stubGlobal('crypto', { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) });

async function failure(promise: Promise<unknown>): Promise<HotpatchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HotpatchError);
  return error as HotpatchError;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the engine without WebCrypto (not a secure context)', () => {
  it('Guest.instantiate says WebCrypto is missing and how to get it, typed', async () => {
    withoutWebCrypto();
    const error = await failure(Guest.instantiate(baseline));
    expect(error.code).toBe('E_NO_WEBCRYPTO');
    expect(error.message).toMatch(/crypto\.subtle.*secure context.*localhost/);
    expect(error.message).toMatch(/verifyBaseline: false/);
  });

  it('trustKey says WebCrypto is missing, not that the key is no Ed25519 key', async () => {
    withoutWebCrypto();
    const error = await failure(trustKey(keys.publicKey));
    expect(error.code).toBe('E_NO_WEBCRYPTO');
  });

  it('a signed patch under a policy is refused with the WebCrypto problem, the guest untouched', async () => {
    const signed = (await signPatch(patch, keys.privateKey)).bytes;
    const trusted = await trustKey(keys.publicKey);
    const guest = await Guest.instantiate(baseline, {}, { policy: { trustedKeys: [trusted] } });
    withoutWebCrypto();
    const error = await failure(guest.load(signed));
    expect(error.code).toBe('E_PATCH_REJECTED');
    expect(error.problems.map((p) => p.code)).toEqual(['E_NO_WEBCRYPTO']);
    expect(guest.status().patches).toEqual([]);
    expect((await failure(verifySignature(signed, [trusted]))).code).toBe('E_NO_WEBCRYPTO');
  });

  it('what needs no hashing still works: a baseline trusted as given, an unsigned patch', async () => {
    withoutWebCrypto();
    const guest = await Guest.instantiate(baseline, {}, { verifyBaseline: false });
    const loaded = await guest.load(patch);
    guest.apply(loaded);
    expect(guest.status().patches.map((p) => [p.id, p.state])).toEqual([['fix-name-overflow', 'applied']]);
  });
});
