import { isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import type { Metrics } from "./metrics.js";

/** The Store's operations (its methods), optional ones included. */
type StoreMethod = { [K in keyof Store]-?: NonNullable<Store[K]> extends (...args: never[]) => Promise<unknown> ? K : never }[keyof Store];

/**
 * Whether each operation is timed. Every method of Store must be named here (a Record over
 * StoreMethod), so a method added to Store is a type error until someone decides.
 */
const TIMING: Record<StoreMethod, boolean> = {
  get: true,
  batchGet: true,
  put: true,
  delete: true,
  batchWrite: true,
  scan: true,
  getRaw: true,
  batchGetRaw: true,
  applyIfNewer: true,
  scanRaw: true,
  largeValues: true,
  namespaces: true,
  estimateCount: true,
  dropNamespace: true,
  purgeTombstones: true,
  raiseFence: true, // optional: wrapped only where the store has it
  close: false, // once, at shutdown
};
export const TIMED = (Object.keys(TIMING) as StoreMethod[]).filter((op) => TIMING[op]);

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
    const failed = (err: unknown, start: number): never => {
      const kind = isDecantError(err) ? err.kind : "internal";
      if (kind !== "version_mismatch" && kind !== "invalid_argument") metrics.storeErrors.labels(label, op, kind).inc();
      timer.observe((performance.now() - start) / 1000);
      throw err;
    };
    // then() rather than an async wrapper: one promise fewer per store call on every request.
    (wrapped as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
      const start = performance.now();
      let pending: Promise<unknown>;
      try {
        pending = Promise.resolve(original(...args)); // the same promise when it is one
      } catch (err) {
        return Promise.reject(err).catch((e: unknown) => failed(e, start));
      }
      return pending.then(
        (result) => {
          timer.observe((performance.now() - start) / 1000);
          return result;
        },
        (err: unknown) => failed(err, start),
      );
    };
  }
  return wrapped;
}
