// The data model of DESIGN.md §1. Versions are bigint end to end: they are uint64 on the
// wire and must never pass through a JS number (which loses precision above 2^53).

/** A live item as clients see it. */
export interface Item {
  key: string;
  value: Buffer;
  version: bigint;
}

/** An item as replication sees it: a null value is a tombstone (a deleted key that keeps its version). */
export interface RawItem {
  key: string;
  value: Buffer | null;
  version: bigint;
}

export type Condition =
  | { kind: "expected_version"; version: bigint }
  | { kind: "must_not_exist" };

export type WriteOp =
  | { type: "put"; key: string; value: Buffer; condition?: Condition }
  | { type: "delete"; key: string; condition?: Condition };

export interface DeleteResult {
  /** False when the key was absent (nothing written). */
  deleted: boolean;
  /** The tombstone's version, or the last version if nothing was deleted (0n if never written). */
  version: bigint;
}

export type WriteOutcome =
  | { ok: true; key: string; version: bigint; deleted?: boolean }
  | { ok: false; key: string; error: import("./errors.js").DecantError };

export interface ScanOptions {
  prefix?: string;
  limit: number;
  /** Opaque, from the previous page's `cursor`. */
  cursor?: string;
}

export interface ScanPage<T> {
  items: T[];
  /** Absent when the scan is done. */
  cursor?: string;
}

/** The size of one live value, without the value (see Store.largeValues). */
export interface ValueSize {
  key: string;
  bytes: number;
}

export interface LargeValueOptions {
  /** Only values longer than this many bytes. */
  minBytes: number;
  limit: number;
  cursor?: string;
}

export interface RawScanOptions {
  limit: number;
  cursor?: string;
  /** For parallel scans: this segment of totalSegments (only if the backend declares segmentedScan). */
  segment?: number;
  totalSegments?: number;
  /**
   * Only keys, versions and cursors are wanted (planning key ranges): a backend may leave every
   * value out (null) rather than read it. Such items are never copied.
   */
  keysOnly?: boolean;
}

export const NAMESPACE_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
/** Namespaces Decant keeps for itself start with an underscore, which clients cannot name. */
export const CONTROL_NAMESPACE = "_decant_control";
export const MAX_KEY_BYTES = 1024;
export const DEFAULT_MAX_VALUE_BYTES = 400 * 1024;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
export const MAX_BATCH = 1000;
/** The keys and values of one BatchWrite together, unless max_batch_bytes says otherwise. */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Orders keys by their UTF-8 bytes (= code point order), which is what SQL "C"/binary
 * collations do. Compares UTF-16 code units without allocating (the verifier's merge calls it
 * per key): they order like UTF-8 except that a surrogate (a code point above U+FFFF) sorts
 * after U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate && (x >= 0xe000 || y >= 0xe000)) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
