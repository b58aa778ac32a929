// One sidecar's view of the migration: it watches the control record, acknowledges phase
// changes with heartbeats, fails closed when it cannot renew its view, holds writes during a
// fence, keeps the repair journal, and runs the backfill when it holds the lease. The safety
// argument, step by step, is docs/PROTOCOL.md; the step numbers below refer to it.
import { randomBytes } from "node:crypto";
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { DecantError, describe as describeError, isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, MAX_KEY_BYTES, type RawItem } from "../protocol/types.js";
import type { Logger } from "../log.js";
import type { MigrationMetrics } from "../metrics/migration-metrics.js";
import { checkValueSize } from "../protocol/semantics.js";
import { BACKFILL_KEY, ControlStore, HEARTBEAT_PREFIX, JOURNAL_PREFIX, PHASE_KEY, VERIFY_KEY, heartbeatKey, intentKey, isNewerSchema, type Heartbeat, type JournalEntry, type PhaseRecord, type Versioned } from "./control.js";
import { PHASES, ROLES, movesPrimary, transitionError, type Phase, type Role } from "./phases.js";
import { Backfill, type BackfillRecord, type SegmentSummary } from "./backfill.js";
import type { VerifyRecord, VerifyReport } from "./verify.js";
import { backfillAllowed } from "./work-context.js";
import { checkBinding, controlIdentity, touchBinding } from "./binding.js";

export interface Timings {
  /** How often a replica re-reads the control record and heartbeats. */
  heartbeatMs: number;
  /** A replica that could not renew its view for this long refuses writes (rule 2). */
  leaseMs: number;
  /** A replica whose heartbeat has not changed for this long (on the observer's clock) is dead. */
  replicaTtlMs: number;
  /** How long a write waits for a fence to lift before UNAVAILABLE. */
  fenceHoldMs: number;
  /** How long SetPhase waits for every replica to acknowledge a fence. */
  fenceTimeoutMs: number;
  /** The backfill runner's lease; another replica takes over after it lapses. */
  backfillLeaseMs: number;
  /** Backfill segments this replica runs at once (backfill.segments_per_replica; absent = 2). */
  backfillSegments?: number;
  /** The longest a store call may take (the largest timeout_ms): an unknown outcome settles after it. */
  storeTimeoutMs: number;
}

export const DEFAULT_TIMINGS: Timings = { heartbeatMs: 1000, leaseMs: 5000, replicaTtlMs: 15_000, fenceHoldMs: 5000, fenceTimeoutMs: 20_000, backfillLeaseMs: 10_000, storeTimeoutMs: 5000 };

/** Test hooks: hold a write or a fence at a step, to replay an interleaving deterministically. */
export interface MigrationHooks {
  /** After admission (and the intent), before the primary write. */
  beforePrimary?(w: AdmittedWrite): Promise<void> | void;
  /** After the primary write, before the secondary write. */
  beforeSecondary?(w: AdmittedWrite): Promise<void> | void;
  /** In the fenced switch, after the fence is committed and the old primary fenced. */
  duringFence?(): Promise<void> | void;
  /** In a housekeeping journal repair, after it took the phase, before it lists the journal. */
  beforeRepair?(phase: Phase): Promise<void> | void;
}

export interface ControllerOptions {
  current: Store;
  target?: Store;
  control: Store;
  /** The control store on a connection of its own for renewals (phase reads, heartbeats): they never queue behind intents or backfill records. Default: control. */
  renewal?: Store;
  replicaId: string;
  timings?: Partial<Timings>;
  metrics: MigrationMetrics;
  logger: Logger;
  /** migration.id from the config: the control record must carry the same. */
  migrationId?: string;
  hooks?: MigrationHooks;
}

export interface ReplicaStatus {
  id: string;
  phase: Phase;
  epoch: number;
  ageSeconds: number;
  live: boolean;
  hasTarget: boolean;
}

/**
 * The migration as the control store holds it, for GetStatus and the status page (which format
 * it): the shared records, not this replica's cached view, so any replica answers the same.
 */
export interface MigrationStatus {
  phase: Phase;
  epoch: number;
  /** Writes are held while the primary moves to `pending`. */
  fence: { pending: Phase } | null;
  /** Every live replica acknowledged the epoch and no fence stands. */
  active: boolean;
  /** Whether this sidecar is configured with a target (without one it serves SINGLE only). */
  hasTarget: boolean;
  /** Live replicas only. */
  replicas: { id: string; phase: Phase; epoch: number; ageSeconds: number; acknowledged: boolean }[];
  backfill: BackfillStatus | null;
  lastVerify: { report: VerifyReport; finishedAt?: number } | null;
  journalDepth: number;
  currentStore: string;
  targetStore?: string;
}

export interface BackfillStatus {
  state: BackfillRecord["state"];
  scanned: number;
  copied: number;
  skipped: number;
  estimatedTotal: number;
  /** While running: the recent rate (0 when stalled); afterwards: the average of the run. */
  itemsPerSecond: number;
  runner?: string;
  error?: string;
  /** Segments by state and the workers running them (see backfill.ts). */
  segmentCount: number;
  segments?: SegmentSummary;
}

/** A write admitted in one phase and epoch; `done` ends it. */
export interface AdmittedWrite {
  phase: Phase;
  epoch: number;
  /** When (monotonic) the view it was admitted under was read. */
  viewAt: number;
  ns?: string;
  key?: string;
  /** The write's caller (test hooks see it; the write itself passes it only to its intent and primary write). */
  call?: Caller;
  done: () => void;
}

/** The journal entry of one write, until it is removed or left for repair. */
export interface Intent {
  key: string;
  entry: JournalEntry;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The monotonic clock: leases and liveness never compare timestamps from another machine (step 5). */
const now = () => performance.now();

export { backfillAllowed };

/** Phases where a failed secondary write fails the request (step 9: already before reads move). */
/** A repair failure that repeats is logged once per this long. */
const REPAIR_LOG_INTERVAL_MS = 60_000;

export const strictSecondary = (p: Phase): boolean => p === "SHADOW_READ" || p === "READ_TARGET";

export class MigrationController {
  readonly current: Store;
  readonly target?: Store;
  readonly control: ControlStore;
  readonly replicaId: string;
  readonly timings: Timings;
  readonly metrics: MigrationMetrics;
  readonly logger: Logger;
  readonly backfill: Backfill;
  readonly hooks: MigrationHooks;
  private readonly migrationId?: string;
  /** This process's incarnation: intents of an earlier run under the same id are not in flight. */
  readonly incarnation = randomBytes(6).toString("hex");

