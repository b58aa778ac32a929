// Pages of the backfill and the verifier are bounded in bytes as well as items: 1,000 items of
// 400 KiB (the default max_value_bytes) would be a 400 MB page in the sidecar's memory.
import type { RawItem } from "../protocol/types.js";

/** About this much item data per page. */
export const PAGE_BYTES = 4 * 1024 * 1024;
/** The first page is small, until the size of the items is known. */
export const FIRST_PAGE_ITEMS = 64;
const MIN_PAGE_ITEMS = 16;

/** Items to ask for next, from the average size of the page just read (at most `max`). */
export function nextPageLimit(page: RawItem[], current: number, max: number): number {
  if (page.length === 0) return current;
  let bytes = 0;
  for (const item of page) bytes += item.key.length + (item.value?.length ?? 0) + 64;
  return Math.min(max, Math.max(MIN_PAGE_ITEMS, Math.floor(PAGE_BYTES / (bytes / page.length))));
}
