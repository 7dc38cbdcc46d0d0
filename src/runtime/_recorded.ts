import type { HotpatchGuest } from '../engine/index.js';
import { HotpatchError } from '../errors.js';
import { escapeForLog } from './_log.js';
import type { PatchStore } from './store.js';

/** What the endpoint needs of a guest, of any kind (the engine's one contract); an in-thread `Guest` passes `guest.async`. */
export type EndpointGuest = Pick<HotpatchGuest, 'manifest' | 'status' | 'load' | 'apply' | 'revert' | 'unload'>;

/** The answer to an apply or revert: the state read back from the guest, and whether the store has it. */
export interface ChangeAnswer {
  readonly id: string;
  readonly state: string | undefined;
  readonly milliseconds: number;
  readonly commitMilliseconds: number;
  /** false only with `code` E_APPLIED_NOT_RECORDED: the change is in, the store could not record it and it could not be undone. */
  readonly recorded: boolean;
  readonly code?: 'E_APPLIED_NOT_RECORDED';
  readonly message?: string;
}

/**
 * Changes to a guest, each one step with its record: load and apply (floor checked, bytes kept), apply and
 * revert (the level read back from the guest and recorded). When recording fails the change is
 * undone and the error says so; when it cannot be undone the answer says "applied, not recorded"
 * (E_APPLIED_NOT_RECORDED). One change at a time.
 */
export function recordedChange(guest: EndpointGuest, store: PatchStore | undefined, log: (line: string) => void) {
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(step: () => Promise<T>): Promise<T> => {
    const turn = queue.then(step);
    queue = turn.catch(() => {});
    return turn;
  };
  const stateOf = async (id: string) => (await guest.status()).patches.find((p) => p.id === id);

  const load = (bytes: Uint8Array) =>
    serial(async () => {
      const patch = await guest.load(bytes);
      try {
        store?.admit(guest.manifest.id, patch);
        store?.add(bytes);
      } catch (error) {
        await guest.unload(patch.id);
        throw error;
      }
      log(`loaded patch "${escapeForLog(patch.id)}"`);
      return { id: patch.id, sequence: patch.sequence, targets: patch.targets };
    });

  const change = (verb: 'apply' | 'revert', id: string) =>
    serial(async (): Promise<ChangeAnswer> => {
      const started = performance.now();
      if (store && verb === 'apply') {
        const patch = (await guest.status()).patches.find((p) => p.id === id);
        if (patch) store.admit(guest.manifest.id, patch);
      }
      const { commit } = verb === 'apply' ? await guest.apply(id) : await guest.revert(id);
      const done = verb === 'apply' ? 'applied' : 'reverted';
      const answer = async (recorded: boolean, failure?: HotpatchError): Promise<ChangeAnswer> => ({
        id,
        state: (await stateOf(id))?.state,
        milliseconds: performance.now() - started,
        commitMilliseconds: commit,
        recorded,
        ...(failure ? { code: 'E_APPLIED_NOT_RECORDED' as const, message: `${done}, not recorded: ${failure.message}` } : {}),
      });
      if (!store) {
        log(`${done} patch "${escapeForLog(id)}"`);
        return answer(true);
      }
      try {
        await store.record(guest);
        log(`${done} patch "${escapeForLog(id)}" (recorded)`);
        return answer(true);
      } catch (error) {
        const failure = error instanceof HotpatchError ? error : new HotpatchError('E_IO', String((error as Error)?.message), { cause: error });
        if (await undo(verb, id)) {
          log(`${done} patch "${escapeForLog(id)}" undone: the level could not be recorded (${escapeForLog(failure.message)})`);
          throw new HotpatchError(failure.code, `nothing changed: the patch level could not be recorded (${failure.message}), so the ${verb} was undone`, { cause: failure });
        }
        log(`${done} patch "${escapeForLog(id)}", NOT recorded: ${escapeForLog(failure.message)}`);
        return answer(false, failure);
      }
    });

  /** Undoes a change whose record failed, when that brings back exactly the level before. */
  const undo = async (verb: 'apply' | 'revert', id: string): Promise<boolean> => {
    try {
      const patch = await stateOf(id);
      // Reverting a cumulative patch does not bring back the patches it replaced.
      if (verb === 'apply' && patch && !patch.cumulative) await guest.revert(id);
      else if (verb === 'revert' && patch && !patch.cumulative) await guest.apply(id, { force: true });
      else return false;
      return true;
    } catch {
      return false;
    }
  };

  return { load, apply: (id: string) => change('apply', id), revert: (id: string) => change('revert', id) };
}