  /** The record this replica last read, and when (monotonic) the read that produced it started. */
  private record: PhaseRecord = { phase: "SINGLE", epoch: 0, fence: false, changedAt: 0, changedBy: "" };
  private renewedAt = -Infinity;
  private readonly renewal: ControlStore;
  /** When the last tick started: ticks run at a fixed rate, so a slow renewal does not add to the next one's delay. */
  private tickStartedAt = -Infinity;
  private ackedEpoch = -1;
  /** Writes in flight, by the epoch they were admitted under (step 4). */
  private readonly inflight = new Map<number, number>();
  private secondaryFailures = 0;
  private lastSecondaryFailureAt = 0;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private repairing = false;
  private failingSince?: number;
  private lastHeartbeatAt = -Infinity;
  private fatal?: string;
  /** The phase record is of a newer schema than this sidecar knows: it refuses writes while so. */
  private newerRecord?: string;
  private bound = false;
  /** The control store's identity, once bound; and when this replica last touched the binding. */
  private controlId?: string;
  private touchedAt = -Infinity;
  /** Heartbeat records as this replica watched them: version and when it last changed (step 5). */
  private readonly watched = new Map<string, { version: bigint; changedAt: number }>();
  /** When this replica first saw the fence record it is looking at (step 13: abandoned fences). */
  private fenceSeen?: { version: bigint; at: number };
  /** This replica's intents: in flight (undefined) or settled and due for repair at a time. */
  private readonly ownIntents = new Map<string, number | undefined>();
  private intentSeq = 0;
  /** Dead owners (owner/incarnation) whose writes this replica has fenced off (finding N3). */
  private readonly fencedOwners = new Set<string>();
  /** When each distinct repair failure was last logged (rate limit). */
  private readonly repairFailureLogged = new Map<string, number>();

  constructor(options: ControllerOptions) {
    this.current = options.current;
    this.target = options.target;
    this.control = new ControlStore(options.control);
    this.renewal = options.renewal ? new ControlStore(options.renewal) : this.control;
    this.replicaId = options.replicaId;
    // Only the timings given: spreading { heartbeatMs: undefined } over the defaults would
    // replace them with undefined (a heartbeat every millisecond, a lease that never expires).
    const given = Object.fromEntries(Object.entries(options.timings ?? {}).filter(([, v]) => v !== undefined));
    this.timings = { ...DEFAULT_TIMINGS, ...given };
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.hooks = options.hooks ?? {};
    this.migrationId = options.migrationId;
    this.backfill = new Backfill(this);
    this.metrics.viewAgeSeconds = () => (now() - this.renewedAt) / 1000;
    this.metrics.refreshOnScrape = () => this.refreshScrapedGauges();
  }

  get phase(): Phase {
    return this.record.phase;
  }

  get epoch(): number {
    return this.record.epoch;
  }

  get attempt(): string | undefined {
    return this.record.attempt;
  }

  store(role: Role): Store {
    if (role === "current") return this.current;
    if (!this.target) throw new DecantError("failed_precondition", "no migration target is configured (set target or DECANT_TARGET)");
    return this.target;
  }

  /** Reads the record once (creating it on first start), checks who coordinates, then keeps watching. */
  async start(): Promise<void> {
    try {
      await this.checkBinding();
      this.bound = true;
      const existing = await this.control.read<PhaseRecord>(PHASE_KEY);
      if (!existing) await this.control.compareAndSet<PhaseRecord>(PHASE_KEY, { ...this.record, migrationId: this.migrationId, changedAt: Date.now(), changedBy: this.replicaId }, null);
      else this.checkMigrationId(existing.value);
      await this.restoreFailureCount();
      await this.epochAboveFences();
    } catch (err) {
      if (err instanceof DecantError && err.kind === "failed_precondition") throw err;
      // A store that is down at start is not fatal: writes are refused until the view renews.
      this.logger.warn(`cannot read the control record yet (${this.control.store.description}); writes are refused until it can be read`, { error: describeError(err) });
    }
    await this.tick();
    if (!this.canServe()) {
      this.logger.warn(`the control record says ${this.record.phase} but no target is configured: writes are refused until this sidecar is configured with the target (after COMPLETE: with the target as current, or run \`decant migrate reset\`)`);
    }
    this.schedule();
  }

  /** Ticks every heartbeat; faster while failing closed, so writes resume soon after the store returns. */
  private schedule(): void {
    if (this.stopped) return;
    const delay = this.failingSince !== undefined ? Math.min(this.timings.heartbeatMs, 200) : Math.max(this.timings.heartbeatMs / 10, this.timings.heartbeatMs - (now() - this.tickStartedAt));
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.housekeepingRun;
    await this.backfill.stop();
    // Tell the others this replica is gone, so a fence does not wait for it (its failure count stays).
    await this.control.write<Heartbeat>(heartbeatKey(this.replicaId), { ...this.heartbeat(), stopped: true }).catch(() => undefined);
  }

  /** Stops this replica from writing until it restarts (an unexpected error in the process). */
  failClosed(reason: string): void {
    this.fatal = reason;
    this.metrics.failClosed.set(1);
    this.logger.error(`this sidecar refuses writes until it is restarted: ${reason}`);
  }

  /** Fail closed (rule 2), or an unexpected error: this replica cannot serve writes. */
  isFailClosed(): boolean {
    return this.failClosedReason() !== undefined;
  }

  /** Why this replica refuses writes now (undefined: it accepts them). */
  failClosedReason(): string | undefined {
    if (this.fatal !== undefined) return `${this.fatal} (until this sidecar is restarted)`;
    if (this.newerRecord !== undefined) return this.newerRecord;
    if (now() - this.renewedAt > this.timings.leaseMs) return `the view of the migration phase was not renewed for over ${this.timings.leaseMs} ms`;
    return undefined;
  }

