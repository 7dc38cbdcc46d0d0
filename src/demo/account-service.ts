import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HotpatchError } from '../errors.js';

/** Request kinds of patches/account-service/service.c. */
export const Request = { setName: 1, deposit: 2, withdraw: 3, audit: 4, balance: 5 } as const;
export const ROLE_ADMIN = 7;
export const ROLE_USER = 1;
export const E_DENIED = -4;

/** The account service's exports, as its C source defines them. */
export interface AccountExports {
  memory: WebAssembly.Memory;
  init(): void;
  request_buffer(): number;
  handle(kind: number, id: number, arg: number): number;
  role(id: number): number;
  set_role(id: number, role: number): number;
  requests_served(): number;
  audits_run(): number;
  state(): number;
  state_size(): number;
}

/** Paths of the example's files (the guest, its patch), wherever the package is installed. */
export const files = {
  service: new URL('../../patches/account-service/service.wasm', import.meta.url),
  patchWat: new URL('../../patches/account-service/fix-name-overflow.wat', import.meta.url),
  patchManifest: new URL('../../patches/account-service/fix-name-overflow.json', import.meta.url),
};

/**
 * Reads one of the example's files.
 * @throws HotpatchError E_IO (missing from this installation)
 */
export function readFile(url: URL): Uint8Array {
  try {
    return new Uint8Array(readFileSync(url));
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot read the example file ${fileURLToPath(url)}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { cause });
  }
}

/** A client of the service: writes payloads into the request buffer and calls `handle`. */
export class AccountClient {
  constructor(readonly exports: AccountExports) {}

  setName(id: number, name: Uint8Array): number {
    new Uint8Array(this.exports.memory.buffer, this.exports.request_buffer(), name.length).set(name);
    return this.exports.handle(Request.setName, id, name.length);
  }

  /**
   * The exploit: a 16-byte name followed by ROLE_ADMIN, then an audit only administrators may run.
   * Returns true when it worked (the audit answered with the bank's total).
   */
  exploit(id: number): boolean {
    const payload = new Uint8Array(17).fill(0x41);
    payload[16] = ROLE_ADMIN;
    new Uint8Array(this.exports.memory.buffer, this.exports.request_buffer(), 17).set(payload);
    this.exports.handle(Request.setName, id, 16);
    const answer = this.exports.handle(Request.audit, id, 0);
    return answer !== E_DENIED;
  }

  /** An ordinary request from a well-behaved user; returns the service's answer. */
  ordinary(n: number): number {
    const id = 1 + (n % 63);
    switch (n % 4) {
      case 0:
        return this.exports.handle(Request.deposit, id, 10);
      case 1:
        return this.exports.handle(Request.withdraw, id, 7);
      case 2:
        return this.setName(id, new TextEncoder().encode(`user-${n % 1000}`));
      default:
        return this.exports.handle(Request.balance, id, 0);
    }
  }

  /** Total money in the bank: the invariant ordinary traffic keeps (deposits minus withdrawals). */
  total(): number {
    let sum = 0;
    for (let id = 0; id < 64; id++) sum += this.exports.handle(Request.balance, id, 0);
    return sum;
  }

  /** A digest of the whole account table, to show state survives a patch. */
  checksum(): string {
    const bytes = new Uint8Array(this.exports.memory.buffer, this.exports.state(), this.exports.state_size());
    let h = 0x811c9dc5;
    for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
    return (h >>> 0).toString(16).padStart(8, '0');
  }
}
