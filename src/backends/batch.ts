import { isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import type { WriteOp, WriteOutcome } from "../protocol/types.js";

/**
 * BatchWrite is not atomic: each write succeeds or fails on its own. Adapters without a
 * better bulk path run the writes through their single-item operations, `concurrency`
 * at a time, keeping the order of writes to the same key.
 */
export async function runBatch(store: Store, ns: string, ops: WriteOp[], concurrency: number): Promise<WriteOutcome[]> {
  const results: WriteOutcome[] = new Array(ops.length);
  const byKey = new Map<string, number[]>();
  ops.forEach((op, i) => byKey.set(op.key, [...(byKey.get(op.key) ?? []), i]));
  const chains = [...byKey.values()];
  let next = 0;
  const worker = async () => {
    while (next < chains.length) {
      for (const i of chains[next++]!) results[i] = await runOne(store, ns, ops[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, chains.length)) }, worker));
  return results;
}

async function runOne(store: Store, ns: string, op: WriteOp): Promise<WriteOutcome> {
  try {
    if (op.type === "put") return { ok: true, key: op.key, version: await store.put(ns, op.key, op.value, op.condition) };
    const r = await store.delete(ns, op.key, op.condition);
    return { ok: true, key: op.key, version: r.version, deleted: r.deleted };
  } catch (err) {
    // A failed condition or a bad item is that item's result; an outage fails the whole call,
    // as it does for the backends that run a batch in one transaction.
    if (isDecantError(err) && err.kind !== "unavailable" && err.kind !== "deadline_exceeded") return { ok: false, key: op.key, error: err };
    throw err;
  }
}
