// The README's testing example, verbatim: a guest from patches/ with an internal allocator.
import { readFileSync } from 'node:fs';
import { beforeEach, expect, it } from 'vitest';
import { Guest } from 'wasm-hotpatch';
import { failInTest, spyInTest } from 'wasm-hotpatch/testing/vitest';

const E_NO_MEMORY = -6;
const REQ_NOTE = 6;
const bytes = readFileSync(new URL('../patches/account-service/service.baseline.wasm', import.meta.url));

let guest: Guest;
let service: Record<string, any>;
const addNote = (id: number, text: string): number => {
  const payload = new TextEncoder().encode(text);
  new Uint8Array(service.memory.buffer, service.request_buffer(), payload.length).set(payload);
  return service.handle(REQ_NOTE, id, payload.length);
};
const accounts = () => Buffer.from(service.memory.buffer, service.state(), service.state_size()).toString('hex');
const noteText = (id: number) => Buffer.from(service.memory.buffer, service.note(id), 5).toString();

beforeEach(async () => {
  guest = await Guest.instantiate(bytes);
  service = guest.exports;
  service.init();
});

it('reports out-of-memory instead of corrupting memory', () => {
  const before = accounts();
  const fault = failInTest(guest, 'arena_alloc', { returns: 0, times: 1 }); // the allocator fails once
  expect(addNote(7, 'hello')).toBe(E_NO_MEMORY);
  expect(service.note(7)).toBe(0); // no note pointing at address 0
  expect(accounts()).toBe(before);
  expect(fault.injected).toBe(1);
  expect(addNote(7, 'hello')).toBe(5); // the next allocation succeeds
  expect(noteText(7)).toBe('hello');
});

it('asks the allocator for the note plus its terminator', () => {
  const alloc = spyInTest(guest, 'arena_alloc');
  addNote(3, 'hello');
  addNote(4, 'hi');
  expect(alloc.calls.map((call) => call.args[0])).toEqual([6, 3]);
});
