import { createHash } from "node:crypto";
import type { Store } from "../../src/protocol/store.js";
import type { RawItem } from "../../src/protocol/types.js";

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function rawAll(store: Store, ns: string): Promise<Map<string, RawItem>> {
  const out = new Map<string, RawItem>();
  let cursor: string | undefined;
  do {
    const page = await store.scanRaw(ns, { limit: 500, cursor });
    for (const i of page.items) out.set(i.key, i);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

const show = (i: RawItem | undefined) => (i ? `v${i.version}:${i.value === null ? "tombstone" : createHash("sha1").update(i.value).digest("hex").slice(0, 8)}` : "absent");

/**
 * Compares two stores directly through their adapters (not through Decant's verifier):
 * every key's presence, version and value, tombstones included. Returns the differences.
 */
export async function compareStores(a: Store, b: Store, namespaces: string[]): Promise<string[]> {
  const diffs: string[] = [];
  for (const ns of namespaces) {
    const [x, y] = await Promise.all([rawAll(a, ns), rawAll(b, ns)]);
    for (const key of new Set([...x.keys(), ...y.keys()])) {
      const l = x.get(key);
      const r = y.get(key);
      if (show(l) !== show(r)) diffs.push(`${ns}/${key}: ${show(l)} vs ${show(r)}`);
    }
  }
  return diffs;
}
