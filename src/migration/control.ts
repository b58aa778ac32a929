// The control store: the shared records all replicas coordinate through (DESIGN.md §4 rule 1
// and 9). Records are JSON items in a reserved namespace that clients cannot name; updates
// are compare-and-set on the item version, so two replicas never overwrite each other.
import { createHash } from "node:crypto";
import { DecantError, isDecantError } from "../protocol/errors.js";
import type { Caller } from "../protocol/call.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE } from "../protocol/types.js";
import type { Phase } from "./phases.js";

/**
 * The layout of each kind of record (the first segment of its key), versioned on its own: a
 * sidecar refuses to act on a record of a newer schema than it knows (a rolling upgrade must
 * never let an old replica misread a new record). One kind moving on leaves the others readable,
 * so a new backfill record stops only the backfill on old replicas, not their writes.
 */
export const SCHEMAS: Readonly<Record<string, number>> = { phase: 2, replica: 2, journal: 2, backfill: 3, verify: 2, identity: 2, binding: 2, bfseg: 2, vfseg: 1, "verify-job": 1 };
/** The schema of a kind not listed above. */
export const SCHEMA = 2;
export const schemaOf = (key: string): number => SCHEMAS[key.slice(0, (key + "/").indexOf("/"))] ?? SCHEMA;

/** A record written by a newer Decant: this sidecar must not act on it (it says so, it does not guess). */
export class NewerSchemaError extends DecantError {
  constructor(key: string, schema: number) {
    super("failed_precondition", `the control record ${key} has schema ${schema}, newer than this sidecar understands (${schemaOf(key)}); upgrade this sidecar before it acts on the migration`);
    this.name = "NewerSchemaError";
  }
}

export const isNewerSchema = (err: unknown): err is NewerSchemaError => isDecantError(err) && err.name === "NewerSchemaError";

export interface PhaseRecord {
  schema?: number;
  phase: Phase;
  /** Bumped on every change; replicas acknowledge epochs. */
  epoch: number;
  /** Writes are held while set (the primary is about to move to `pending`). */
  fence: boolean;
  pending?: Phase;
  /** One migration attempt, from SINGLE → DUAL_WRITE to its end; backfill and verify belong to one. */
  attempt?: string;
  /** The configured migration id (migration.id), when one is configured. */
  migrationId?: string;
  changedAt: number;
  changedBy: string;
}

export interface Heartbeat {
  schema?: number;
  id: string;
  phase: Phase;
  /** The highest epoch this replica acknowledges: no write of an older epoch is in flight on it. */
  epoch: number;
  /** For people only: liveness is judged on the reader's clock from the record's version changing. */
  at: number;
  hasTarget?: boolean;
  /** Secondary writes that failed on this replica, ever (kept across restarts). */
  secondaryFailures: number;
  lastSecondaryFailureAt: number;
  /** Set by a graceful stop: the replica is gone and holds nothing in flight. */
  stopped?: boolean;
}

/**
 * One write's intent, put into the journal before its primary write whenever the phase has a
 * secondary, and removed once the secondary holds it. What stays is repair work.
 */
export interface JournalEntry {
  schema?: number;
  ns: string;
  key: string;
  /** The replica that wrote it, and this process's incarnation of it. */
  owner?: string;
  incarnation?: string;
  /** The write settled without reaching the secondary (a failure, or an unknown outcome). */
  failed?: boolean;
  at: number;
}

/** Records written before schemas were stored carry none: schema 1. */
export function checkSchema(key: string, value: { schema?: number }): void {
  const schema = value.schema ?? 1;
  if (typeof schema !== "number" || !(schema <= schemaOf(key))) throw new NewerSchemaError(key, schema);
}

export interface Versioned<T> {
  value: T;
  version: bigint;
}

export class ControlStore {
  constructor(readonly store: Store) {}

  async read<T>(key: string): Promise<Versioned<T> | null> {
    const item = await this.store.get(CONTROL_NAMESPACE, key);
    return item ? { value: parse<T>(key, item.value), version: item.version } : null;
  }

  /** Writes `value` if the record is still at `expected` (null = absent). Returns false if it moved. */
  async compareAndSet<T>(key: string, value: T, expected: bigint | null): Promise<bigint | false> {
    try {
      return await this.store.put(CONTROL_NAMESPACE, key, encode(key, value), expected === null ? { kind: "must_not_exist" } : { kind: "expected_version", version: expected });
    } catch (err) {
      if (isDecantError(err, "version_mismatch")) return false;
      throw err;
    }
  }

  /** `call`: the caller of the write this record is for (a write's journal intent), if any. */
  async write<T>(key: string, value: T, call?: Caller): Promise<bigint> {
    return this.store.put(CONTROL_NAMESPACE, key, encode(key, value), undefined, undefined, call);
  }

  async remove(key: string, expected?: bigint): Promise<boolean> {
    try {
      return (await this.store.delete(CONTROL_NAMESPACE, key, expected === undefined ? undefined : { kind: "expected_version", version: expected })).deleted;
    } catch (err) {
      if (isDecantError(err, "version_mismatch")) return false;
      throw err;
    }
  }

  /** Every record under a prefix, page by page (the journal and heartbeats stay small). */
  async list<T>(prefix: string, max = 100_000): Promise<{ key: string; value: T; version: bigint }[]> {
    const out: { key: string; value: T; version: bigint }[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.scan(CONTROL_NAMESPACE, { prefix, limit: 500, cursor });
      for (const item of page.items) out.push({ key: item.key, value: parse<T>(item.key, item.value), version: item.version });
      cursor = page.cursor;
    } while (cursor !== undefined && out.length < max);
    return out;
  }
}

/** A record's value; refused when its schema is newer than this sidecar's for its kind. */
function parse<T>(key: string, raw: Buffer): T {
  const value = JSON.parse(raw.toString("utf8")) as T;
  if (value && typeof value === "object") checkSchema(key, value as { schema?: number });
  return value;
}

const encode = (key: string, value: unknown): Buffer => Buffer.from(JSON.stringify(value && typeof value === "object" ? { ...value, schema: schemaOf(key) } : value));

export const PHASE_KEY = "phase";
export const BACKFILL_KEY = "backfill";
export const VERIFY_KEY = "verify";
export const heartbeatKey = (id: string) => `replica/${id}`;
/** Journal keys are hashed: a namespace plus a 1024-byte key would not fit some backends' key limit. */
export const journalKey = (ns: string, key: string) => `journal/${createHash("sha256").update(ns).update("\u0000").update(key).digest("hex")}`;
/** One write's intent: the key's journal key, then who wrote it (one entry per write). */
export const intentKey = (ns: string, key: string, incarnation: string, seq: number) => `${journalKey(ns, key)}/${incarnation}-${seq}`;
export const JOURNAL_PREFIX = "journal/";
/** Which control store coordinates the data store it is kept in (rule 9: no drift between replicas). */
export const IDENTITY_KEY = "identity";
export const BINDING_KEY = "binding";
export const HEARTBEAT_PREFIX = "replica/";
