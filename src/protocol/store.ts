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
   * Primary writes can carry an epoch, and the store refuses, atomically with the write, one
   * whose epoch is below its fence (absent = no). The fenced switch relies on it (docs/PROTOCOL.md).
   */
  fencing?: boolean;
  /** The highest version the store can hold (absent = 2^64 - 1). */
  maxVersion?: bigint;
}

/**
 * One datastore. Client operations assign versions (the store is the primary for them);
 * the replication operations carry versions assigned elsewhere (DESIGN.md §3).
 * Every method validates nothing the server already validated, but must never write
 * partially. A thrown error of kind invalid_argument, version_mismatch, failed_precondition,
 * fenced or unimplemented means nothing was written. Any other error (unavailable,
 * deadline_exceeded, internal) leaves the outcome unknown: the write may have happened, or may
 * still happen (an abandoned request), so callers that replicate must treat it as ambiguous.
 */
export interface Store {
  /** Backend kind: memory, sqlite, postgres, mysql, dynamodb, redis. */
  readonly kind: string;
  /** The store's URL with any password redacted, for logs and status. */
  readonly description: string;
  readonly capabilities: Capabilities;

  get(ns: string, key: string): Promise<Item | null>;
  batchGet(ns: string, keys: string[]): Promise<Item[]>;
  /** `fence`: the epoch a primary write was admitted under (only where capabilities.fencing). */
  put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number): Promise<bigint>;
  delete(ns: string, key: string, condition?: Condition, fence?: number): Promise<DeleteResult>;
  batchWrite(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]>;
  scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>>;

  /** Reads an item including a tombstone (null if never written). */
  getRaw(ns: string, key: string): Promise<RawItem | null>;
  /** getRaw of many keys: the items found, tombstones included, each once, in any order. */
  batchGetRaw(ns: string, keys: string[]): Promise<RawItem[]>;
  /**
   * Writes each item with its given version only where the stored version is lower or the
   * key is absent; atomic per item. Returns, per item, whether it was applied.
   */
  applyIfNewer(ns: string, items: RawItem[], fence?: number): Promise<boolean[]>;
  /**
   * Raises the store's write fence to `epoch` (never lowers it) and returns the fence in force.
   * Once it returns, every fenced write below it has either committed or will be refused.
   */
  raiseFence?(epoch: number): Promise<number>;
  /** Pages of items including tombstones, resumable from a cursor. */
  scanRaw(ns: string, options: RawScanOptions): Promise<ScanPage<RawItem>>;
  /**
   * Pages of the live items whose value is longer than minBytes: keys and sizes only. The
   * DUAL_WRITE gate checks with it that every value fits the target without carrying every
   * value out of the store (the filter runs in the store where it can).
   */
  largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>>;
  /** Every namespace that holds items or tombstones, reserved ones included. */
  namespaces(): Promise<string[]>;
  /** A cheap estimate of items (incl. tombstones) in a namespace, for progress. */
  estimateCount(ns: string): Promise<number>;
  /** Removes every item and tombstone of a namespace (used to clear an aborted target). */
  dropNamespace(ns: string): Promise<void>;
  /** Removes tombstones (only while no migration is in progress). Returns how many. */
  purgeTombstones(ns: string): Promise<number>;

  close(): Promise<void>;
}

export interface StoreOptions {
  /** Bound on every call to the backend, in ms. */
  timeoutMs?: number;
}
