// The caller of a served call (deadline, client cancel), passed down explicitly: the server makes
// one per call (a ServedCall), hands it to its handler, and the handler passes it as the trailing
// `call` argument of each Store method it calls on the client's behalf (see Store). The backend
// kit checks it before it starts a store round trip. A write already sent is never "cancelled":
// its outcome stays what the store says (see Store), so only work not yet started stops. Work
// that must finish whatever the caller does (replication to the secondary, repair, journal
// intents, the controller's rounds) is simply not given the caller.
//
// Why not an AsyncLocalStorage: once one has run, Node hooks every promise of the process, and
// that alone was 10-16 % of the sidecar's CPU per gRPC call (Decant issue 17).
import { DecantError } from "./errors.js";

/** The caller of some work: whether it has gone, and a signal for drivers that take one. */
export interface Caller {
  readonly aborted: boolean;
  readonly signal: AbortSignal;
}

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

/** The caller whose going is `signal` aborting (tests, and callers that already hold a signal). */
export const signalCaller = (signal: AbortSignal): Caller => ({
  get aborted() {
    return signal.aborted;
  },
  signal,
});

/** Throws `cancelled` (nothing was started, so nothing was written) if the caller has gone. */
export function throwIfCancelled(op: string, call: Caller | undefined): void {
  if (call?.aborted) throw new DecantError("cancelled", `${op} was not started: the caller cancelled or its deadline passed`);
}
