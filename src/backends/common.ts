// Small pieces every adapter needs; the semantics of versions and conditions live here once.
import { DecantError, isDecantError, deadlineExceeded, fenced, invalidArgument, unavailable, versionMismatch } from "../protocol/errors.js";
import type { Condition, Item, RawItem } from "../protocol/types.js";

/**
 * Checks a write condition against the stored item (null = never written; a null value =
 * tombstone). Throws version_mismatch carrying the live version (0n when absent).
 */
export function checkCondition(key: string, stored: RawItem | null, condition: Condition | undefined): void {
  if (!condition) return;
  const live = stored !== null && stored.value !== null ? stored.version : 0n;
  if (condition.kind === "must_not_exist") {
    if (live !== 0n) throw versionMismatch(key, live, "expected the key not to exist");
  } else if (live !== condition.version) {
    throw versionMismatch(key, live, `expected version ${condition.version}`);
  }
}

/** The live items among raw ones (tombstones dropped), for the client reads built on raw reads. */
export const liveItems = (items: RawItem[]): Item[] => items.filter((r): r is Item => r.value !== null);

/** The version the next write of a key gets: one above anything stored, tombstones included. */
export const nextVersion = (stored: RawItem | null): bigint => (stored ? stored.version + 1n : 1n);

export { compareKeys } from "../protocol/types.js";

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

export const isKeyCursor = (v: unknown): v is { k: string } =>
  typeof v === "object" && v !== null && typeof (v as { k?: unknown }).k === "string";

/** Bounds a backend call; the caller's promise is abandoned (not cancelled) after `ms`. */
export async function withTimeout<T>(store: string, op: string, ms: number, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineExceeded(store, op, ms)), ms);
  });
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 20, maxDelayMs: 500 };

/**
 * Retries `run` while `isTransient` says the failure may pass, with full-jitter exponential
 * backoff, a bounded number of times. Only for operations that are safe to repeat.
 */
export async function retry<T>(run: () => Promise<T>, isTransient: (err: unknown) => boolean, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err)) throw err;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, Math.random() * cap));
    }
  }
}

/** Connection-level failures every driver reports through Node's socket errors. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"]);

export function isNetworkError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isNetworkError)) return true; // AggregateError from happy eyeballs
  return e.cause !== undefined && e.cause !== err && isNetworkError(e.cause);
}

/** Passes typed errors through; wraps anything else as unavailable (the store failed us). */
export function asStoreError(store: string, err: unknown): DecantError {
  if (isDecantError(err)) return err;
  return unavailable(store, err);
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

/** Redacts the password of a URL, for anything that is printed. */
export function redactUrl(url: string): string {
  // The password ends at the last "@" before the path, as URL parsers read it.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)([^/]*)@/i, "$1***@");
}

/** Adapters refuse what they cannot hold before any call (the server checks the configured limit first). */
export function checkValueSize(store: { kind: string; capabilities: { maxValueBytes(key: string): number } }, key: string, value: Buffer | null): void {
  if (value === null) return;
  const max = store.capabilities.maxValueBytes(key);
  if (value.length > max) throw invalidArgument("value", `is ${value.length} bytes; the ${store.kind} store holds at most ${max} bytes for this key`);
}

/** A fence epoch is a whole number from 0 up; anything else is refused before any call. */
export function checkEpoch(epoch: number | undefined): void {
  if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) throw invalidArgument("fence", `must be a whole number from 0 up, got ${epoch}`);
}

/** Refuses a write admitted under `epoch` (undefined = unfenced) when the store's fence (null = none) is above it. */
export function refuseIfFenced(store: string, epoch: number | undefined, fence: bigint | number | null): void {
  if (epoch !== undefined && fence !== null && BigInt(fence) > BigInt(epoch)) throw fenced(store, epoch, fence);
}
