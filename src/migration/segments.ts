// Segments: the unit of work of a backfill. Each is a part of one namespace with its own lease
// and checkpoint in the control store, so every replica (and every backfill-worker) can run some
// at once and a lost worker's segments resume from their checkpoints elsewhere. The lease is
// fenced: see docs/PROTOCOL.md, "Segment leases".
import type { Store } from "../protocol/store.js";
import { compareKeys, type RawItem } from "../protocol/types.js";
import type { ControlStore } from "./control.js";
import { FIRST_PAGE_ITEMS, nextPageLimit } from "./pages.js";

export const SEGMENT_PREFIX = "bfseg/";
export const segmentKey = (attempt: string | undefined, index: number) => `${SEGMENT_PREFIX}${attempt ?? "-"}/${String(index).padStart(6, "0")}`;

/** Items a segment should hold: small enough to spread a modest namespace over a few workers. */
export const ITEMS_PER_SEGMENT = 2048;
export const MAX_SEGMENTS_PER_NAMESPACE = 256;
export interface SegmentHolder {
  owner: string;
  token: number;
  /** Wall time it was taken (for people and tests; leases are judged on monotonic clocks). */
  at: number;
  /** The checkpoint it resumed from (absent = the segment's start). */
  from?: string;
}

export interface SegmentRecord {
  schema?: number;
  attempt?: string;
  index: number;
  ns: string;
  /** A segment of the backend's parallel scan (DynamoDB's Segment/TotalSegments). */
  hash?: { segment: number; total: number };
  /** A key range of an ordered scan: from the cursor `start` (absent = the beginning), keys ≥ `from` and < `end`. */
  start?: string;
  from?: string;
  end?: string;
  /** The checkpoint: where the next page starts (absent = at `start`). */
  cursor?: string;
  done: boolean;
  /** The replica or worker holding the lease, and its process (a restarted replica is another holder). */
  owner?: string;
  run?: string;
  /** Bumped by every take: a holder whose token is no longer the record's has lost the segment. */
  token: number;
  scanned: number;
  copied: number;
  skipped: number;
  activeMs: number;
  /** Items/s of this segment's recent pages (moving average). */
  recentRate?: number;
  updatedAt: number;
  /** The last failed page of this segment (it is retried from the checkpoint). */
  error?: string;
  history: SegmentHolder[];
  /** Set while this segment still cuts its namespace into key ranges (Backfill.cutRanges). */
  plan?: RangePlan;
}

/**
 * A namespace's range plan in progress, kept in its last segment: the planner scans ahead
 * read-only from `scan` and writes segment `next` each time it passes `perSegment` items; what
 * is left of the namespace is then that segment's range, copied like any other. A checkpoint, so
 * a lost planner resumes elsewhere.
 */
export interface RangePlan {
  /** The index the next range found gets; the planner's own index is the last. */
  next: number;
  perSegment: number;
  /** Items read since the last cut. */
  since: number;
  /** Where the planning scan goes on (absent = at the segment's start). */
  scan?: string;
  /** A cut decided at this cursor, waiting for the first key after it. */
  splitAt?: string;
}

export const freshSegment = (attempt: string | undefined, index: number, ns: string, part: Pick<SegmentRecord, "hash" | "start" | "from" | "end">, now: number): SegmentRecord => ({
  attempt,
  index,
  ns,
  ...part,
  done: false,
  token: 0,
  scanned: 0,
  copied: 0,
  skipped: 0,
  activeMs: 0,
  updatedAt: now,
  history: [],
});

/** How many segments a namespace of about `estimate` items is cut into. */
export const segmentsFor = (estimate: number): number => Math.max(1, Math.min(MAX_SEGMENTS_PER_NAMESPACE, Math.ceil(estimate / ITEMS_PER_SEGMENT)));

/**
 * How a backfill cuts a namespace without reading it: parts it can write now, or, for an ordered
 * store, the number of key ranges to find while the backfill runs (a planning scan of a large
 * table takes minutes, longer than StartBackfill may).
 */
export function cutWithoutScan(store: Store, estimate: number): { parts: Pick<SegmentRecord, "hash">[] } | { ranges: number; perSegment: number } {
  const wanted = segmentsFor(estimate);
  if (wanted <= 1 || !(store.capabilities.orderedScan || store.capabilities.segmentedScan)) return { parts: [{}] };
  if (!store.capabilities.orderedScan) return { parts: Array.from({ length: wanted }, (_, segment) => ({ hash: { segment, total: wanted } })) };
  return { ranges: wanted, perSegment: Math.ceil(estimate / wanted) };
}

/**
 * Cuts a namespace into parts now (the verifier; the backfill cuts ranges as it runs). Unordered
 * stores with parallel scans use them (each segment is a scan of its own). Ordered stores are cut
 * into key ranges by one sequential keys-only scan that notes a split point every `estimate /
 * wanted` items (PostgreSQL's and MariaDB's hash buckets would each read the whole key index, so
 * N buckets cost N full scans; ranges cost one planning scan). Other stores are one segment.
 */
export async function planNamespace(store: Store, ns: string, estimate: number): Promise<Pick<SegmentRecord, "hash" | "start" | "from" | "end">[]> {
  const cut = cutWithoutScan(store, estimate);
  return "parts" in cut ? cut.parts : planRanges(store, ns, cut.perSegment, cut.ranges);
}

async function planRanges(store: Store, ns: string, perSegment: number, wanted: number): Promise<Pick<SegmentRecord, "start" | "from" | "end">[]> {
  const parts: Pick<SegmentRecord, "start" | "from" | "end">[] = [{}];
  let cursor: string | undefined;
  let limit = FIRST_PAGE_ITEMS;
  let sinceSplit = 0;
  let splitAt: string | undefined;
  do {
    const page = await store.scanRaw(ns, { limit, cursor, keysOnly: true });
    limit = nextPageLimit(page.items, limit, 1024);
    const first: RawItem | undefined = page.items[0];
    if (splitAt !== undefined && first) {
      parts[parts.length - 1]!.end = first.key;
      parts.push({ start: splitAt, from: first.key });
      splitAt = undefined;
    }
    sinceSplit += page.items.length;
    cursor = page.cursor;
    if (sinceSplit >= perSegment && cursor !== undefined) {
      if (parts.length >= wanted) break; // the last part runs to the end: no need to read it now
      splitAt = cursor;
      sinceSplit = 0;
    }
  } while (cursor !== undefined);
  return parts;
}

/** The items of a page that belong to a range segment, and whether the range ends in it. */
export function clipToRange(rec: Pick<SegmentRecord, "from" | "end">, items: RawItem[]): { items: RawItem[]; ended: boolean } {
  let out = items;
  // Only a range's first pages hold keys before its start: the others are kept as they are, not copied.
  if (rec.from !== undefined && items.some((i) => compareKeys(i.key, rec.from!) < 0)) out = out.filter((i) => compareKeys(i.key, rec.from!) >= 0);
  if (rec.end === undefined) return { items: out, ended: false };
  const at = out.findIndex((i) => compareKeys(i.key, rec.end!) >= 0);
  return at < 0 ? { items: out, ended: false } : { items: out.slice(0, at), ended: true };
}

export async function listSegments(control: ControlStore, attempt: string | undefined) {
  return control.list<SegmentRecord>(`${SEGMENT_PREFIX}${attempt ?? "-"}/`);
}

/** Removes every segment record (of any attempt): a rollback to SINGLE or a reset ends them. */
export async function removeSegments(control: ControlStore): Promise<void> {
  for (const s of await control.list<SegmentRecord>(SEGMENT_PREFIX)) await control.remove(s.key);
}
