// The control store: the shared records all replicas coordinate through (DESIGN.md §4 rule 1
// and 9). Records are JSON items in a reserved namespace that clients cannot name; updates
// are compare-and-set on the item version, so two replicas never overwrite each other.
import { createHash } from "node:crypto";
import { isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE } from "../protocol/types.js";
import type { Phase } from "./phases.js";

export interface PhaseRecord {
  phase: Phase;
  /** Bumped on every change; replicas acknowledge epochs. */
  epoch: number;
  /** Writes are held while set (the primary is about to move to `pending`). */
  fence: boolean;
  pending?: Phase;
  changedAt: number;
  changedBy: string;
}

export interface Heartbeat {
  id: string;
  phase: Phase;
  epoch: number;
  at: number;
  secondaryFailures: number;
  lastSecondaryFailureAt: number;
}

export interface JournalEntry {
  ns: string;
  key: string;
  at: number;
}

export interface Versioned<T> {
  value: T;
  version: bigint;
}

export class ControlStore {
  constructor(readonly store: Store) {}

  async read<T>(key: string): Promise<Versioned<T> | null> {
    const item = await this.store.get(CONTROL_NAMESPACE, key);
    return item ? { value: JSON.parse(item.value.toString("utf8")) as T, version: item.version } : null;
  }

  /** Writes `value` if the record is still at `expected` (null = absent). Returns false if it moved. */
  async compareAndSet<T>(key: string, value: T, expected: bigint | null): Promise<bigint | false> {
    try {
      return await this.store.put(CONTROL_NAMESPACE, key, Buffer.from(JSON.stringify(value)), expected === null ? { kind: "must_not_exist" } : { kind: "expected_version", version: expected });
    } catch (err) {
      if (isDecantError(err, "version_mismatch")) return false;
      throw err;
    }
  }

  async write<T>(key: string, value: T): Promise<bigint> {
    return this.store.put(CONTROL_NAMESPACE, key, Buffer.from(JSON.stringify(value)));
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
      for (const item of page.items) out.push({ key: item.key, value: JSON.parse(item.value.toString("utf8")) as T, version: item.version });
      cursor = page.cursor;
    } while (cursor !== undefined && out.length < max);
    return out;
  }
}

export const PHASE_KEY = "phase";
export const BACKFILL_KEY = "backfill";
export const VERIFY_KEY = "verify";
export const heartbeatKey = (id: string) => `replica/${id}`;
/** Journal keys are hashed: a namespace plus a 1024-byte key would not fit some backends' key limit. */
export const journalKey = (ns: string, key: string) => `journal/${createHash("sha256").update(ns).update("\u0000").update(key).digest("hex")}`;
export const JOURNAL_PREFIX = "journal/";
export const HEARTBEAT_PREFIX = "replica/";
