import { HotpatchError } from '../errors.js';
import type { FleetConnection } from './connection.js';
import { promoted } from './controller.js';
import { updateRelease } from './release.js';
import type { Release } from './types.js';

/** What an operator can do to a release by hand. */
export type OperatorAction = 'pause' | 'resume' | 'rollback' | 'promote';

/** Why an action does not apply to a release in its state, or undefined when it does. */
function refusal(action: OperatorAction, release: Release): string | undefined {
  const ok: Record<OperatorAction, readonly Release['state'][]> = { pause: ['rolling'], resume: ['paused'], rollback: ['rolling', 'paused', 'complete'], promote: ['rolling', 'paused'] };
  return ok[action].includes(release.state) ? undefined : `cannot ${action} release ${release.id}: it is ${release.state}`;
}

function changed(action: OperatorAction, release: Release, reason: string, now: number): Release {
  const at = new Date(now).toISOString();
  switch (action) {
    case 'pause':
      return { ...release, state: 'paused', reason };
    case 'resume': {
      // The failed ring starts over: its hosts are asked to apply again (those whose own health
      // checks rolled the patch back keep it rolled back and say so).
      const ring = release.rings[release.current]!.name;
      const { failed: _f, rolledBackAt: _r, holdingSince: _h, ...rest } = release.progress[ring] ?? {};
      const { reason: _reason, ...others } = release;
      return { ...others, state: 'rolling', progress: { ...release.progress, [ring]: rest } };
    }
    case 'rollback': {
      const progress = Object.fromEntries(Object.entries(release.progress).map(([ring, p]) => [ring, p.openedAt ? { ...p, rolledBackAt: p.rolledBackAt ?? at } : p]));
      return { ...release, state: 'rolled-back', reason, progress };
    }
    case 'promote':
      return promoted({ ...release, state: 'rolling' }, now);
    default:
      throw new HotpatchError('E_USAGE', `unknown action ${String(action satisfies never)}`);
  }
}

/**
 * Pauses, resumes, rolls back or promotes (the current ring, without waiting for its gate) a
 * release, by compare-and-set like the controller's own steps, and records it in the audit stream.
 * @throws HotpatchError E_USAGE (no such release), E_REFUSED (not in a state for it), E_CONFLICT
 */
export async function operate(fleet: FleetConnection, id: string, action: OperatorAction, options: { reason?: string; by?: string } = {}): Promise<Release> {
  const reason = options.reason ?? `${action} by ${options.by ?? 'an operator'}`;
  let refused: string | undefined;
  const next = await updateRelease(fleet, id, (release) => {
    refused = refusal(action, release);
    return refused ? undefined : changed(action, release, reason, Date.now());
  });
  if (!next) throw new HotpatchError('E_REFUSED', refused ?? `cannot ${action} release ${id}`);
  await fleet.audit(`controller.${action}`, { release: id, what: action, reason, by: options.by ?? 'operator' });
  return next;
}
