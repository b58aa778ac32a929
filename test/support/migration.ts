import type { Store } from "../../src/protocol/store.js";
import { describeRaw, readAllRaw } from "../../src/migration/compare.js";

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Compares two stores directly through their adapters (not through Decant's verifier):
 * every key's presence, version and value, tombstones included. Returns the differences.
 */
export async function compareStores(a: Store, b: Store, namespaces: string[]): Promise<string[]> {
  const diffs: string[] = [];
  for (const ns of namespaces) {
    const [x, y] = await Promise.all([readAllRaw(a, ns), readAllRaw(b, ns)]);
    for (const key of new Set([...x.keys(), ...y.keys()])) {
      const l = x.get(key);
      const r = y.get(key);
      if (describeRaw(l) !== describeRaw(r)) diffs.push(`${ns}/${key}: ${describeRaw(l)} vs ${describeRaw(r)}`);
    }
  }
  return diffs;
}
