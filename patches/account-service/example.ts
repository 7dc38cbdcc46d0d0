// The account service's security fix, applied to a running guest and taken back out.
// Run: npx tsx example.ts (next to service.wasm and the fix-name-overflow files; in this
// repository: npx tsx patches/account-service/example.ts, after npm run build)
import { readFileSync } from 'node:fs';
import { buildPatch, Guest, prepare } from 'wasm-hotpatch';

const here = (name: string) => new URL(name, import.meta.url);
const SET_NAME = 1,
  AUDIT = 4,
  BALANCE = 5,
  ROLE_ADMIN = 7,
  E_DENIED = -4;

const baseline = await prepare(readFileSync(here('service.wasm')));
const guest = await Guest.instantiate(baseline.bytes);
/** The service's exports (see service.c). */
interface AccountService {
  memory: WebAssembly.Memory;
  init(): void;
  handle(op: number, id: number, arg: number): number;
  request_buffer(): number;
  requests_served(): number;
  state(): number;
  state_size(): number;
}
const service = guest.exports as unknown as AccountService;
const payload = (bytes: Uint8Array) => new Uint8Array(service.memory.buffer, service.request_buffer(), bytes.length).set(bytes);
const setName = (id: number, name: string) => {
  const bytes = new TextEncoder().encode(name);
  payload(bytes);
  return service.handle(SET_NAME, id, bytes.length);
};
const serve = (from: number, to: number) => {
  for (let n = from; n < to; n++) {
    const id = 1 + (n % 63);
    if (n % 4 === 0)
      service.handle(2, id, 10); // deposit
    else if (n % 4 === 1)
      service.handle(3, id, 7); // withdraw
    else if (n % 4 === 2) setName(id, `user-${n % 1000}`);
    else service.handle(BALANCE, id, 0);
  }
};
// The exploit: a 16-byte name followed by ROLE_ADMIN, then an audit only administrators may run.
const exploit = (id: number): boolean => {
  payload(new Uint8Array([...new Uint8Array(16).fill(0x41), ROLE_ADMIN]));
  service.handle(SET_NAME, id, 16);
  return service.handle(AUDIT, id, 0) !== E_DENIED;
};
const total = () => Array.from({ length: 64 }, (_, id) => service.handle(BALANCE, id, 0) as number).reduce((a, b) => a + b);
const checksum = () => {
  let h = 0x811c9dc5;
  for (const b of new Uint8Array(service.memory.buffer, service.state(), service.state_size())) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
};

service.init();
serve(0, 1000);
console.log(`served ${service.requests_served()} requests, bank total ${total()}, state ${checksum()}`);
console.log(`exploit as user 5 (unpatched):     ${exploit(5) ? 'WORKS: user 5 is an administrator' : 'refused'}`);
service.init(); // the operator resets the compromised service
serve(0, 1000);

const { bytes } = await buildPatch({
  wat: readFileSync(here('fix-name-overflow.wat'), 'utf8'),
  manifest: JSON.parse(readFileSync(here('fix-name-overflow.json'), 'utf8')),
  baseline: baseline.bytes,
});
const before = checksum();
const patch = guest.apply(await guest.load(bytes));
console.log(`applied "${patch.id}": state ${before} → ${checksum()} (unchanged)`);
console.log(`exploit as user 6 (patched):       ${exploit(6) ? 'WORKS' : 'refused: role stays user'}`);
serve(1000, 2000);
console.log(`served ${service.requests_served()} requests, bank total ${total()}`);

guest.revert(patch);
console.log(`reverted "${patch.id}"`);
console.log(`exploit as user 7 (reverted):      ${exploit(7) ? 'WORKS again: the old code is back' : 'refused'}`);
console.log(JSON.stringify(guest.status().patches.map(({ id, state }) => ({ id, state }))));