  /**
   * One round: renew the view and acknowledge with a heartbeat. Kept short, so a slow store
   * does not stretch it: housekeeping (gauges, journal repair, backfill lease) runs beside it.
   * Takes no caller: a request may start it (freshView, a fenced write's retry), but the round
   * and the housekeeping it starts are shared work that its client's cancel must not stop.
   */
  tick(): Promise<void> {
    this.ticking ??= this.renew()
      .then(() => this.renewed())
      .catch((err: unknown) => this.renewalFailed(err))
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  /** Reads the record, acknowledges its epoch if it can, and heartbeats; the view dates from the read. */
  private async renew(): Promise<void> {
    const readAt = (this.tickStartedAt = now()); // the view is as old as the read that produced it
    if (!this.bound) await this.bindLate();
    const rec = await this.renewal.read<PhaseRecord>(PHASE_KEY);
    this.newerRecord = undefined;
    if (rec) this.adopt(rec.value, rec.version);
    const before = this.ackedEpoch;
    if (this.canAcknowledge()) this.ackedEpoch = this.record.epoch;
    // Liveness needs a changing heartbeat; without a migration (SINGLE, no target) one every
    // third of the TTL is enough to be counted when one starts (step 5).
    const quiet = this.record.phase === "SINGLE" && !this.target && this.ackedEpoch === before;
    if (!quiet || now() - this.lastHeartbeatAt >= this.timings.replicaTtlMs / 3) {
      await this.renewal.write<Heartbeat>(heartbeatKey(this.replicaId), this.heartbeat());
      this.lastHeartbeatAt = now();
    }
    this.renewedAt = readAt;
    this.metrics.renewal.observe((now() - readAt) / 1000);
  }

  /** After a renewal: writes resume if they were refused, and housekeeping runs beside the next round. */
  private renewed(): void {
    if (this.failingSince !== undefined) {
      this.logger.info(`the control store ${this.control.store.description} answers again; writes are accepted`, { unreachable_ms: Math.round(now() - this.failingSince) });
      this.failingSince = undefined;
    }
    if (!this.fatal) this.metrics.failClosed.set(0);
    if (!this.stopped) void this.housekeeping();
  }

  /** A store that does not answer fails closed after the lease; a newer phase record at once. */
  private renewalFailed(err: unknown): void {
    if (this.failingSince === undefined) this.failingSince = now();
    if (isNewerSchema(err)) {
      if (this.newerRecord === undefined) this.logger.error(`this sidecar refuses writes: ${err.message}`);
      this.newerRecord = err.message;
    } else {
      this.logger.warn(`cannot renew the view of the control record: ${this.outageText()}`, { error: describeError(err) });
    }
    if (this.isFailClosed()) this.metrics.failClosed.set(1);
  }

  private heartbeat(): Heartbeat {
    return {
      id: this.replicaId,
      phase: this.record.phase,
      epoch: this.ackedEpoch,
      at: Date.now(),
      hasTarget: this.target !== undefined,
      secondaryFailures: this.secondaryFailures,
      lastSecondaryFailureAt: this.lastSecondaryFailureAt,
    };
  }

  /**
   * Step 4: acknowledge the epoch only once no write admitted under an older one is in flight
   * here, and never a phase this replica cannot serve (no target configured): it stays pending.
   */
  private canAcknowledge(): boolean {
    if (!this.canServe()) return false;
    for (const [epoch, n] of this.inflight) if (epoch < this.record.epoch && n > 0) return false;
    return true;
  }

  private housekeepingRun?: Promise<void>;
  private housekeeping(): Promise<void> {
    this.housekeepingRun ??= (async () => {
      try {
        await this.touchBinding();
        await this.watchReplicas();
        await this.backfill.refreshGauges();
        await this.clearAbandonedFence();
        await this.repairJournal();
        if (!this.stopped && !this.fatal) await this.backfill.maybeTakeOver();
      } catch (err) {
        this.logger.warn("migration housekeeping failed; will retry", { error: describeError(err) });
      } finally {
        this.housekeepingRun = undefined;
      }
    })();
    return this.housekeepingRun;
  }

  private adopt(rec: PhaseRecord, version: bigint): void {
    if (rec.epoch !== this.record.epoch) {
      this.logger.info(`phase ${rec.phase}${rec.fence ? ` (write fence before ${rec.pending})` : ""}, epoch ${rec.epoch}`);
    }
    this.record = rec;
    if (rec.fence) {
      if (this.fenceSeen?.version !== version) this.fenceSeen = { version, at: now() };
    } else this.fenceSeen = undefined;
    this.metrics.setPhase(rec.phase);
  }

  /** Without a target, only SINGLE can be served: a stale-config replica must not write alone. */
  private canServe(): boolean {
    return this.target !== undefined || this.record.phase === "SINGLE";
  }

  /** Without a migration the control store is the data store: say that it is unreachable. */
  private outageText(): string {
    const store = this.control.store.description;
    return !this.target && this.record.phase === "SINGLE"
      ? `the store ${store} is unreachable`
      : `the control store ${store} is unreachable, so this sidecar cannot renew its view of the migration phase`;
  }

  /** Rule 2: refuse writes when this replica's view of the phase may be stale. */
  private checkLease(): void {
    if (this.fatal) throw new DecantError("unavailable", `this sidecar refuses writes until it is restarted: ${this.fatal}`);
    if (this.newerRecord) throw new DecantError("unavailable", `this sidecar refuses writes: ${this.newerRecord}`);
    if (now() - this.renewedAt > this.timings.leaseMs) {
      this.metrics.failClosed.set(1);
      throw new DecantError("unavailable", `${this.outageText()} for over ${this.timings.leaseMs} ms; it refuses writes rather than write in a stale phase`);
    }
  }

  /**
   * Reads use the view too: a replica resumed after a pause must not read by a phase that has
   * moved on. With a lapsed lease the view is renewed first; if that fails the read goes by the
   * last view after at most 500 ms, except where that view may miss writes (finding N2).
   */
  async freshView(): Promise<void> {
    if (this.viewFresh()) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, Math.min(this.timings.leaseMs, 500))));
    await Promise.race([this.tick(), bound]);
    clearTimeout(timer);
    // Model finding N2: during a migration a stale view reading the current store could read it
    // after COMPLETE, when it no longer gets writes; a view reading the target cannot miss one.
    if (this.target && now() - this.renewedAt > this.timings.leaseMs && ROLES[this.record.phase].reads === "current") {
      throw new DecantError("unavailable", `${this.outageText()} for over ${this.timings.leaseMs} ms; during a migration it refuses reads too, rather than read by a phase that may have moved on`);
    }
  }

  /** Whether freshView has nothing to wait for (a read can skip its await). */
  viewFresh(): boolean {
    return now() - this.renewedAt <= this.timings.leaseMs || Boolean(this.fatal);
  }

  /** True while the view this write was admitted under is still within its lease (step 7). */
  leaseHeld(w: AdmittedWrite): boolean {
    // Model finding N4: the lease of the view the write was admitted under, not of a view
    // renewed meanwhile (a replica resumed from a pause renews before its write goes on).
    return !this.fatal && now() - w.viewAt <= this.timings.leaseMs;
  }

  /**
   * Admits a write: checks the lease, waits out a fence (bounded), and counts the write as in
   * flight under its epoch until `done` is called (step 3).
   */
  admitWrite(): AdmittedWrite | Promise<AdmittedWrite> {
    this.checkLease();
    // Not async unless a fence holds writes: no promise of its own on every write.
    return this.record.fence ? this.admitAfterFence() : this.admit();
  }

  private async admitAfterFence(): Promise<AdmittedWrite> {
    const deadline = now() + this.timings.fenceHoldMs;
    while (this.record.fence) {
      if (now() > deadline) throw new DecantError("unavailable", `writes are fenced while the primary moves to ${this.record.pending}; try again`);
      await sleep(10);
      this.checkLease();
    }
    return this.admit();
  }

  private admit(): AdmittedWrite {
    if (!this.canServe()) {
      throw new DecantError("unavailable", `the migration is in ${this.record.phase} but this sidecar has no target configured; configure the target (or, after COMPLETE, the target as current)`);
    }
    const epoch = this.record.epoch;
    this.inflight.set(epoch, (this.inflight.get(epoch) ?? 0) + 1);
    let finished = false;
    return {
      phase: this.record.phase,
      epoch,
      viewAt: this.renewedAt,
      done: () => {
        if (finished) return;
        finished = true;
        const n = (this.inflight.get(epoch) ?? 1) - 1;
        if (n > 0) this.inflight.set(epoch, n);
        else this.inflight.delete(epoch);
      },
    };
  }

  /** Values must fit every configured store, so they can always be migrated (DESIGN.md §1). */
  checkValueFits(key: string, value: Buffer | null): void {
    checkValueSize(this.current, key, value);
    if (this.target) checkValueSize(this.target, key, value);
  }

  /** Step 6: the intent goes into the journal before the primary write; if it cannot, nothing is written. */
  async writeIntent(ns: string, key: string, call?: Caller): Promise<Intent> {
    const k = intentKey(ns, key, this.incarnation, ++this.intentSeq);
    const entry: JournalEntry = { ns, key, owner: this.replicaId, incarnation: this.incarnation, at: Date.now() };
    this.ownIntents.set(k, undefined);
    try {
      await this.control.write<JournalEntry>(k, entry, call);
    } catch (err) {
      // A caller gone before the intent was sent: nothing was written (the Store contract), so
      // there is no intent to remove later, and the write is `cancelled`, not a journal outage.
      if (isDecantError(err, "cancelled")) {
        this.ownIntents.delete(k);
        throw err;
      }
      // The intent may have landed all the same (a timeout): settled, so this replica removes it later.
      this.ownIntents.set(k, now() + this.timings.storeTimeoutMs);
      throw new DecantError("unavailable", `the repair journal on ${this.control.store.description} cannot be written, so the write was refused (nothing was written): ${describeError(err)}`, { cause: err });
    }
    return { key: k, entry };
  }

  /** The write reached the secondary: its intent is no longer needed (a failed removal is repaired later). */
  clearIntent(intent: Intent): void {
    // Off the request path, without the caller: the answer may already be on its way, and the caller gone.
    this.control.remove(intent.key).then(
      () => this.ownIntents.delete(intent.key),
      () => this.ownIntents.set(intent.key, 0),
    );
  }

  /** The primary refused the write outright: nothing to repair. */
  dropIntent(intent: Intent): void {
    this.clearIntent(intent);
  }

  /**
   * Rule 4: the write settled without its secondary copy (a failure, an unknown outcome, or a
   * refused applyIfNewer). The intent stays, marked, and is repaired once any late landing of
   * the write is over. Counted and stamped in the heartbeat, which survives restarts.
   */
  async leaveForRepair(role: Role, intent: Intent, ambiguous: boolean, err: unknown): Promise<void> {
    this.secondaryFailures++;
    this.lastSecondaryFailureAt = Date.now();
    this.metrics.secondaryFailures.labels(role).inc();
    this.ownIntents.set(intent.key, now() + (ambiguous ? this.timings.storeTimeoutMs : 0));
    this.logger.warn(`a write of ${intent.entry.ns}/${intent.entry.key} did not reach the ${role} store; it is in the repair journal`, { error: describeError(err) });
    // The write was sent: its record must land even if the caller has gone meanwhile (so: no caller).
    await this.control.write<JournalEntry>(intent.key, { ...intent.entry, failed: true }).catch(() => undefined);
  }

  /** Who may repair an entry now (step 10): its owner once settled, anyone once the owner is dead. */
  private repairable(e: JournalEntry, key: string, live: Set<string>): boolean {
    if (e.incarnation === this.incarnation) {
      const due = this.ownIntents.get(key);
      return due !== undefined && now() >= due;
    }
    return this.deadOwner(e, live);
  }

  /**
   * Copies journalled keys from the primary to the secondary. `all` (during a fence, COMPLETE
   * and SINGLE, when nothing is in flight that counts) takes every entry.
   */
  async repairJournal(phase: Phase = this.record.phase, all = false): Promise<number> {
    if (this.repairing && !all) return 0;
    this.repairing = true;
    const epoch = this.record.epoch;
    try {
      if (!all) await this.hooks.beforeRepair?.(phase);
      const limit = all ? 100_000 : 500;
      const listedAt = now();
      const entries = await this.control.list<JournalEntry>(JOURNAL_PREFIX, limit);
      if (entries.length < limit) this.forgetUnlanded(entries, listedAt);
      if (entries.length === 0) return 0;
      // This replica keeps acknowledging while its repair runs, so a fenced switch can pass
      // between taking the phase and listing: an entry of the new phase must not be copied
      // the old way (and then dropped). `all` runs are the fenced drains themselves.
      if (!all && !(await this.recordUnchanged(phase, epoch))) return 0;
      const live = new Set((await this.replicas()).filter((r) => r.live).map((r) => r.id));
      const { primary, secondary } = ROLES[phase];
      if (!secondary) {
        // Nothing to repair without a secondary: settled entries are dropped.
        for (const e of entries) if (all || this.repairable(e.value, e.key, live)) await this.removeEntry(e.key, e.version);
        return 0;
      }
      if (!all && !(await this.fenceOffDeadOwnersOf(entries, live, phase))) return 0;
      return await this.copyEntries(entries.filter((e) => all || this.repairable(e.value, e.key, live)), this.store(primary), this.store(secondary));
    } catch (err) {
      if (all) throw err;
      this.repairFailed(err);
      return 0;
    } finally {
      this.repairing = false;
    }
  }

  /**
   * Own intents settled before a whole listing of the journal that it does not hold: never landed
   * (or removed since), since a store call lands within storeTimeoutMs of its start or not at all.
   * Forgotten, or an intent whose write failed without landing would be kept for good.
   */
  private forgetUnlanded(entries: { key: string }[], listedAt: number): void {
    if (this.ownIntents.size === 0) return;
    const listed = new Set(entries.map((e) => e.key));
    for (const [key, due] of this.ownIntents) if (due !== undefined && due <= listedAt && !listed.has(key)) this.ownIntents.delete(key);
  }

  /** Repair failures (retried every round): counted, and logged at warn once a minute per distinct reason. */
  private repairFailed(err: unknown): void {
    this.metrics.repairFailures.inc();
    const reason = describeError(err);
    const t = now();
    const last = this.repairFailureLogged.get(reason);
    if (last !== undefined && t - last < REPAIR_LOG_INTERVAL_MS) return;
    for (const [r, at] of this.repairFailureLogged) if (t - at >= REPAIR_LOG_INTERVAL_MS) this.repairFailureLogged.delete(r);
    this.repairFailureLogged.set(reason, t);
    this.logger.warn("the repair journal cannot be repaired now; it is retried every round", { error: reason });
  }

  /** The record still says `phase` at `epoch`, unfenced: every entry listed since was written under it. */
  private async recordUnchanged(phase: Phase, epoch: number): Promise<boolean> {
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    return rec !== null && rec.value.phase === phase && rec.value.epoch === epoch && !rec.value.fence;
  }

  /**
   * Model finding N3: a dead owner's write may still land (a pause before its primary call); on
   * a fencing primary its epoch is fenced off first, so the repair cannot be overtaken. False
   * when that cannot be done now (the repair waits).
   */
  private async fenceOffDeadOwnersOf(entries: { value: JournalEntry }[], live: Set<string>, phase: Phase): Promise<boolean> {
    const owner = (e: JournalEntry) => `${e.owner}/${e.incarnation}`;
    const unfenced = entries.filter((e) => this.deadOwner(e.value, live) && !this.fencedOwners.has(owner(e.value)));
    if (unfenced.length === 0) return true;
    if (!(await this.fenceOffDeadOwners(phase))) return false;
    for (const e of unfenced) this.fencedOwners.add(owner(e.value));
    return true;
  }

  /** Copies each entry's key from the primary to the secondary (what the primary holds now), then drops the entry. */
  private async copyEntries(entries: { key: string; value: JournalEntry; version: bigint }[], primary: Store, secondary: Store): Promise<number> {
    let repaired = 0;
    for (const e of entries) {
      const raw = await primary.getRaw(e.value.ns, e.value.key);
      if (raw) await secondary.applyIfNewer(e.value.ns, [raw]);
      if (await this.removeEntry(e.key, e.version)) {
        repaired++;
        this.metrics.repaired.inc();
      }
    }
    return repaired;
  }

  /** The entry's writer is gone: another replica, not live, or an earlier run of this one. */
  private deadOwner(e: JournalEntry, live: Set<string>): boolean {
    return e.incarnation !== this.incarnation && (e.owner === undefined || !live.has(e.owner) || e.owner === this.replicaId);
  }

  /**
   * Moves the record to a new epoch (same phase) and raises the primary's store fence to it: no
   * write admitted before can land afterwards. Writes in flight elsewhere are refused by the
   * fence and admitted again. Stores without a fence rely on the TTL margin (docs/PROTOCOL.md).
   */
  private async fenceOffDeadOwners(phase: Phase): Promise<boolean> {
    const primary = this.store(ROLES[phase].primary);
    if (!primary.capabilities.fencing || !primary.raiseFence) return true;
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    if (!rec || rec.value.fence || rec.value.phase !== phase) return false; // the primary is no longer this one
    const epoch = rec.value.epoch + 1;
    if ((await this.control.compareAndSet<PhaseRecord>(PHASE_KEY, { ...rec.value, epoch, changedAt: Date.now(), changedBy: this.replicaId }, rec.version)) === false) return false;
    await primary.raiseFence(epoch);
    this.logger.info("fenced off the writes of replicas that are gone before repairing their journal entries", { epoch });
    await this.tick();
    return true;
  }

  private async removeEntry(key: string, version?: bigint): Promise<boolean> {
    const removed = await this.control.remove(key, version);
    if (removed) this.ownIntents.delete(key);
    return removed;
  }

  /** Entries waiting for repair: marked failed, or left by a dead replica or an earlier run of this one. */
  async journalDepth(): Promise<number> {
    const live = new Set((await this.replicas()).filter((r) => r.live).map((r) => r.id));
    const entries = await this.control.list<JournalEntry>(JOURNAL_PREFIX);
    return entries.filter((e) => e.value.failed || this.deadOwner(e.value, live) || this.ownIntents.get(e.key) !== undefined).length;
  }

  /**
   * Every replica that has a heartbeat record. Live is judged on this replica's own monotonic
   * clock: dead once the record has not changed for the TTL while watched (step 5).
   */
  async replicas(): Promise<ReplicaStatus[]> {
    const t = now();
    const out: ReplicaStatus[] = [];
    for (const { key, value: h, version } of await this.control.list<Heartbeat>(HEARTBEAT_PREFIX)) {
      let w = this.watched.get(key);
      if (!w || w.version !== version) this.watched.set(key, (w = { version, changedAt: t }));
      const self = h.id === this.replicaId;
      out.push({
        id: h.id,
        phase: h.phase,
        epoch: h.epoch,
        ageSeconds: (t - w.changedAt) / 1000,
        live: self ? !this.stopped : !h.stopped && t - w.changedAt < this.timings.replicaTtlMs,
        hasTarget: h.hasTarget ?? true,
      });
    }
    return out;
  }

  /** The shared records in one read (the phase record first: a missing one is this replica's view). */
  async status(): Promise<MigrationStatus> {
    const [rec, replicas, bf, vr, journalDepth] = await Promise.all([
      this.control.read<PhaseRecord>(PHASE_KEY),
      this.replicas(),
      this.backfill.read(), // with its segments' progress merged in
      this.control.read<VerifyRecord>(VERIFY_KEY),
      this.journalDepth(),
    ]);
    const record = rec?.value ?? this.record;
    const live = replicas.filter((r) => r.live);
    return {
      phase: record.phase,
      epoch: record.epoch,
      fence: record.fence ? { pending: record.pending ?? record.phase } : null,
      active: !record.fence && live.every((r) => r.epoch >= record.epoch),
      hasTarget: this.target !== undefined,
      replicas: live.map((r) => ({ id: r.id, phase: r.phase, epoch: r.epoch, ageSeconds: r.ageSeconds, acknowledged: r.epoch >= record.epoch })),
      backfill: bf ? this.backfillStatus(bf.value) : null,
      lastVerify: vr ? { report: vr.value.report, finishedAt: vr.value.finishedAt } : null,
      journalDepth,
      currentStore: this.current.description,
      targetStore: this.target?.description,
    };
  }

  private backfillStatus(b: BackfillRecord): BackfillStatus {
    const average = b.activeMs > 0 ? (b.scanned / b.activeMs) * 1000 : 0;
    return {
      state: b.state,
      scanned: b.scanned,
      copied: b.copied,
      skipped: b.skipped,
      estimatedTotal: b.estimatedTotal,
      itemsPerSecond: b.state === "running" ? this.backfill.currentRate(b) : average,
      runner: b.runner,
      error: b.error,
      segmentCount: b.segmentCount ?? 0,
      segments: b.segments,
    };
  }

  /** A phase change is active once every live replica has acknowledged its epoch (rule 1). */
  async isActive(epoch = this.record.epoch): Promise<boolean> {
    return (await this.replicas()).filter((r) => r.live).every((r) => r.epoch >= epoch);
  }

  /** Waits (up to the fence timeout) until every live replica acknowledged `epoch`. */
  private async waitActive(epoch: number, refusal: string): Promise<void> {
    const deadline = now() + this.timings.fenceTimeoutMs;
    while (!(await this.isActive(epoch))) {
      if (now() > deadline) throw new DecantError("failed_precondition", refusal);
      await sleep(Math.min(50, this.timings.heartbeatMs));
    }
  }

  /**
   * Every round: lists the heartbeats, so liveness is judged on records watched at least once a
   * round (step 5), and sets the replicas gauge from that list.
   */
  private async watchReplicas(): Promise<void> {
    const live = (await this.replicas()).filter((r) => r.live);
    const acked = live.filter((r) => r.epoch >= this.record.epoch).length;
    this.metrics.replicas.labels("acked").set(acked);
    this.metrics.replicas.labels("pending").set(live.length - acked);
  }

  /** The gauges only a scrape reads: the journal's depth and the last verification. */
  private async refreshScrapedGauges(): Promise<void> {
    this.metrics.journalDepth.set(await this.journalDepth());
    const vr = await this.control.read<VerifyRecord>(VERIFY_KEY);
    if (vr) this.publishVerify(vr.value);
  }

  publishVerify(v: VerifyRecord): void {
    const r = v.report;
    this.metrics.verifyItems.labels("in_sync").set(r.in_sync);
    this.metrics.verifyItems.labels("missing").set(r.missing);
    this.metrics.verifyItems.labels("stale").set(r.stale);
    this.metrics.verifyItems.labels("extra").set(r.extra);
    this.metrics.inSyncRatio.set(r.checked === 0 ? 1 : r.in_sync / r.checked);
  }

  /** How long a fence may stand before any replica takes it for abandoned (its fencer died). */
  private get fenceAbandonedAfterMs(): number {
    return this.timings.fenceTimeoutMs + this.timings.replicaTtlMs + this.timings.storeTimeoutMs;
  }

  /** Step 13: a fence this replica has watched unchanged for too long is rolled back. */
  private async clearAbandonedFence(): Promise<boolean> {
    const seen = this.fenceSeen;
    if (!this.record.fence || !seen || now() - seen.at < this.fenceAbandonedAfterMs) return false;
    const rec = this.record;
    const next: PhaseRecord = { ...rec, epoch: rec.epoch + 1, fence: false, pending: undefined, changedAt: Date.now(), changedBy: this.replicaId };
    if ((await this.control.compareAndSet(PHASE_KEY, next, seen.version)) === false) return false;
    this.logger.warn(`rolled back a write fence (before ${rec.pending}) that stood for over ${this.fenceAbandonedAfterMs} ms: its SetPhase caller is gone; the migration stays in ${rec.phase}`);
    await this.tick();
    return true;
  }

  /**
   * SetPhase: validates the step and its gates, then changes the record (fenced if the primary
   * moves). `call`, the SetPhase caller, is checked before the gates and again just before the
   * commit: a caller gone by then leaves the phase as it was (`cancelled`), though a forced
   * SINGLE → DUAL_WRITE may already have cleared the target's leftovers and the old backfill and
   * verify records (a rerun finds them gone). Nothing after the check is
   * given it: once committed, the change's follow-up runs to its end even if the caller goes,
   * so it is never left half done (a store fence not raised, a write fence standing).
   */
  async setPhase(to: Phase, force: boolean, call?: Caller): Promise<void> {
    throwIfCancelled("setPhase", call);
    const rec = await this.readForChange();
    const from = rec.value;
    this.checkStep(from, to);
    const attempt = await this.passGates(from, to, force, call);
    const base = { migrationId: from.migrationId ?? this.migrationId, attempt: to === "SINGLE" ? undefined : attempt, changedAt: Date.now(), changedBy: this.replicaId };
    throwIfCancelled("setPhase", call);
    if (!movesPrimary(from.phase, to)) {
      await this.commit(rec.version, { ...base, phase: to, epoch: from.epoch + 1, fence: false });
      // A write of SINGLE still on its way to the current store would miss the target: once
      // the fence is raised it is refused and admitted again as a DUAL_WRITE write.
      if (from.phase === "SINGLE" && to === "DUAL_WRITE") await this.raiseFence(this.current, from.epoch + 1);
      await this.afterChange(from.phase, to);
    } else {
      await this.fencedSwitch(rec.version, from, to, base);
      await this.afterChange(from.phase, to);
    }
  }

  /** The record to change: an abandoned fence is rolled back first; a live one refuses the change. */
  private async readForChange(): Promise<Versioned<PhaseRecord>> {
    let rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    if (!rec) throw new DecantError("unavailable", "the control record is missing");
    if (rec.value.fence) {
      this.adopt(rec.value, rec.version);
      if (await this.clearAbandonedFence()) rec = await this.control.read<PhaseRecord>(PHASE_KEY);
      if (!rec) throw new DecantError("unavailable", "the control record is missing");
    }
    if (rec.value.fence) throw new DecantError("failed_precondition", `a write fence is in progress (moving to ${rec.value.pending}); try again shortly`);
    return rec;
  }

  /** Whether the step itself is allowed (rule 7), with this sidecar's configuration. */
  private checkStep(from: PhaseRecord, to: Phase): void {
    if (to !== "SINGLE" && !this.target) throw new DecantError("failed_precondition", `cannot move to ${to}: no migration target is configured (set target or DECANT_TARGET)`);
    const wrong = transitionError(from.phase, to);
    if (wrong) throw new DecantError("failed_precondition", wrong);
    // Model finding N1: a replica still on the old phase reads the target; a phase whose writes
    // may miss the target (SINGLE, or DUAL_WRITE's lenient secondary) must wait until every
    // replica reads the current store again, i.e. go through an active SHADOW_READ.
    if (ROLES[from.phase].reads === "target" && ROLES[to].reads === "current" && to !== "SHADOW_READ") {
      throw new DecantError("failed_precondition", `roll back from ${from.phase} through SHADOW_READ: replicas still reading the target would miss writes made in ${to}`);
    }
  }

  /** The gates of the step (rules 6 and 8, steps 11 and 12); returns the attempt the new record belongs to. */
  private async passGates(from: PhaseRecord, to: Phase, force: boolean, call: Caller | undefined): Promise<string | undefined> {
    if ((to === "SINGLE" || to === "DUAL_WRITE") && from.phase === "SHADOW_READ") {
      await this.waitActive(from.epoch, "SHADOW_READ is not active yet: a replica may still read the target; try again in a few seconds");
    }
    if (from.phase === "SINGLE" && to === "DUAL_WRITE") {
      await this.checkTargetReady(force, call);
      await this.backfill.abandon(); // the record and its segments
      await this.control.remove(VERIFY_KEY);
      return randomBytes(8).toString("hex"); // step 11: a new attempt; earlier records no longer count
    }
    if (from.phase === "SHADOW_READ" && to === "READ_TARGET") {
      await this.waitActive(from.epoch, "SHADOW_READ is not active yet: not every live replica has acknowledged it (so some may still answer OK for a failed target write); try again in a few seconds");
      if (!force) await this.checkVerified(from);
    }
    if (to === "COMPLETE") {
      // The old store is left as it was; journalled writes it missed are repaired first.
      await this.repairJournal(from.phase, true);
      const left = await this.journalDepth();
      if (left > 0) throw new DecantError("failed_precondition", `the repair journal still holds ${left} keys for the current store; wait for it to drain (is the current store reachable?)`);
    }
    return from.attempt;
  }

  /** Step 11: a rollback voids the last verification; a rollback to SINGLE ends the attempt. */
  private async afterChange(from: Phase, to: Phase): Promise<void> {
    if (PHASES.indexOf(to) < PHASES.indexOf(from)) await this.control.remove(VERIFY_KEY);
    if (to === "SINGLE") await this.backfill.abandon();
    if (to === "SINGLE" || to === "COMPLETE") await this.repairJournal(to, true); // clears entries that no longer matter
    await this.tick();
  }

  /** Step 8: the store refuses primary writes admitted before `epoch` (where it can). */
  private async raiseFence(store: Store, epoch: number, required = false): Promise<void> {
    if (!store.capabilities.fencing || !store.raiseFence) return;
    try {
      await store.raiseFence(epoch);
    } catch (err) {
      if (required) throw err;
      this.logger.warn(`could not raise the write fence of ${store.description}; a write admitted before the phase change could still land there`, { error: describeError(err) });
    }
  }

  /**
   * After COMPLETE the old store keeps a COMPLETE record, so a sidecar serving it alone refuses
   * reads and writes. Reset makes it a plain store again — only when no live replica could still
   * be writing by the old record (a replica configured with a target, this one included).
   */
  async reset(): Promise<void> {
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    if (!rec) throw new DecantError("unavailable", "the control record is missing");
    if (rec.value.phase === "SINGLE" && !rec.value.fence) return;
    if (rec.value.phase !== "COMPLETE") throw new DecantError("failed_precondition", `the migration is in ${rec.value.phase}, not COMPLETE; roll it back with SetPhase(SINGLE) instead`);
    if (this.target) throw new DecantError("failed_precondition", "this sidecar is configured with a target; reset runs on a sidecar of the old store alone");
    const busy = (await this.replicas()).filter((r) => r.live && r.hasTarget && r.id !== this.replicaId).map((r) => r.id);
    if (busy.length > 0) throw new DecantError("failed_precondition", `replicas ${busy.join(", ")} are configured with a migration target and still heartbeat on this control store; stop or reconfigure them first`);
    await this.commit(rec.version, { phase: "SINGLE", epoch: rec.value.epoch + 1, fence: false, migrationId: rec.value.migrationId, changedAt: Date.now(), changedBy: this.replicaId });
    await this.backfill.abandon();
    await this.control.remove(VERIFY_KEY);
    await this.repairJournal("SINGLE", true);
    this.logger.info("the migration record was reset: this store is a plain store again (phase SINGLE)");
    await this.tick();
  }

  private async commit(expected: bigint, next: PhaseRecord): Promise<bigint> {
    const v = await this.control.compareAndSet(PHASE_KEY, next, expected);
    if (v === false) throw new DecantError("failed_precondition", "the phase was changed by someone else meanwhile; read the status and try again");
    this.logger.info(`phase set to ${next.phase}${next.fence ? ` (fence before ${next.pending})` : ""}`, { epoch: next.epoch, by: this.replicaId });
    return v;
  }

  /**
   * Rule 3 / step 13: hold writes everywhere, fence the old primary in the store, wait until no
   * replica has a write in flight, drain the journal, then move the primary. Any failure rolls
   * the record back to the old phase with a new epoch.
   */
  private async fencedSwitch(expected: bigint, from: PhaseRecord, to: Phase, base: Pick<PhaseRecord, "migrationId" | "attempt" | "changedAt" | "changedBy">): Promise<void> {
    const fenceEpoch = from.epoch + 1;
    const version = await this.commit(expected, { ...base, phase: from.phase, epoch: fenceEpoch, fence: true, pending: to });
    // From here every replica's writes are held: the switch ends, committed or rolled back, even
    // if the SetPhase caller has gone (its cancel would leave the fence until it is abandoned):
    // nothing here is given the caller.
    let failure: string | undefined;
    try {
      failure = await this.holdFence(from.phase, fenceEpoch);
    } catch (err) {
      failure = describeError(err);
    }
    await this.liftFence(version, from, to, base, failure);
  }

  /** With the fence committed: fence the old primary, wait for every replica, drain the journal. Returns why not, if not. */
  private async holdFence(from: Phase, fenceEpoch: number): Promise<string | undefined> {
    const oldPrimary = this.store(ROLES[from].primary);
    // From here no write admitted before the fence can land on the old primary (stores that can).
    await this.raiseFence(oldPrimary, fenceEpoch, true);
    await this.hooks.duringFence?.();
    await this.tick();
    const deadline = now() + this.timings.fenceTimeoutMs;
    while (!(await this.isActive(fenceEpoch))) {
      if (now() > deadline) {
        const pending = (await this.replicas()).filter((r) => r.live && r.epoch < fenceEpoch).map((r) => r.id);
        return `replicas ${pending.join(", ")} did not acknowledge the write fence within ${this.timings.fenceTimeoutMs} ms`;
      }
      await sleep(Math.min(50, this.timings.heartbeatMs));
    }
    await this.repairJournal(from, true);
    const left = (await this.control.list(JOURNAL_PREFIX)).length;
    return left > 0 ? `the repair journal still holds ${left} keys` : undefined;
  }

  /** Ends the fence: the new phase, or (after a failure) the old one, each with a new epoch. */
  private async liftFence(fenced: bigint, from: PhaseRecord, to: Phase, base: Pick<PhaseRecord, "migrationId" | "attempt" | "changedAt" | "changedBy">, failure: string | undefined): Promise<void> {
    const epoch = from.epoch + 2;
    try {
      const version = (await this.control.read<PhaseRecord>(PHASE_KEY))?.version ?? fenced;
      if (!failure) {
        await this.commit(version, { ...base, phase: to, epoch, fence: false, changedAt: Date.now() });
        return;
      }
      await this.commit(version, { ...base, phase: from.phase, attempt: from.attempt, epoch, fence: false, changedAt: Date.now() });
    } catch (err) {
      // The fence stays until a replica rolls it back as abandoned (clearAbandonedFence).
      throw new DecantError("unavailable", `the fence before ${to} could not be lifted (${describeError(err)}); it is rolled back automatically after ${this.fenceAbandonedAfterMs} ms`);
    }
    throw new DecantError("unavailable", `stayed in ${from.phase}: ${failure}`);
  }

  /** Rule 8 and §1: the target must be empty, every stored value must fit it, and every version too. The reads stop once `call` has gone. */
  private async checkTargetReady(force: boolean, call: Caller | undefined): Promise<void> {
    const target = this.store("target");
    const leftovers = (await target.namespaces(call)).filter((ns) => ns !== CONTROL_NAMESPACE);
    if (leftovers.length > 0) {
      if (!force) {
        throw new DecantError("failed_precondition", `the target already holds items in namespaces ${leftovers.slice(0, 5).join(", ")}${leftovers.length > 5 ? ", …" : ""}; a migration starts on an empty target (force clears it)`);
      }
      for (const ns of leftovers) await target.dropNamespace(ns, call);
      this.logger.warn("cleared the target before starting the migration (forced)", { namespaces: leftovers.length });
    }
    await this.checkValuesFit(target, call);
    await this.checkVersionsFit(target, call);
  }

  /**
   * The target's limit is lowest for the longest key; when even that holds anything the current
   * store can, there is nothing to look for. Otherwise the current store lists the values above
   * it (sizes only, filtered in the store), and each is checked for its own key.
   */
  private async checkValuesFit(target: Store, call: Caller | undefined): Promise<void> {
    const lowest = target.capabilities.maxValueBytes("k".repeat(MAX_KEY_BYTES));
    if (lowest >= this.current.capabilities.maxValueBytes("")) return;
    const tooBig: string[] = [];
    for (const ns of await this.current.namespaces(call)) {
      if (ns === CONTROL_NAMESPACE) continue;
      let cursor: string | undefined;
      do {
        const page = await this.current.largeValues(ns, { minBytes: lowest, limit: 500, cursor }, call);
        for (const { key, bytes } of page.items) {
          if (bytes > target.capabilities.maxValueBytes(key)) tooBig.push(`${ns}/${key} (${bytes} bytes)`);
        }
        cursor = page.cursor;
      } while (cursor !== undefined && tooBig.length < 20);
    }
    if (tooBig.length > 0) {
      throw new DecantError("failed_precondition", `items too large for the ${target.kind} target: ${tooBig.slice(0, 10).join(", ")}${tooBig.length > 10 ? ", …" : ""}; shrink or delete them first`);
    }
  }

  /**
   * Finding 10: a target with a smaller version range than the current store (SQL's signed
   * BIGINT) must not meet a version it cannot hold mid-write, after the primary applied it.
   * Versions grow by one per write, so a wide margin below the target's limit is kept.
   */
  private async checkVersionsFit(target: Store, call: Caller | undefined): Promise<void> {
    const targetMax = target.capabilities.maxVersion ?? MAX_U64;
    if (targetMax >= (this.current.capabilities.maxVersion ?? MAX_U64)) return;
    const limit = targetMax - VERSION_HEADROOM;
    const over: string[] = [];
    for (const ns of await this.current.namespaces(call)) {
      if (ns === CONTROL_NAMESPACE) continue;
      let cursor: string | undefined;
      do {
        const page = await this.current.scanRaw(ns, { limit: 1000, cursor }, call);
        for (const item of page.items) if (item.version > limit) over.push(`${ns}/${item.key} (version ${item.version})`);
        cursor = page.cursor;
      } while (cursor !== undefined && over.length < 10);
    }
    if (over.length > 0) {
      throw new DecantError("failed_precondition", `the ${target.kind} target holds versions up to ${target.capabilities.maxVersion}, and these items are too close to it or above: ${over.join(", ")}; this pair of stores cannot be migrated`);
    }
  }

  /** Rule 6 / step 12: a verification of this attempt, in this SHADOW_READ, found the stores equal, nothing failed since. */
  private async checkVerified(rec: PhaseRecord): Promise<void> {
    const bf = await this.control.read<BackfillRecord>(BACKFILL_KEY);
    if (!bf || bf.value.attempt !== rec.attempt || bf.value.state !== "done") throw new DecantError("failed_precondition", "the backfill of this migration has not finished: READ_TARGET needs it done (or force)");
    const v = await this.control.read<VerifyRecord>(VERIFY_KEY);
    if (!v || !v.value.report.done || v.value.attempt !== rec.attempt) throw new DecantError("failed_precondition", "run Verify first: READ_TARGET needs a verification of this migration that found the stores equal (or force)");
    if (v.value.epoch !== rec.epoch) throw new DecantError("failed_precondition", "the last verification ran before SHADOW_READ; verify again now that every write fails without its target copy (or force)");
    if (v.value.namespace) throw new DecantError("failed_precondition", `the last verification covered only namespace ${v.value.namespace}; verify all namespaces (or force)`);
    const r = v.value.report;
    if (r.missing + r.stale + r.extra > 0) throw new DecantError("failed_precondition", `the last verification found differences (missing ${r.missing}, stale ${r.stale}, extra ${r.extra}); repair and verify again (or force)`);
    const failedSince = (await this.control.list<Heartbeat>(HEARTBEAT_PREFIX)).filter((h) => h.value.secondaryFailures > (v.value.failures?.[h.value.id] ?? 0));
    if (failedSince.length > 0) throw new DecantError("failed_precondition", `secondary writes failed on ${failedSince.map((h) => h.value.id).join(", ")} since the last verification started; verify again (or force)`);
    const depth = await this.journalDepth();
    if (depth > 0) throw new DecantError("failed_precondition", `the repair journal holds ${depth} keys; wait for it to drain and verify again (or force)`);
  }

  /** Every replica's failure count now, for a verification to compare against later. */
  async failureCounts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const h of await this.control.list<Heartbeat>(HEARTBEAT_PREFIX)) counts[h.value.id] = h.value.secondaryFailures;
    return counts;
  }

  /**
   * A store keeps its fence when its control record is made anew (another control store, a
   * record removed by hand): epochs would restart below it and every primary write be refused.
   * The record's epoch is moved above every fence first.
   */
  private async epochAboveFences(): Promise<void> {
    let floor = 0;
    for (const store of [this.current, this.target]) {
      if (store?.capabilities.fencing && store.raiseFence) floor = Math.max(floor, await store.raiseFence(0));
    }
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    if (!rec || rec.value.epoch >= floor) return;
    if ((await this.control.compareAndSet<PhaseRecord>(PHASE_KEY, { ...rec.value, epoch: floor, changedAt: Date.now(), changedBy: this.replicaId }, rec.version)) !== false) {
      this.logger.warn(`the control record's epoch ${rec.value.epoch} was below a store's write fence (${floor}); moved it to ${floor}`);
    }
  }

  /** A replica restarted under the same id keeps counting its failures (step 9). */
  private async restoreFailureCount(): Promise<void> {
    const mine = await this.control.read<Heartbeat>(heartbeatKey(this.replicaId));
    if (mine) {
      this.secondaryFailures = mine.value.secondaryFailures;
      this.lastSecondaryFailureAt = mine.value.lastSecondaryFailureAt;
    }
  }

  /** Rule 9 / finding 9 (binding.ts): the current store names the control store that coordinates it. */
  private async checkBinding(): Promise<void> {
    await checkBinding(this.current, "current", this.control);
    this.controlId = await controlIdentity(this.control);
  }

  /** Every third of the replica TTL: shows this replica runs, and stops writes if the store was re-bound under it. */
  private async touchBinding(): Promise<void> {
    if (!this.bound || this.controlId === undefined || now() - this.touchedAt < this.timings.replicaTtlMs / 3) return;
    this.touchedAt = now();
    // A touch that fails (the store is down) is retried next time; it must not stop the rest of housekeeping.
    const refused = await touchBinding(this.current, "current", this.control, this.controlId, this.replicaId).catch((err: unknown) => {
      this.logger.debug("could not touch the current store's binding; will retry", { error: describeError(err) });
      return undefined;
    });
    if (refused && !this.fatal) this.failClosed(refused.message);
  }

  /** The binding check of a sidecar that started while its stores were down. */
  private async bindLate(): Promise<void> {
    try {
      await this.checkBinding();
      this.bound = true;
    } catch (err) {
      if (err instanceof DecantError && err.kind === "failed_precondition") this.failClosed(err.message);
      throw err;
    }
  }

  private checkMigrationId(rec: PhaseRecord): void {
    if (this.migrationId && rec.migrationId && rec.migrationId !== this.migrationId) {
      throw new DecantError("failed_precondition", `the control record belongs to migration ${JSON.stringify(rec.migrationId)}, but this sidecar is configured for ${JSON.stringify(this.migrationId)} (migration.id / DECANT_MIGRATION_ID)`);
    }
  }

  /** The raw item of a key on one store, for checking what a refused applyIfNewer met. */
  async rawOn(role: Role, ns: string, key: string): Promise<RawItem | null> {
    return this.store(role).getRaw(ns, key);
  }
}

const MAX_U64 = 2n ** 64n - 1n;
const VERSION_HEADROOM = 2n ** 32n;
