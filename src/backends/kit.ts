// Driver plumbing every backend shares: the call envelope (cancellation, deadline, retries with
// jitter, a guard against an abandoned attempt), lazy set-up that starts over after a failure,
// a typed URL option parser, chunking and a bounded worker pool. The contract semantics
// (conditions, pages, batches) live in src/protocol; KitStore (store.ts) derives a whole Store
// from the few operations a database supplies.
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { DecantError, deadlineExceeded, invalidArgument, isDecantError, unavailable } from "../protocol/errors.js";

// ---- errors -------------------------------------------------------------------------------

/** Connection-level failures every driver reports through Node's socket errors. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "ECONNABORTED"]);

export function isNetworkError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isNetworkError)) return true; // AggregateError from happy eyeballs
  return e.cause !== undefined && e.cause !== err && isNetworkError(e.cause);
}

/** The `code` of a driver error, if it has a string one. */
export const codeOf = (err: unknown): string | undefined => {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
};

/** Passes typed errors through; wraps anything else as unavailable (the store failed us). */
export function asStoreError(store: string, err: unknown): DecantError {
  if (isDecantError(err)) return err;
  return unavailable(store, err);
}

/** Redacts the password of a URL, for anything that is printed. */
export function redactUrl(url: string): string {
  // The password ends at the last "@" before the path, as URL parsers read it.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)([^/]*)@/i, "$1***@");
}

// ---- retry --------------------------------------------------------------------------------

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 20, maxDelayMs: 500 };

/** Waits `ms`, or less when one of the signals aborts first. */
function pause(ms: number, signals: (AbortSignal | undefined)[]): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  if (live.some((s) => s.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const s of live) s.addEventListener("abort", done, { once: true });
  });
}

/**
 * Retries `run` while `isTransient` says the failure may pass, with full-jitter exponential
 * backoff, a bounded number of times. Only for operations that are safe to repeat. It stops
 * (throwing the last failure: an attempt was made, so its outcome is the store's, never
 * `cancelled`) when `stop` aborts (the deadline) or `caller` goes away; either also ends a
 * backoff wait early.
 */
export async function retry<T>(run: () => Promise<T>, isTransient: (err: unknown) => boolean, policy: RetryPolicy = DEFAULT_RETRY, stop?: AbortSignal | Deadline, caller?: Caller): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const gone = () => (stop instanceof AbortSignal ? stop.aborted : stop?.expired === true) || caller?.aborted === true;
      if (attempt >= policy.attempts || gone() || !isTransient(err)) throw err;
      // The signals are read only once an attempt failed: a signal asked for is a signal made (see Deadline).
      await pause(Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1)), [stop instanceof AbortSignal ? stop : stop?.signal, caller?.signal]);
      if (gone()) throw err;
    }
  }
}

// ---- deadline -----------------------------------------------------------------------------

/** What an attempt knows about its operation's deadline: abandoned work checks it before it sends more. */
export interface Deadline {
  /** Aborts when the caller has been answered deadline_exceeded (drivers that take a signal stop). */
  readonly signal: AbortSignal;
  readonly expired: boolean;
  /** Throws deadline_exceeded once the caller got it, so an abandoned attempt never sends a statement late. */
  check(): void;
}

/**
 * A deadline whose AbortSignal is made only when a driver asks for one: most drivers only
 * check `expired`, and an AbortController per store call was the sidecar's costliest JS
 * function in a profile of Gets.
 */
class CallDeadline implements Deadline {
  expired = false;
  private controller?: AbortController;

  constructor(readonly error: () => Error) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.expired) this.controller.abort();
    return this.controller.signal;
  }

  expire(): void {
    this.expired = true;
    this.controller?.abort();
  }

  check(): void {
    if (this.expired) throw this.error();
  }
}

/**
 * Bounds `run` by `ms`: the caller gets deadline_exceeded then, and the attempt, abandoned (not
 * cancelled: a request already sent runs on), sees its deadline expired.
 */
export function withDeadline<T>(store: string, op: string, ms: number, run: (deadline: Deadline) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = new CallDeadline(() => deadlineExceeded(store, op, ms));
    const timer = setTimeout(() => {
      deadline.expire();
      reject(deadline.error());
    }, ms);
    let work: Promise<T>;
    try {
      work = run(deadline);
    } catch (err) {
      work = Promise.reject(err);
    }
    work.then(
      (result) => {
        clearTimeout(timer);
        resolve(result);
      },
      (err: unknown) => {
        clearTimeout(timer);
        deadline.expire(); // failed: no attempt goes on
        reject(err);
      },
    );
  });
}

/** How one backend calls its database: what bounds a call, what may be retried, how errors read. */
export interface EnvelopeOptions {
  /** The store's description (password redacted), for messages. */
  store: string;
  timeoutMs: number;
  /** Failures that may pass on their own (used where the caller says the work is repeatable). */
  isTransient: (err: unknown) => boolean;
  /**
   * Turns a driver error into what the call throws: a DecantError (default: typed errors pass,
   * the rest are unavailable), or an error the backend handles itself (DynamoDB's failed condition).
   */
  mapError?: (op: string, err: unknown) => unknown;
  retry?: RetryPolicy;
}

/**
 * The call envelope: one store operation, refused `cancelled` if its caller has already gone
 * (nothing was started), bounded by timeout_ms, retried while the work is repeatable and the
 * failure transient (never after the caller went), each failure turned into a DecantError.
 */
