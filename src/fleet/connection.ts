import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { HotpatchError } from '../errors.js';
import { AUDIT_SUBJECT, BUCKETS, encodeDoc } from './types.js';

/** How to reach the fleet's NATS server, and as whom. */
export interface FleetConnectOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly servers: string | readonly string[];
  readonly user?: string;
  readonly pass?: string;
  /** A name for the connection (shown by the server's monitoring). */
  readonly name?: string;
  /** The inbox prefix the credential's permissions allow (agents: `_INBOX_<host>`). */
  readonly inboxPrefix?: string;
  /** Keep reconnecting forever (agents), instead of failing after a few tries. */
  readonly reconnectForever?: boolean;
}

/** Options of `createFleet`: the buckets' limits. */
export interface FleetLayout {
  /** How long a heartbeat keeps a host present (ms); agents beat at a third of it. */
  readonly presenceTtlMs?: number;
  /** Revisions kept per desired-state key (the release history). */
  readonly history?: number;
}

/** An open fleet: the connection and its buckets. */
export interface FleetConnection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly desired: KV;
  readonly status: KV;
  readonly presence: KV;
  readonly patches: ObjectStore;
  /** Publishes an audit record to `fleet.audit.<subject>` and waits for the stream to store it. */
  audit(subject: string, record: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/**
 * Connects to a fleet's NATS server.
 * @throws HotpatchError E_IO
 */
export async function connectNats(options: FleetConnectOptions): Promise<NatsConnection> {
  try {
    return await connect({
      servers: typeof options.servers === 'string' ? options.servers : [...options.servers],
      ...(options.user !== undefined ? { user: options.user, pass: options.pass ?? '' } : {}),
      ...(options.name ? { name: options.name } : {}),
      ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
      ...(options.reconnectForever ? { maxReconnectAttempts: -1, reconnectTimeWait: 250 } : {}),
    });
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot connect to the fleet at ${String(options.servers)}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Creates the fleet's buckets and audit stream where missing (the operator's `fleet init` and the
 * controller do this; agents only open them).
 * @throws HotpatchError E_IO
 */
export async function createFleet(nc: NatsConnection, layout: FleetLayout = {}): Promise<void> {
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  try {
    await kvm.create(BUCKETS.desired, { history: layout.history ?? 16 });
    await kvm.create(BUCKETS.status, { history: 1 });
    await kvm.create(BUCKETS.presence, { history: 1, ttl: layout.presenceTtlMs ?? 15_000 });
    await new Objm(js).create(BUCKETS.patches);
    const jsm = await jetstreamManager(nc);
    const exists = await jsm.streams.info(BUCKETS.audit).then(
      () => true,
      () => false,
    );
    if (!exists) await jsm.streams.add({ name: BUCKETS.audit, subjects: [`${AUDIT_SUBJECT}.>`], max_msgs: 1_000_000 });
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot create the fleet's buckets: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Opens the fleet's buckets on a connection (they must exist: `createFleet`).
 * @throws HotpatchError E_IO
 */
export async function openFleet(nc: NatsConnection): Promise<FleetConnection> {
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  try {
    const [desired, status, presence, patches] = await Promise.all([kvm.open(BUCKETS.desired), kvm.open(BUCKETS.status), kvm.open(BUCKETS.presence), new Objm(js).open(BUCKETS.patches)]);
    return {
      nc,
      js,
      desired,
      status,
      presence,
      patches,
      async audit(subject, record) {
        await js.publish(`${AUDIT_SUBJECT}.${subject}`, encodeDoc({ at: new Date().toISOString(), ...record }));
      },
      close: () => nc.close(),
    };
  } catch (cause) {
    throw new HotpatchError('E_IO', `cannot open the fleet's buckets (run \`wasm-hotpatch fleet init\` first?): ${(cause as Error).message}`, { cause });
  }
}

/**
 * Connects and opens the fleet in one step.
 * @throws HotpatchError E_IO
 */
export async function joinFleet(options: FleetConnectOptions): Promise<FleetConnection> {
  const nc = await connectNats(options);
  try {
    return await openFleet(nc);
  } catch (error) {
    await nc.close();
    throw error;
  }
}
