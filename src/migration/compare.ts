// Reads two stores directly through their adapters, for the demo's final comparison and the
// tests' convergence checks (independent of the verifier, which is what they check).
import { createHash } from "node:crypto";
import type { Store } from "../protocol/store.js";
import type { RawItem } from "../protocol/types.js";

/** Every item of a namespace, tombstones included. Holds the namespace in memory: for demos and tests. */
export async function readAllRaw(store: Store, ns: string): Promise<Map<string, RawItem>> {
  const out = new Map<string, RawItem>();
  let cursor: string | undefined;
  do {
    const page = await store.scanRaw(ns, { limit: 500, cursor });
    for (const item of page.items) out.set(item.key, item);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

/** A short text that is equal for two items exactly when presence, version and value agree. */
export const describeRaw = (i: RawItem | undefined): string =>
  i ? `v${i.version} ${i.value === null ? "tombstone" : createHash("sha256").update(i.value).digest("hex").slice(0, 12)}` : "absent";
