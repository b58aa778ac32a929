// Typed error kinds are part of the store contract: adapters throw them, the server maps
// them to gRPC status codes in exactly one place (src/server/status.ts).

export type ErrorKind =
  | "invalid_argument" // bad input; nothing was written
  | "version_mismatch" // a write condition failed; carries the current version
  | "failed_precondition" // the operation is not allowed in the current state
  | "unavailable" // the store cannot be reached (or this sidecar fails closed)
  | "deadline_exceeded" // the store did not answer in time
  | "unauthenticated"
  | "unimplemented" // a capability the backend does not declare
  | "fenced" // a write from a stale primary term (its epoch is below the store's fence); nothing was written
  | "cancelled" // the caller went away before the operation started; nothing was written
  | "internal";

// A brand instead of instanceof: a test runner or a bundler may load this module twice.
const BRAND = Symbol.for("decant.error");

export class DecantError extends Error {
  readonly [BRAND] = true;
  readonly kind: ErrorKind;
  /** The request field at fault, for invalid_argument. */
  readonly field?: string;
  /** The key's current version (0n = absent), for version_mismatch. */
  readonly currentVersion?: bigint;

  constructor(kind: ErrorKind, message: string, extra: { field?: string; currentVersion?: bigint; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "DecantError";
    this.kind = kind;
    this.field = extra.field;
    this.currentVersion = extra.currentVersion;
  }
}

export const invalidArgument = (field: string, message: string): DecantError =>
  new DecantError("invalid_argument", `${field}: ${message}`, { field });

export const versionMismatch = (key: string, currentVersion: bigint, wanted: string): DecantError =>
  new DecantError(
    "version_mismatch",
    `condition failed for key ${JSON.stringify(key)}: ${wanted}, current version is ${currentVersion === 0n ? "none (absent)" : currentVersion}`,
    { currentVersion },
  );

export const unavailable = (store: string, cause: unknown): DecantError =>
  new DecantError("unavailable", `store ${store} is unavailable: ${describe(cause)}`, { cause });

export const deadlineExceeded = (store: string, op: string, ms: number): DecantError =>
  new DecantError("deadline_exceeded", `store ${store} did not answer ${op} within ${ms} ms`);

export const unsupported = (store: string, what: string): DecantError =>
  new DecantError("unimplemented", `store ${store} does not support ${what}`);

export const fenced = (store: string, epoch: number, fence: bigint | number): DecantError =>
  new DecantError("fenced", `store ${store} refused a write of epoch ${epoch}: its fence is at ${fence} (a newer primary term); nothing was written`);

export function isDecantError(err: unknown, kind?: ErrorKind): err is DecantError {
  return typeof err === "object" && err !== null && (err as { [BRAND]?: boolean })[BRAND] === true && (kind === undefined || (err as DecantError).kind === kind);
}

export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code !== undefined && !err.message.includes(String(code)) ? `${err.message} (${String(code)})` : err.message || err.name;
  }
  return String(err);
}
