// Turns decoded protocol requests into typed operations. Every refusal names the field,
// and happens before anything is written.
import { invalidArgument } from "./errors.js";
import type { Condition, WriteOp } from "./types.js";
import { DEFAULT_PAGE_SIZE, MAX_BATCH, MAX_KEY_BYTES, MAX_PAGE_SIZE, NAMESPACE_PATTERN } from "./types.js";

export interface Limits {
  /** The strictest value limit of every configured store (DESIGN.md §1). */
  maxValueBytes: number;
  /** The keys and values of one BatchWrite together; at least maxValueBytes + MAX_KEY_BYTES. */
  maxBatchBytes: number;
}

/** Framing of one write inside a BatchWriteRequest, at most: Write, PutOperation, key, value and condition tags and lengths. */
const WRITE_FRAMING_BYTES = 32;
/** The namespace field and the slack of everything else a request carries. */
const REQUEST_FRAMING_BYTES = 1024;

/**
 * The largest encoded request the limits allow, which sizes the gRPC receive limit:
 * max(max_batch_bytes, MAX_BATCH × MAX_KEY_BYTES) + MAX_BATCH × 32 + 1024. The first term
 * covers a full BatchWrite (and a Put, since max_batch_bytes ≥ max_value_bytes + a key) or a
 * full BatchGet; the others their framing. Each front sizes its own listener from the same limits.
 */
export function maxRequestBytes(limits: Limits): number {
  return Math.max(limits.maxBatchBytes, MAX_BATCH * MAX_KEY_BYTES) + MAX_BATCH * WRITE_FRAMING_BYTES + REQUEST_FRAMING_BYTES;
}

export function validateNamespace(ns: unknown, field = "namespace"): string {
  if (typeof ns !== "string" || ns === "") throw invalidArgument(field, "is required");
  if (!NAMESPACE_PATTERN.test(ns)) throw invalidArgument(field, `${JSON.stringify(ns.slice(0, 80))} must match [a-z][a-z0-9_]{0,62}`);
  return ns;
}

export function validateKey(key: unknown, field = "key"): string {
  if (typeof key !== "string" || key === "") throw invalidArgument(field, "is required (1 to 1024 bytes of UTF-8)");
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_KEY_BYTES) throw invalidArgument(field, `is ${bytes} bytes; at most ${MAX_KEY_BYTES} bytes`);
  if (key.includes("\u0000")) throw invalidArgument(field, "must not contain NUL characters");
  if (/[\ud800-\udfff]/u.test(key)) throw invalidArgument(field, "is not valid UTF-8");
  return key;
}

export function validateValue(value: unknown, limits: Limits, field = "value"): Buffer {
  const buf = value === undefined || value === null ? Buffer.alloc(0) : Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
  if (buf.length > limits.maxValueBytes) throw invalidArgument(field, `is ${buf.length} bytes; at most ${limits.maxValueBytes} bytes are allowed`);
  return buf;
}

/** uint64 arrives as a decimal string (proto-loader longs: String). */
export function parseVersion(v: unknown, field: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === "string" && /^\d{1,20}$/.test(v)) return BigInt(v);
  throw invalidArgument(field, `is not a version (a uint64): ${JSON.stringify(v)}`);
}

interface ConditionMessage {
  kind?: string;
  expected_version?: unknown;
  must_not_exist?: unknown;
}

/**
 * A condition that this server does not fully understand must not turn into an unconditional
 * write, so an empty condition, must_not_exist = false and expected_version = 0 are refused.
 */
export function validateCondition(c: ConditionMessage | null | undefined, field = "condition"): Condition | undefined {
  if (c === null || c === undefined) return undefined;
  if (c.kind === "expected_version") {
    const version = parseVersion(c.expected_version, `${field}.expected_version`);
    if (version === 0n) throw invalidArgument(`${field}.expected_version`, "must be at least 1 (versions start at 1; use must_not_exist for an absent key)");
    return { kind: "expected_version", version };
  }
  if (c.kind === "must_not_exist") {
    if (c.must_not_exist !== true) throw invalidArgument(`${field}.must_not_exist`, "must be true when set (leave the condition unset for an unconditional write)");
    return { kind: "must_not_exist" };
  }
  throw invalidArgument(field, "is empty: set expected_version or must_not_exist, or leave the condition unset");
}

export function validatePageSize(size: unknown, field = "page_size"): number {
  const n = size === undefined || size === null ? 0 : Number(size);
  if (!Number.isInteger(n) || n < 0 || n > MAX_PAGE_SIZE) throw invalidArgument(field, `must be 0 (default ${DEFAULT_PAGE_SIZE}) to ${MAX_PAGE_SIZE}, got ${String(size)}`);
  return n === 0 ? DEFAULT_PAGE_SIZE : n;
}

export function validateKeys(keys: unknown, field = "keys"): string[] {
  if (!Array.isArray(keys)) throw invalidArgument(field, "must be a list of keys");
  if (keys.length > MAX_BATCH) throw invalidArgument(field, `has ${keys.length} keys; at most ${MAX_BATCH} per call`);
  return keys.map((k, i) => validateKey(k, `${field}[${i}]`));
}

interface WriteMessage {
  operation?: string;
  put?: { key?: unknown; value?: unknown; condition?: ConditionMessage | null };
  delete?: { key?: unknown; condition?: ConditionMessage | null };
}

/** Validates every write of a batch before any is applied: one bad write refuses the whole batch. */
export function validateWrites(writes: unknown, limits: Limits, field = "writes"): WriteOp[] {
  if (!Array.isArray(writes)) throw invalidArgument(field, "must be a list of writes");
  if (writes.length > MAX_BATCH) throw invalidArgument(field, `has ${writes.length} writes; at most ${MAX_BATCH} per call`);
  const ops = (writes as WriteMessage[]).map((w, i): WriteOp => {
    const at = `${field}[${i}]`;
    if (w.operation === "put" && w.put) {
      return {
        type: "put",
        key: validateKey(w.put.key, `${at}.put.key`),
        value: validateValue(w.put.value, limits, `${at}.put.value`),
        condition: validateCondition(w.put.condition, `${at}.put.condition`),
      };
    }
    if (w.operation === "delete" && w.delete) {
      return { type: "delete", key: validateKey(w.delete.key, `${at}.delete.key`), condition: validateCondition(w.delete.condition, `${at}.delete.condition`) };
    }
    throw invalidArgument(at, "must set put or delete");
  });
  const bytes = ops.reduce((sum, op) => sum + Buffer.byteLength(op.key) + (op.type === "put" ? op.value.length : 0), 0);
  if (bytes > limits.maxBatchBytes) throw invalidArgument(field, `carry ${bytes} bytes of keys and values; at most ${limits.maxBatchBytes} per call (max_batch_bytes)`);
  return ops;
}
