// Page tokens and segments: opaque to callers, checked on the way back in, the same in every store.
import { invalidArgument, unsupported } from "./errors.js";
import type { RawScanOptions, ScanPage } from "./types.js";

/** Cursors are opaque to callers; a malformed one is the caller's bad input, not a crash. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

export function decodeCursor<T>(cursor: string, check: (v: unknown) => v is T): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidArgument("page_token", "is not a token this server issued");
  }
  if (!check(parsed)) throw invalidArgument("page_token", "is not a token this server issued");
  return parsed;
}

/** The usual cursor: the last key returned, and the segment of the scan it belongs to ("s/n"), if split. */
export interface KeyCursor {
  k: string;
  seg?: string;
}

export const isKeyCursor = (v: unknown): v is KeyCursor =>
  typeof v === "object" && v !== null && typeof (v as { k?: unknown }).k === "string" && ["string", "undefined"].includes(typeof (v as { seg?: unknown }).seg);

/** The segment a split scan reads: segment of total, and its tag in cursors (undefined = not split). */
export interface Segment {
  segment: number;
  total: number;
  tag?: string;
}

/**
 * Checks segment/totalSegments: a store that does not declare segmentedScan refuses a split
 * (unimplemented), anyone refuses numbers that are not a segment (invalid_argument).
 */
export function checkSegment(store: { kind: string; capabilities: { segmentedScan: boolean } }, options: RawScanOptions, maxTotal = 1_000_000): Segment {
  const total = options.totalSegments ?? 1;
  const segment = options.segment ?? 0;
  if (total > 1 && !store.capabilities.segmentedScan) throw unsupported(store.kind, "segmented scans");
  if (!Number.isInteger(total) || total < 1 || total > maxTotal) throw invalidArgument("total_segments", `must be a whole number from 1 to ${maxTotal}`);
  if (!Number.isInteger(segment) || segment < 0 || segment >= total) throw invalidArgument("segment", `must be a whole number from 0 to ${total - 1}`);
  return { segment, total, tag: total > 1 ? `${segment}/${total}` : undefined };
}

/** The key after which a page starts ("" = from the beginning), checking the cursor belongs to this segment. */
export function keyAfter(cursor: string | undefined, segment?: Segment): string {
  if (cursor === undefined) return "";
  const c = decodeCursor(cursor, isKeyCursor);
  if (c.seg !== segment?.tag) throw invalidArgument("page_token", "belongs to another segment of the scan");
  return c.k;
}

/**
 * A page from limit+1 rows read in key order: the extra row says another page exists, so the last
 * page is never empty. `rows` is the driver's own fresh array: it is cut to the page in place (a
 * copy of every page was garbage of the backfill's, whose timing sets its peak memory).
 */
export function pageOf<T extends { key: string }>(rows: T[], limit: number, segment?: Segment): ScanPage<T> {
  if (rows.length <= limit) return { items: rows, cursor: undefined };
  rows.length = limit;
  return { items: rows, cursor: encodeCursor({ k: rows[limit - 1]!.key, seg: segment?.tag }) };
}

/**
 * Upper bound for a prefix range scan: keys with the prefix are >= prefix and < prefixEnd(prefix).
 * Built on code points (whose order is UTF-8 byte order), so the bound is valid text. null = no bound.
 */
export function prefixEnd(prefix: string): string | null {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1; // skip the surrogate range
      return points.join("") + String.fromCodePoint(next);
    }
  }
  return null;
}
