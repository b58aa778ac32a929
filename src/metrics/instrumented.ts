import { isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import type { Metrics } from "./metrics.js";

const TIMED = [
  "get", "batchGet", "put", "delete", "batchWrite", "scan",
  "getRaw", "batchGetRaw", "applyIfNewer", "scanRaw", "largeValues", "namespaces", "estimateCount", "dropNamespace", "purgeTombstones",
  "raiseFence", // optional: wrapped only where the store has it
] as const;

/**
 * Wraps a store so every operation is timed in decant_store_operation_duration_seconds and
 * every failure counted, labelled with the store's role (current, target, control) and kind.
 * Arguments pass through unchanged (a write's fence epoch included).
 */
export function instrumentStore(store: Store, role: string, metrics: Metrics): Store {
  const wrapped = Object.create(store) as Store;
  const label = `${role}:${store.kind}`;
  for (const op of TIMED) {
    // Every method runs bound to the store itself: one that sets a field (memory's fence) must
    // set it on the store, not on this wrapper that inherits from it.
    const method = store[op] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (method === undefined) continue;
    const original = method.bind(store);
    const timer = metrics.storeDuration.labels(label, op);
    (wrapped as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      const start = process.hrtime.bigint();
      try {
        return await original(...args);
      } catch (err) {
        const kind = isDecantError(err) ? err.kind : "internal";
        if (kind !== "version_mismatch" && kind !== "invalid_argument") metrics.storeErrors.labels(label, op, kind).inc();
        throw err;
      } finally {
        timer.observe(Number(process.hrtime.bigint() - start) / 1e9);
      }
    };
  }
  return wrapped;
}
