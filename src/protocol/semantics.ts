// The contract semantics every store shares (DESIGN.md §1): conditions, versions, deletes,
// value sizes, fence epochs. Backends decide with these functions, so a decision reads the
// same whatever database holds the item.
import { fenced, invalidArgument, versionMismatch } from "./errors.js";
import type { Condition, DeleteResult, Item, RawItem, WriteOp, WriteOutcome } from "./types.js";

/** The live version of a stored item: 0n when never written or a tombstone. */
export const liveVersion = (stored: RawItem | null): bigint => (stored !== null && stored.value !== null ? stored.version : 0n);

/**
 * Checks a write condition against the stored item (null = never written; a null value =
 * tombstone). Throws version_mismatch carrying the live version (0n when absent).
 */
export function checkCondition(key: string, stored: RawItem | null, condition: Condition | undefined): void {
  if (!condition) return;
  const live = liveVersion(stored);
  if (condition.kind === "must_not_exist") {
    if (live !== 0n) throw versionMismatch(key, live, "expected the key not to exist");
  } else if (live !== condition.version) {
    throw versionMismatch(key, live, `expected version ${condition.version}`);
  }
}

/** expected_version 0 means "absent" (checkCondition's semantics): the same as must_not_exist. */
export function normalizeCondition(condition: Condition | undefined): Condition | undefined {
  return condition?.kind === "expected_version" && condition.version === 0n ? { kind: "must_not_exist" } : condition;
}

/** The live items among raw ones (tombstones dropped), for the client reads built on raw reads. */
export const liveItems = (items: RawItem[]): Item[] => items.filter((r): r is Item => r.value !== null);

/** A raw item as a client sees it: null when absent or a tombstone. */
export const liveItem = (raw: RawItem | null): Item | null => (raw !== null && raw.value !== null ? (raw as Item) : null);

/** The version the next write of a key gets: one above anything stored, tombstones included. */
export const nextVersion = (stored: RawItem | null): bigint => (stored ? stored.version + 1n : 1n);

/** What one client write does to a key: the state to store (none = nothing to write) and its outcome. */
export interface WritePlan {
  write?: RawItem;
  outcome: WriteOutcome & { ok: true };
}

/**
 * Decides one put or delete against the stored item: throws version_mismatch when the condition
 * fails; a delete of an absent key (or of a tombstone) writes nothing and keeps its version.
 */
export function planWrite(stored: RawItem | null, op: WriteOp): WritePlan {
  checkCondition(op.key, stored, op.condition);
  if (op.type === "put") {
    const write = { key: op.key, value: op.value, version: nextVersion(stored) };
    return { write, outcome: { ok: true, key: op.key, version: write.version } };
  }
  if (stored === null || stored.value === null) return { outcome: { ok: true, key: op.key, version: stored?.version ?? 0n, deleted: false } };
  const write = { key: op.key, value: null, version: stored.version + 1n };
  return { write, outcome: { ok: true, key: op.key, version: write.version, deleted: true } };
}

/** Adapters refuse what they cannot hold before any call (the server checks the configured limit first). */
export function checkValueSize(store: { kind: string; capabilities: { maxValueBytes(key: string): number } }, key: string, value: Buffer | null): void {
  if (value === null) return;
  const max = store.capabilities.maxValueBytes(key);
  if (value.length > max) throw invalidArgument("value", `is ${value.length} bytes; the ${store.kind} store holds at most ${max} bytes for this key`);
}

/** A replicated version the store can hold: 1 up to its declared maximum. */
export function checkVersion(store: { kind: string; capabilities: { maxVersion?: bigint } }, item: RawItem): void {
  const max = store.capabilities.maxVersion ?? 2n ** 64n - 1n;
  if (item.version < 1n || item.version > max) throw invalidArgument("version", `${item.version} is outside 1..${max}, what the ${store.kind} store holds (key ${JSON.stringify(item.key)})`);
}

/** A fence epoch is a whole number from 0 up; anything else is refused before any call. */
export function checkEpoch(epoch: number | undefined): void {
  if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) throw invalidArgument("fence", `must be a whole number from 0 up, got ${epoch}`);
}

/** Refuses a write admitted under `epoch` (undefined = unfenced) when the store's fence (null = none) is above it. */
export function refuseIfFenced(store: string, epoch: number | undefined, fence: bigint | number | null): void {
  // A bigint and a number compare exactly: no BigInt made per write (it runs on every fenced one).
  if (epoch !== undefined && fence !== null && fence > epoch) throw fenced(store, epoch, fence);
}

/** One attempt of a write whose condition the store checks itself: done, or refused (with the item it saw, if it says). */
export type Attempt<T> = { done: T } | { refused: RawItem | null | undefined };

/**
 * A write the store conditions itself (SQL WHERE, DynamoDB ConditionExpression): when the store
 * refuses it, the key is read back to build the version_mismatch; if the condition holds on what
 * was read (the key changed in between) the write is tried again, three times at most. `settle`
 * may answer from the item read back instead (a delete of an absent key writes nothing).
 */
export async function conditionalWrite<T>(
  key: string,
  condition: Condition | undefined,
  attempt: () => Promise<Attempt<T>>,
  readBack: () => Promise<RawItem | null>,
  settle: (stored: RawItem | null) => T | undefined = () => undefined,
): Promise<T> {
  for (let n = 1; ; n++) {
    const r = await attempt();
    if ("done" in r) return r.done;
    const stored = r.refused !== undefined ? r.refused : await readBack();
    checkCondition(key, stored, condition); // throws the version_mismatch with the current version
    const settled = settle(stored);
    if (settled !== undefined) return settled;
    if (n >= 3) throw versionMismatch(key, liveVersion(stored), "the key kept changing during the write");
  }
}

/** What a delete that wrote nothing answers, from the stored item: undefined while the key is live. */
export const notDeleted = (stored: RawItem | null): DeleteResult | undefined => (stored === null || stored.value === null ? { deleted: false, version: stored?.version ?? 0n } : undefined);
