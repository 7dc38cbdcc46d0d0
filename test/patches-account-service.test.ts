import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPatch } from '../src/build/build.js';
import { AccountClient, type AccountExports, files, readFile, ROLE_ADMIN } from '../src/demo/account-service.js';
import { Guest } from '../src/engine/index.js';
import { prepare, type Baseline } from '../src/prepare/prepare.js';

let baseline: Baseline;
let patchBytes: Uint8Array;

beforeAll(async () => {
  baseline = await prepare(readFile(files.service));
  patchBytes = (await buildPatch({ wat: readFileSync(files.patchWat, 'utf8'), manifest: JSON.parse(readFileSync(files.patchManifest, 'utf8')), baseline: baseline.bytes })).bytes;
});

async function service() {
  const guest = await Guest.instantiate(baseline.bytes);
  const client = new AccountClient(guest.exports as unknown as AccountExports);
  client.exports.init();
  return { guest, client };
}

describe('patches/account-service: the off-by-one that overwrites the role byte', () => {
  it('is exploitable in the unpatched guest', async () => {
    const { client } = await service();
    expect(client.exports.role(5)).toBe(1);
    expect(client.exploit(5)).toBe(true);
    expect(client.exports.role(5)).toBe(ROLE_ADMIN);
  });

  it('stops working once the patch is applied between requests, with all earlier state intact', async () => {
    const { guest, client } = await service();
    for (let n = 0; n < 2000; n++) client.ordinary(n);
    const total = client.total();
    const state = client.checksum();
    const served = client.exports.requests_served();

    guest.apply(await guest.load(patchBytes));
    expect(client.checksum()).toBe(state);
    expect(client.exports.requests_served()).toBe(served);
    expect(client.total()).toBe(total);

    expect(client.exploit(9)).toBe(false);
    expect(client.exports.role(9)).toBe(1);
    // Ordinary names still work, and the fix's own answer for over-long names is the service's E_TOO_LONG.
    expect(client.setName(9, new TextEncoder().encode('fifteen-chars!!'))).toBe(0);
    expect(client.setName(9, new Uint8Array(16).fill(65))).toBe(-2);
    for (let n = 2000; n < 3000; n++) client.ordinary(n);
    expect(client.total()).toBe(total + 250 * 10 - 250 * 7);
  });

  it('comes back when the patch is reverted, and the state accumulated while patched stays', async () => {
    const { guest, client } = await service();
    const patch = guest.apply(await guest.load(patchBytes));
    for (let n = 0; n < 500; n++) client.ordinary(n);
    const state = client.checksum();
    guest.revert(patch);
    expect(client.checksum()).toBe(state);
    expect(client.exploit(11)).toBe(true);
    expect(guest.status().patches).toMatchObject([{ id: 'fix-name-overflow', state: 'reverted' }]);
  });
});
