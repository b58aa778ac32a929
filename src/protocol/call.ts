// The caller of the operation running now (deadline, client cancel), passed down to store
// operations without threading a parameter through every Store method: the server runs each
// call's work inside `withCall`, and the backend kit asks `callSignal()` before it starts a
// store round trip. A write already sent is never "cancelled": its outcome stays what the store
// says (see Store), so only work not yet started stops.
import { AsyncLocalStorage } from "node:async_hooks";
import { DecantError } from "./errors.js";

// One store per process, even when a test runner or a bundler loads this module twice (as
// CommonJS and as ESM): otherwise a backend loaded by the other copy never sees the caller.
const KEY = Symbol.for("decant.call");
const current: AsyncLocalStorage<AbortSignal> = ((globalThis as Record<symbol, unknown>)[KEY] ??= new AsyncLocalStorage<AbortSignal>()) as AsyncLocalStorage<AbortSignal>;

/** Runs fn with `signal` as the signal of the call it serves. */
export const withCall = <T>(signal: AbortSignal, fn: () => T): T => current.run(signal, fn);

/** Runs fn detached from any caller: work that must finish even when the caller has gone (replication, repair). */
export const detached = <T>(fn: () => T): T => current.exit(fn);

/** The signal of the call being served, if any. */
export const callSignal = (): AbortSignal | undefined => current.getStore();

/** Throws `cancelled` (nothing was started, so nothing was written) if the caller has gone. */
export function throwIfCancelled(op: string): void {
  const signal = current.getStore();
  if (signal?.aborted) throw new DecantError("cancelled", `${op} was not started: the caller cancelled or its deadline passed`);
}
