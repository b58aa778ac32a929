// Readiness: whether this sidecar can serve requests now. Each round reads a key that does not
// exist from the stores the current phase reads from and writes to, bounded by a timeout (a
// store behind a stalled network hangs rather than fails), and the sidecar is not ready while
// the migration layer fails closed. Liveness does not follow this: a store outage takes the
// pod out of service, and restarting the sidecar would not bring the store back.
import type { MigrationController } from "../migration/controller.js";
import { ROLES } from "../migration/phases.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE } from "../protocol/types.js";

export const PROBE_KEY = "readiness-probe";

export interface ReadinessSource {
  /** The stores requests need now (throws when the phase needs one that is not configured). */
  stores(): Store[];
  /** Why writes are refused, or undefined (the migration layer's fail-closed state). */
  failClosed(): string | undefined;
}

/** What a sidecar needs: the stores that serve reads and writes in this phase, and the lease. */
export function controllerReadiness(controller: MigrationController): ReadinessSource {
  return {
    stores: () => {
      const roles = ROLES[controller.phase];
      return [...new Set([roles.reads, roles.primary])].map((role) => controller.store(role));
    },
    failClosed: () => {
      const reason = controller.failClosedReason();
      return reason === undefined ? undefined : `writes fail closed: ${reason} (decant_fail_closed is 1)`;
    },
  };
}

export interface ReadinessOptions {
  intervalMs?: number;
  timeoutMs?: number;
  /** Called when readiness changes, with the reason when not ready. */
  onChange?: (ready: boolean, reason: string) => void;
}

export interface ReadinessState {
  ready: boolean;
  reason: string;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });

export class Readiness {
  private probeError: string | undefined = "the first store probe has not finished";
  private last?: ReadinessState;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  readonly intervalMs: number;
  readonly timeoutMs: number;

  constructor(
    private readonly source: ReadinessSource,
    private readonly options: ReadinessOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /** Probes once (so the first answer is a real one), then every interval. */
  async start(): Promise<void> {
    await this.probe();
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops probing; from now on the sidecar is not ready (it is draining). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
    this.stopped = true;
    this.probeError = "the sidecar is stopping";
  }

  /** The state now: the last probe's result, and the fail-closed state as of this moment. */
  state(): ReadinessState {
    const reason = this.probeError ?? this.source.failClosed();
    const state = reason === undefined ? { ready: true, reason: "ready" } : { ready: false, reason };
    // A change, or not ready from the start (a sidecar that starts ready has nothing to report).
    // Not after stop: shutting down is not news, and it sets gRPC health itself.
    if (!this.stopped && (this.last ? state.ready !== this.last.ready : !state.ready)) this.options.onChange?.(state.ready, state.reason);
    this.last = state;
    return state;
  }

  /** One round: every store the phase needs answers a read in time. Rounds never overlap. */
  probe(): Promise<void> {
    this.round ??= (async () => {
      try {
        const stores = this.source.stores();
        await Promise.all(stores.map((s) => withTimeout(s.get(CONTROL_NAMESPACE, PROBE_KEY), this.timeoutMs, `the ${s.kind} store (${s.description})`)));
        this.probeError = undefined;
      } catch (err) {
        this.probeError = `store unreachable: ${err instanceof Error ? err.message : String(err)}`;
      } finally {
        this.round = undefined;
        this.state();
      }
    })();
    return this.round;
  }
}
