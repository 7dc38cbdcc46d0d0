import { jetstreamManager } from '@nats-io/jetstream';
import type { FleetConnection } from './connection.js';
import { AUDIT_SUBJECT, BUCKETS } from './types.js';

/** One record of the audit stream: who changed what, when. */
export interface AuditRecord {
  /** The stream's sequence number: the order of changes. */
  readonly seq: number;
  /** The subject after `fleet.audit.`: `controller.<what>` or `host.<host>`. */
  readonly subject: string;
  readonly at: string;
  readonly [field: string]: unknown;
}

/**
 * Reads the audit stream (every release change, controller step, ring desire and host apply or
 * revert), oldest first, optionally only subjects under `filter` (e.g. `controller.>`).
 */
export async function readAudit(fleet: FleetConnection, options: { filter?: string; limit?: number } = {}): Promise<AuditRecord[]> {
  const jsm = await jetstreamManager(fleet.nc);
  const info = await jsm.streams.info(BUCKETS.audit);
  const count = Math.min(info.state.messages, options.limit ?? Number.POSITIVE_INFINITY);
  if (count === 0) return [];
  const consumer = await fleet.js.consumers.get(BUCKETS.audit, { filter_subjects: `${AUDIT_SUBJECT}.${options.filter ?? '>'}` });
  const records: AuditRecord[] = [];
  const messages = await consumer.fetch({ max_messages: count, expires: 2_000 });
  for await (const m of messages) {
    records.push({ ...(m.json<Record<string, unknown>>() as { at: string }), seq: m.seq, subject: m.subject.slice(AUDIT_SUBJECT.length + 1) });
    if (m.info.pending === 0) break;
  }
  return records;
}
