// BatchWrite is not atomic: each write succeeds or fails on its own. Which failures are one
// write's own result and which fail the whole call is decided here, once, for every store
// (README, "The protocol"):
//
//   - an error about the write itself — its input (invalid_argument: a value or key this store
//     cannot hold) or its condition (version_mismatch) — is that write's result, and the other
//     writes go on;
//   - any other error (unavailable, deadline_exceeded, cancelled, fenced, failed_precondition,
//     unimplemented, internal, or anything untyped) is about the store or the call, and fails
//     the whole BatchWrite with that error. As for any such error, the writes sent before it may
//     or may not have been applied (cancelled: none were).
import { throwIfCancelled, type Caller } from "./call.js";
import { isDecantError, type DecantError, type ErrorKind } from "./errors.js";
import type { Store } from "./store.js";
import type { RawItem, WriteOp, WriteOutcome } from "./types.js";

/** The error kinds that are one write's own result in a BatchWrite. */
export const ITEM_ERROR_KINDS: ReadonlySet<ErrorKind> = new Set<ErrorKind>(["invalid_argument", "version_mismatch"]);

/** Whether `err` is one write's own result (true) or fails the whole BatchWrite (false). */
export const isItemError = (err: unknown): err is DecantError => isDecantError(err) && ITEM_ERROR_KINDS.has(err.kind);

/** The outcome of one write of a batch: its result, or its error when that is the write's own; any other error is thrown. */
export async function settle(key: string, write: () => Promise<WriteOutcome> | WriteOutcome): Promise<WriteOutcome> {
  try {
    return await write();
  } catch (err) {
    if (isItemError(err)) return { ok: false, key, error: err };
    throw err;
  }
}

/** settle for a write decided synchronously (inside a transaction, say). */
export function settleSync(key: string, write: () => WriteOutcome): WriteOutcome {
  try {
    return write();
  } catch (err) {
    if (isItemError(err)) return { ok: false, key, error: err };
    throw err;
  }
}

/**
 * Runs a batch through the store's single-item operations, `concurrency` at a time, keeping
 * the order of writes to the same key. A caller that has gone stops the batch only before its
 * first write: once started it runs to its end (its writes are not given the caller), so
 * `cancelled` always means nothing was written.
 */
export async function runBatch(store: Store, ns: string, ops: WriteOp[], concurrency: number, call?: Caller): Promise<WriteOutcome[]> {
  throwIfCancelled("batchWrite", call);
  const results: WriteOutcome[] = new Array(ops.length);
  const byKey = new Map<string, number[]>();
  ops.forEach((op, i) => byKey.set(op.key, [...(byKey.get(op.key) ?? []), i]));
  const chains = [...byKey.values()];
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (next < chains.length && failure === undefined) {
      for (const i of chains[next++]!) {
        try {
          results[i] = await settle(ops[i]!.key, () => writeOne(store, ns, ops[i]!));
        } catch (err) {
          failure ??= { err }; // the whole call fails: no new write starts
          return;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, chains.length)) }, worker));
  if (failure) throw failure.err;
  return results;
}

async function writeOne(store: Store, ns: string, op: WriteOp): Promise<WriteOutcome> {
  if (op.type === "put") return { ok: true, key: op.key, version: await store.put(ns, op.key, op.value, op.condition) };
  const r = await store.delete(ns, op.key, op.condition);
  return { ok: true, key: op.key, version: r.version, deleted: r.deleted };
}

/** What one applyIfNewer call of a store should carry at most (Capabilities.applyBatch). */
export interface BatchLimits {
  items: number;
  bytes: number;
}

/** A caller's own preferred bound on a call: about `bytes` at most, but not below `minItems` items. */
export interface SoftLimit {
  bytes: number;
  minItems: number;
}

/**
 * How many of `items` to hand to one applyIfNewer call when `concurrency` calls run at once: an
 * even share, within the store's declared limits (items, and bytes at the items' average size)
 * and the caller's soft one, rounded down to a power of two (SQL stores prepare one statement per
 * size, see postgres.ts).
 */
export function applyChunkSize(items: RawItem[], concurrency: number, limits: BatchLimits | undefined, soft?: SoftLimit): number {
  let n = Math.ceil(items.length / Math.max(1, concurrency));
  if (limits || soft) {
    const bytes = items.reduce((sum, i) => sum + Buffer.byteLength(i.key) + (i.value?.length ?? 0), 0) / Math.max(1, items.length);
    if (limits) n = Math.min(n, limits.items, bytes > 0 ? Math.floor(limits.bytes / bytes) : limits.items);
    if (soft && bytes > 0) n = Math.min(n, Math.max(soft.minItems, Math.floor(soft.bytes / bytes)));
  }
  return 2 ** Math.max(0, Math.floor(Math.log2(Math.max(1, n))));
}
