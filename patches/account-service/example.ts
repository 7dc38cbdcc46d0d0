// The account service's security fix, applied to a running guest and taken back out.
// Run: npx tsx patches/account-service/example.ts
import { readFileSync } from 'node:fs';
import { buildPatch } from '../../src/build/build.js';
import { AccountClient, type AccountExports, files, readFile } from '../../src/demo/account-service.js';
import { Guest } from '../../src/engine/index.js';
import { prepare } from '../../src/prepare/prepare.js';

const baseline = await prepare(readFile(files.service));
const guest = await Guest.instantiate(baseline.bytes);
const service = new AccountClient(guest.exports as unknown as AccountExports);
service.exports.init();

for (let n = 0; n < 1000; n++) service.ordinary(n);
console.log(`served ${service.exports.requests_served()} requests, bank total ${service.total()}, state ${service.checksum()}`);
console.log(`exploit as user 5 (unpatched):     ${service.exploit(5) ? 'WORKS: user 5 is an administrator' : 'refused'}`);
service.exports.init(); // the operator resets the compromised service
for (let n = 0; n < 1000; n++) service.ordinary(n);

const { bytes } = await buildPatch({
  wat: readFileSync(files.patchWat, 'utf8'),
  manifest: JSON.parse(readFileSync(files.patchManifest, 'utf8')),
  baseline: baseline.bytes,
});
const before = service.checksum();
const patch = guest.apply(await guest.load(bytes));
console.log(`applied "${patch.id}": state ${before} → ${service.checksum()} (unchanged)`);
console.log(`exploit as user 6 (patched):       ${service.exploit(6) ? 'WORKS' : 'refused: role stays user'}`);
for (let n = 1000; n < 2000; n++) service.ordinary(n);
console.log(`served ${service.exports.requests_served()} requests, bank total ${service.total()}`);

guest.revert(patch);
console.log(`reverted "${patch.id}"`);
console.log(`exploit as user 7 (reverted):      ${service.exploit(7) ? 'WORKS again: the old code is back' : 'refused'}`);
console.log(JSON.stringify(guest.status().patches.map(({ id, state }) => ({ id, state }))));
