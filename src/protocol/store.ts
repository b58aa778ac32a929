import type { BatchLimits } from "./batch.js";
import type { Caller } from "./call.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "./types.js";

/** What a backend can do; the conformance suite checks each claim both ways. */
export interface Capabilities {
  /** Scan returns keys in ascending UTF-8 byte order. */
  orderedScan: boolean;
  /** scanRaw accepts segment/totalSegments for parallel scans. */
  segmentedScan: boolean;
  /** Largest value the backend can hold for a key of the given size. */
  maxValueBytes(key: string): number;
  /** Data survives a restart of the sidecar. */
  durable: boolean;
  /** purgeTombstones is allowed now (absent = yes); the migration layer refuses it mid-migration. */
  purgeTombstones?: boolean;
  /**
   * Primary writes can carry an epoch and the store refuses, atomically, a write whose epoch is
   * below its fence (raiseFence). Absent = false: the store has no raiseFence and ignores the
   * fence argument of its writes.
   */
  fencing?: boolean;
  /** The highest version the store can hold (absent = 2^64 - 1). */
  maxVersion?: bigint;
  /**
   * What one applyIfNewer call should carry at most (items, and bytes of keys and values) for
   * the store to write it in one round trip or statement; callers that copy in bulk (the
   * backfill) size their chunks from it. Absent = no limit worth sizing for (memory).
   */
  applyBatch?: BatchLimits;
}

/**
 * One datastore. Client operations assign versions (the store is the primary for them);
 * the replication operations carry versions assigned elsewhere (DESIGN.md §3).
 * Every method validates nothing the server already validated, but must never write
 * partially. A thrown error of kind invalid_argument, version_mismatch, failed_precondition,
 * fenced, unimplemented or cancelled means nothing was written. Any other error (unavailable,
 * deadline_exceeded, internal) leaves the outcome unknown: the write may have happened, or may
 * still happen (an abandoned request), so callers that replicate must treat it as ambiguous.
 *
 * `call` (every operation's last, optional argument): the caller the operation runs for (a
 * served call, src/protocol/call.ts). Once it has gone, work not yet started is refused with
 * `cancelled` (nothing written); a round trip already sent is never cancelled, and a write of
 * several round trips (applyIfNewer, batchWrite, dropNamespace, purgeTombstones, raiseFence)
 * checks it only before it starts. A layer that wraps a store passes it on to the calls it makes
 * on the caller's behalf; work that must finish whatever the caller does (replication to the
 * secondary, repair, journal intents) is not given it. Absent: nobody can cancel the work.
 */
export interface Store {
  /** Backend kind: memory, sqlite, postgres, mysql, dynamodb, redis. */
  readonly kind: string;
  /** The store's URL with any password redacted, for logs and status. */
  readonly description: string;
  readonly capabilities: Capabilities;

  get(ns: string, key: string, call?: Caller): Promise<Item | null>;
  batchGet(ns: string, keys: string[], call?: Caller): Promise<Item[]>;
  /**
   * `fence` (stores that declare fencing): the epoch the write was admitted under. The store
   * refuses the write with `fenced`, writing nothing, when its fence is above it; the check
   * and the write are one atomic step. Undefined = not fenced (the write costs what it did).
   */
  put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number, call?: Caller): Promise<bigint>;
  delete(ns: string, key: string, condition?: Condition, fence?: number, call?: Caller): Promise<DeleteResult>;
  batchWrite(ns: string, ops: WriteOp[], call?: Caller): Promise<WriteOutcome[]>;
  scan(ns: string, options: ScanOptions, call?: Caller): Promise<ScanPage<Item>>;

  /** Reads an item including a tombstone (null if never written). */
  getRaw(ns: string, key: string, call?: Caller): Promise<RawItem | null>;
  /** getRaw of many keys: the items found, tombstones included, each once, in any order. */
  batchGetRaw(ns: string, keys: string[], call?: Caller): Promise<RawItem[]>;
  /**
   * Writes each item with its given version only where the stored version is lower or the
   * key is absent; atomic per item. Returns, per item, whether it was applied. With `fence`
   * (as for put) the whole call is refused with `fenced` if the store's fence is above it.
   */
  applyIfNewer(ns: string, items: RawItem[], fence?: number, call?: Caller): Promise<boolean[]>;
  /** Pages of items including tombstones, resumable from a cursor. */
  scanRaw(ns: string, options: RawScanOptions, call?: Caller): Promise<ScanPage<RawItem>>;
  /**
   * Pages of the live items whose value is longer than minBytes: keys and sizes only. The
   * DUAL_WRITE gate checks with it that every value fits the target without carrying every
   * value out of the store (the filter runs in the store where it can).
   */
  largeValues(ns: string, options: LargeValueOptions, call?: Caller): Promise<ScanPage<ValueSize>>;
  /** Every namespace that holds items or tombstones, reserved ones included. */
  namespaces(call?: Caller): Promise<string[]>;
  /** A cheap estimate of items (incl. tombstones) in a namespace, for progress. */
  estimateCount(ns: string, call?: Caller): Promise<number>;
  /** Removes every item and tombstone of a namespace (used to clear an aborted target). */
  dropNamespace(ns: string, call?: Caller): Promise<void>;
  /** Removes tombstones (only while no migration is in progress). Returns how many. */
  purgeTombstones(ns: string, call?: Caller): Promise<number>;
  /**
   * Raises the store-wide fence to `epoch` if it is lower (never lowers it) and returns the
   * fence in force afterwards (a store never fenced is at 0). Once it returns, no write carrying
   * an epoch below that fence can be applied any more, and every fenced write applied before it
   * has committed. Only on stores that declare fencing.
   */
  raiseFence?(epoch: number, call?: Caller): Promise<number>;

  close(): Promise<void>;
}
