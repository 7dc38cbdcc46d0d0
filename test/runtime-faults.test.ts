import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
// The runtime spawns compiled workers: test it as it ships, from dist/ (npm test builds first).
import { buildPatch, generateKeys, prepare, signPatch, trustKey, watToWasm } from 'wasm-hotpatch';
import { WorkerGuest } from 'wasm-hotpatch/runtime';
import { fixture } from './helpers.js';

// `quit` ends the worker thread from inside a call; `f` is what the patches replace.
const GUEST = '(module (import "host" "exit" (func $exit (param i32))) (func (export "quit") (param i32) (call $exit (local.get 0))) (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))';
const imports = fixture('exit-imports.mjs');
let baseline: Uint8Array;
const patch = async (id: string, body: string, extra = '') =>
  (await buildPatch({ wat: `(module (func (export "f") (param i32) (result i32) ${body}) ${extra})`, manifest: { id, sequence: 1, targets: [{ function: 'f', export: 'f' }] }, baseline })).bytes;
const open: WorkerGuest[] = [];
afterEach(async () => {
  for (const g of open.splice(0)) await g.close();
});
const start = async (options: Parameters<typeof WorkerGuest.start>[1] = {}) => {
  const guest = await WorkerGuest.start(baseline, { imports, ...options });
  open.push(guest);
  return guest;
};
const settled = (p: Promise<unknown>) => p.then(() => 'answered', (e: { code?: string }) => e.code ?? String(e));
const until = async (check: () => boolean) => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  return check();
};

beforeAll(async () => {
  baseline = (await prepare(await watToWasm(GUEST))).bytes;
});

describe('dead workers fail fast', () => {
  it('a request to a worker that exits rejects at once with E_GUEST_EXITED, and so does every later one, with nothing else keeping the process alive', () => {
    // A process of its own: in vitest, the runner's timers keep the event loop alive, which hid
    // requests that never settled (their waits do not keep a process alive). The timeout is far
    // beyond the test's: only failing fast answers in time.
    const dist = new URL('../dist/', import.meta.url);
    const script = `
      import { WorkerGuest } from '${new URL('runtime/index.js', dist).href}';
      const baseline = new Uint8Array(${JSON.stringify([...baseline])});
      const guest = await WorkerGuest.start(baseline, { imports: ${JSON.stringify(imports)}, timeout: 600000 });
      const settled = (p) => p.then(() => 'answered', (e) => e.code);
      const calling = settled(guest.call('quit', 3));
      const queued = settled(guest.status());
      const during = await calling;
      console.log(JSON.stringify({ during, queued: await queued, later: await settled(guest.status()), state: guest.state, exitCode: guest.worker.exitCode }));`;
    const file = join(mkdtempSync(join(tmpdir(), 'hotpatch-')), 'exit.mjs');
    writeFileSync(file, script);
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual({ during: 'E_GUEST_EXITED', queued: 'E_GUEST_EXITED', later: 'E_GUEST_EXITED', state: 'exited', exitCode: 3 });
  });

  it('close() rejects the pending request and every queued one with E_CLOSED at once, and every later one', async () => {
    // Stuck in a loop it never leaves, with no safepoints and no interrupts: nothing can answer.
    const stuck = await watToWasm('(module (func (export "spin") (loop $l (br $l))) (func (export "f") (param i32) (result i32) (local.get 0)))');
    const guest = await WorkerGuest.start((await prepare(stuck)).bytes, { run: { export: 'spin' }, interrupts: false, timeout: 600_000 });
    open.push(guest);
    const requests = [guest.status(), guest.call('f', 1), guest.status()].map(settled);
    await guest.close();
    expect(await Promise.all(requests)).toEqual(['E_CLOSED', 'E_CLOSED', 'E_CLOSED']);
    expect(await settled(guest.status())).toBe('E_CLOSED');
    expect(guest.state).toBe('exited');
    await guest.close(); // twice is harmless
  });

  it('a worker stuck in a pre-apply hook is reported busy, not idle, and close() still ends it', async () => {
    const guest = await start({ timeout: 600_000 });
    expect(guest.state).toBe('idle');
    const hanging = await guest.load(await patch('hangs', '(local.get 0)', '(func (export "hotpatch_pre_apply") (result i32) (loop $l (br $l)) (i32.const 1))'));
    const applying = settled(guest.apply(hanging.id));
    expect(await until(() => guest.state === 'busy')).toBe(true);
    const status = settled(guest.status());
    await guest.close();
    expect([await applying, await status]).toEqual(['E_CLOSED', 'E_CLOSED']);
  });

  it('a request that times out in a busy worker says it is busy', async () => {
    const guest = await start({ timeout: 300 });
    const hanging = await guest.load(await patch('hangs', '(local.get 0)', '(func (export "hotpatch_pre_apply") (result i32) (loop $l (br $l)) (i32.const 1))'));
    void guest.apply(hanging.id).catch(() => {});
    await expect(guest.status()).rejects.toMatchObject({ code: 'E_TIMEOUT', message: expect.stringContaining('busy serving an earlier request') });
  });
});

describe('a worker guest runs only the bytes its policy verified', () => {
  it('a module handed in beside the bytes is not what runs: the guest compiles the verified bytes', async () => {
    const keys = generateKeys();
    const guest = await start({ policy: { trustedKeys: [await trustKey(keys.publicKey)] } });
    const signed = (await signPatch(await patch('signed', '(i32.const 10)'), keys.privateKey)).bytes;
    const other = await WebAssembly.compile((await patch('signed', '(i32.const 666)')) as Uint8Array<ArrayBuffer>);
    // No such option in the API any more; a caller that passes one anyway gets the signed code.
    const loaded = await guest.load(signed, { module: other } as never);
    await guest.apply(loaded.id);
    expect(await guest.call('f', 0)).toBe(10);
  });

  it('bytes changed after load() is called are not what runs (the host verifies and sends its own copy)', async () => {
    const keys = generateKeys();
    const guest = await start({ policy: { trustedKeys: [await trustKey(keys.publicKey)] } });
    const signed = (await signPatch(await patch('copy', '(i32.const 10)'), keys.privateKey)).bytes;
    const evil = await patch('copy', '(i32.const 666)');
    const loading = guest.load(signed);
    // Signature checks await: a caller (or another task) rewriting the array meanwhile changes nothing.
    signed.set(evil.subarray(0, Math.min(evil.length, signed.length)));
    await guest.apply((await loading).id);
    expect(await guest.call('f', 0)).toBe(10);
  });
});