export class Envelope {
  constructor(readonly options: EnvelopeOptions) {}

  /**
   * Only the first attempt can end `cancelled` (see below).
   * `repeatable`: the whole work may run again after a transient failure (reads, idempotent
   * writes, or work that sends its statement only after the last step that can fail); a
   * function says itself which failures may be retried.
   * `call`: the caller the operation runs for (absent: nobody can cancel it); a driver that
   * waits before it sends (a pooled connection) checks it again itself.
   */
  async run<T>(op: string, work: (deadline: Deadline) => Promise<T>, repeatable: boolean | ((err: unknown) => boolean) = false, call?: Caller): Promise<T> {
    throwIfCancelled(op, call);
    const o = this.options;
    try {
      return await withDeadline(o.store, op, o.timeoutMs, (deadline) => {
        // `cancelled` promises nothing was written, which only the first attempt can keep: once
        // an attempt failed (perhaps after its write landed), a later one that finds the caller
        // gone (drivers check before they send) reports that earlier, ambiguous failure instead.
        let failed: { err: unknown } | undefined;
        const attempt = async () => {
          deadline.check();
          try {
            return await work(deadline);
          } catch (err) {
            if (failed !== undefined && isDecantError(err, "cancelled")) throw failed.err;
            failed = { err };
            throw err;
          }
        };
        if (repeatable === false) return attempt();
        return retry(attempt, repeatable === true ? o.isTransient : repeatable, o.retry, deadline, call);
      });
    } catch (err) {
      throw o.mapError ? o.mapError(op, err) : asStoreError(o.store, err);
    }
  }

  /** Retries a step that sends nothing the store could apply (connecting, say) within a call. */
  connect<T>(deadline: Deadline, step: () => Promise<T>, call?: Caller): Promise<T> {
    return retry(step, this.options.isTransient, this.options.retry, deadline, call);
  }
}

// ---- lazy set-up --------------------------------------------------------------------------

export interface Lazy<T> {
  /** The value, made on first use and shared by concurrent callers. */
  get(): Promise<T>;
  /** Whether it is made (get() would resolve at once): a hot path can then skip the await. */
  readonly done: boolean;
  /** Forgets it, so the next get() makes it again (the table was dropped, the store closed). */
  reset(): void;
}

/** A value made on first use; a failure is forgotten, so the next call tries again. */
export function lazy<T>(make: () => Promise<T>): Lazy<T> {
  let pending: Promise<T> | undefined;
  let done = false;
  return {
    get() {
      if (pending) return pending;
      const made = make();
      pending = made;
      made.then(
        () => void (pending === made && (done = true)),
        () => void (pending === made && (pending = undefined)),
      );
      return made;
    },
    get done() {
      return done;
    },
    reset() {
      pending = undefined;
      done = false;
    },
  };
}

// ---- URL options --------------------------------------------------------------------------

/** One query-string option: how it is read, and what it is when absent. */
export interface Option<T> {
  read(raw: string | null, problem: (rule: string) => DecantError): T;
}

export const option = {
  int: (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): Option<number> => ({
    read(raw, problem) {
      if (raw === null) return fallback;
      const n = Number(raw);
      if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) throw problem(`must be a whole number from ${min} to ${max}`);
      return n;
    },
  }),
  bool: (fallback: boolean): Option<boolean> => ({
    read(raw, problem) {
      if (raw === null) return fallback;
      if (raw !== "true" && raw !== "false") throw problem("must be true or false");
      return raw === "true";
    },
  }),
  text: (fallback: string, pattern: RegExp, rule = `must match ${pattern.source}`): Option<string> => ({
    read(raw, problem) {
      const value = raw ?? fallback;
      if (!pattern.test(value)) throw problem(rule);
      return value;
    },
  }),
  /** An option handed on as it is (to the driver), or undefined when absent. */
  passed: (): Option<string | undefined> => ({ read: (raw) => raw ?? undefined }),
};

type Parsed<S> = { [K in keyof S]: S[K] extends Option<infer T> ? T : never };

/**
 * Reads a store URL's query string against `spec`: every option typed and checked, and any
 * option the backend does not know refused (a misspelt option must not be silently ignored).
 */
export function parseOptions<S extends Record<string, Option<unknown>>>(kind: string, url: URL, spec: S): Parsed<S> {
  for (const name of url.searchParams.keys()) {
    if (!Object.hasOwn(spec, name)) throw invalidArgument("store", `unknown ${kind} option ${JSON.stringify(name)}; use ${Object.keys(spec).join(", ")}`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec)) {
    const raw = url.searchParams.get(name);
    out[name] = o.read(raw, (rule) => invalidArgument("store", `${kind} option ${name}=${JSON.stringify(raw)} ${rule}`));
  }
  return out as Parsed<S>;
}

// ---- batches ------------------------------------------------------------------------------

/** Splits xs into chunks of at most `maxItems` and (unless one item is bigger) `maxBytes` by `size`. */
export function chunkBy<T>(xs: T[], size: (x: T) => number, maxItems: number, maxBytes = Infinity): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const x of xs) {
    const s = size(x);
    if (cur.length > 0 && (cur.length >= maxItems || bytes + s > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(x);
    bytes += s;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Runs fn over xs, at most `limit` at a time, results in order; once one fails no new one starts. */
export async function mapLimit<T, R>(xs: T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < xs.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(xs[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, xs.length)) }, worker));
  return out;
}
