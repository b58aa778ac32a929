// What the backfill and the verifier need from the migration, and nothing more: the stores,
// the control records, the phase and attempt they must check, the metrics they update, and a
// clock. The MigrationController provides it; a test provides it on the memory store with a
// clock it moves by hand.
import type { Logger } from "../log.js";
import type { MigrationMetrics } from "../metrics/migration-metrics.js";
import type { Store } from "../protocol/store.js";
import type { ControlStore } from "./control.js";
import type { Phase, Role } from "./phases.js";
import type { VerifyOptions } from "./verify.js";

export interface Clock {
  /** Wall time (ms since the epoch): for records people read, never for leases. */
  wall(): number;
  /** Monotonic time (ms): leases and lapses are judged on it (a paused process's clock keeps running). */
  monotonic(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  wall: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** The subset of the timings the backfill and verifier read. */
export interface WorkTimings {
  heartbeatMs: number;
  /** A segment lease: another worker takes the segment over once it has not been renewed for this long. */
  backfillLeaseMs: number;
  /** The longest a store call may take: a page started this long before its lease ends may still land. */
  storeTimeoutMs: number;
  /** Segments one replica or worker runs at once (backfill.segments_per_replica). */
  backfillSegments?: number;
  /**
   * Event-loop delay a page may cause before its segment rests that long (absent = 50 ms), so a
   * sidecar's live requests and renewals keep their turn. A backfill-worker serves none: on a
   * busy host its loop delays are other processes' CPU, and resting only slowed it (Infinity).
   */
  loopDelayBudgetMs?: number;
}

export type WorkMetrics = Pick<MigrationMetrics, "backfillItems" | "backfillProgress" | "backfillRate" | "backfillRunning" | "backfillSegments" | "backfillEta" | "backfillWorkerRate">;

export interface VerifyPublication {
  report: { in_sync: number; missing: number; stale: number; extra: number; checked: number };
  namespace: string;
  startedAt: number;
  by: string;
}

export interface WorkContext {
  readonly current: Store;
  readonly target?: Store;
  readonly control: ControlStore;
  readonly replicaId: string;
  readonly timings: WorkTimings;
  readonly metrics: WorkMetrics;
  readonly logger: Logger;
  /** The phase this replica last read; the work stops when it leaves the phases it runs in. */
  readonly phase: Phase;
  readonly attempt?: string;
  readonly epoch: number;
  store(role: Role): Store;
  /** Every live replica has acknowledged the current phase. */
  isActive(): Promise<boolean>;
  /** Every replica's secondary-failure count, for the verify record. */
  failureCounts(): Promise<Record<string, number>>;
  publishVerify(v: VerifyPublication): void;
  /** The segment loop a verification spreads over (absent: this process verifies alone). */
  readonly backfill?: { spreadVerify: VerifyOptions["spread"] };
}

const BACKFILL_PHASES: readonly Phase[] = ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"];
/** The phases the backfill runs in: the target receives every write, and the primary has not moved. */
export const backfillAllowed = (p: Phase): boolean => BACKFILL_PHASES.includes(p);

/** Synchronous backends (SQLite) never yield on their own: let the sidecar serve between pages. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
