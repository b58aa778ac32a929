// The caller of the operation running now (deadline, client cancel), passed down to store
// operations without threading a parameter through every Store method: the server runs each
// call's work inside `withCall`, and the backend kit asks `callSignal()` before it starts a
// store round trip. A write already sent is never "cancelled": its outcome stays what the store
// says (see Store), so only work not yet started stops.
import { AsyncLocalStorage } from "node:async_hooks";
import { DecantError } from "./errors.js";

/** The caller of the work running now: whether it has gone, and a signal for drivers that take one. */
interface Caller {
  readonly aborted: boolean;
  readonly signal: AbortSignal;
}

// One store per process, even when a test runner or a bundler loads this module twice (as
// CommonJS and as ESM): otherwise a backend loaded by the other copy never sees the caller.
const KEY = Symbol.for("decant.call");
const current: AsyncLocalStorage<Caller> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new AsyncLocalStorage<Caller>()) as AsyncLocalStorage<Caller>;

/**
 * A served call's caller, cancelled by the server when the client goes or its deadline passes.
 * Its AbortSignal is made only when asked for: almost every call only checks `aborted`, and an
 * AbortController per request was among the sidecar's costliest JS functions.
 */
export class ServedCall implements Caller {
  private gone = false;
  private reason: unknown;
  private controller?: AbortController;

  get aborted(): boolean {
    return this.gone;
  }

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.gone) this.controller.abort(this.reason);
    return this.controller.signal;
  }

  cancel(reason: unknown): void {
    if (this.gone) return;
    this.gone = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/** Runs fn with `caller` (a served call, or the signal of one) as the caller of the call it serves. */
export function withCall<T>(caller: AbortSignal | ServedCall, fn: () => T): T {
  return current.run(caller instanceof ServedCall ? caller : { get aborted() { return caller.aborted; }, signal: caller }, fn);
}

/** Runs fn detached from any caller: work that must finish even when the caller has gone (replication, repair). */
export const detached = <T>(fn: () => T): T => current.exit(fn);

/** The signal of the call being served, if any. */
export const callSignal = (): AbortSignal | undefined => current.getStore()?.signal;

/** Whether some call's caller is being served (without making its signal). */
export const inCall = (): boolean => current.getStore() !== undefined;

/** Throws `cancelled` (nothing was started, so nothing was written) if the caller has gone. */
export function throwIfCancelled(op: string): void {
  if (current.getStore()?.aborted) throw new DecantError("cancelled", `${op} was not started: the caller cancelled or its deadline passed`);
}
