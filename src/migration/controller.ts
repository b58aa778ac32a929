// One sidecar's view of the migration: it watches the control record, acknowledges phase
// changes with heartbeats, fails closed when it cannot renew its view, holds writes during a
// fence, drains the repair journal, and runs the backfill when it holds the lease.
import { DecantError, describe as describeError, unavailable } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, MAX_KEY_BYTES } from "../protocol/types.js";
import type { Logger } from "../log.js";
import type { MigrationMetrics } from "../metrics/migration-metrics.js";
import { checkValueSize } from "../backends/common.js";
import { BACKFILL_KEY, ControlStore, HEARTBEAT_PREFIX, JOURNAL_PREFIX, PHASE_KEY, VERIFY_KEY, heartbeatKey, journalKey, type Heartbeat, type JournalEntry, type PhaseRecord } from "./control.js";
import { ROLES, movesPrimary, transitionError, type Phase, type Role } from "./phases.js";
import { Backfill, type BackfillRecord } from "./backfill.js";
import type { VerifyRecord } from "./verify.js";

export interface Timings {
  /** How often a replica re-reads the control record and heartbeats. */
  heartbeatMs: number;
  /** A replica that could not renew its view for this long refuses writes (rule 2). */
  leaseMs: number;
  /** A replica whose heartbeat is older than this is no longer counted as live. */
  replicaTtlMs: number;
  /** How long a write waits for a fence to lift before UNAVAILABLE. */
  fenceHoldMs: number;
  /** How long SetPhase waits for every replica to acknowledge a fence. */
  fenceTimeoutMs: number;
  /** The backfill runner's lease; another replica takes over after it lapses. */
  backfillLeaseMs: number;
}

export const DEFAULT_TIMINGS: Timings = { heartbeatMs: 1000, leaseMs: 5000, replicaTtlMs: 10_000, fenceHoldMs: 5000, fenceTimeoutMs: 15_000, backfillLeaseMs: 10_000 };

export interface ControllerOptions {
  current: Store;
  target?: Store;
  control: Store;
  replicaId: string;
  timings?: Partial<Timings>;
  metrics: MigrationMetrics;
  logger: Logger;
}

export interface ReplicaStatus {
  id: string;
  phase: Phase;
  epoch: number;
  ageSeconds: number;
  live: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class MigrationController {
  readonly current: Store;
  readonly target?: Store;
  readonly control: ControlStore;
  readonly replicaId: string;
  readonly timings: Timings;
  readonly metrics: MigrationMetrics;
  readonly logger: Logger;
  readonly backfill: Backfill;

  /** The record this replica last read, and when it last renewed its view. */
  private record: PhaseRecord = { phase: "SINGLE", epoch: 0, fence: false, changedAt: 0, changedBy: "" };
  private renewedAt = 0;
  private ackedEpoch = -1;
  private inflightWrites = 0;
  private secondaryFailures = 0;
  private lastSecondaryFailureAt = 0;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private repairing = false;

  constructor(options: ControllerOptions) {
    this.current = options.current;
    this.target = options.target;
    this.control = new ControlStore(options.control);
    this.replicaId = options.replicaId;
    // Only the timings given: spreading { heartbeatMs: undefined } over the defaults would
    // replace them with undefined (a heartbeat every millisecond, a lease that never expires).
    const given = Object.fromEntries(Object.entries(options.timings ?? {}).filter(([, v]) => v !== undefined));
    this.timings = { ...DEFAULT_TIMINGS, ...given };
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.backfill = new Backfill(this);
  }

  get phase(): Phase {
    return this.record.phase;
  }

  get epoch(): number {
    return this.record.epoch;
  }

  store(role: Role): Store {
    if (role === "current") return this.current;
    if (!this.target) throw new DecantError("failed_precondition", "no migration target is configured (set target or DECANT_TARGET)");
    return this.target;
  }

  /** Reads the record once (creating it on first start), then keeps watching. */
  async start(): Promise<void> {
    try {
      const existing = await this.control.read<PhaseRecord>(PHASE_KEY);
      if (!existing) await this.control.compareAndSet<PhaseRecord>(PHASE_KEY, { ...this.record, changedAt: Date.now(), changedBy: this.replicaId }, null);
    } catch (err) {
      // A store that is down at start is not fatal: writes are refused until the view renews.
      this.logger.warn("cannot read the control record yet; writes are refused until it can be read", { error: describeError(err) });
    }
    await this.tick();
    if (!this.canServe()) {
      this.logger.warn(`the control record says ${this.record.phase} but no target is configured: writes are refused until this sidecar is configured with the target (after COMPLETE: with the target as current)`);
    }
    this.timer = setInterval(() => void this.tick(), this.timings.heartbeatMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    await this.housekeepingRun;
    await this.backfill.stop();
  }

  /** One round: renew the view, acknowledge, heartbeat, repair, maybe take over the backfill. */
  /**
   * One round: renew the view and acknowledge with a heartbeat. Kept short, so a slow store
   * does not stretch it: housekeeping (gauges, journal repair, backfill lease) runs beside it.
   */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = (async () => {
      try {
        const readAt = Date.now(); // the view is as old as the read that produced it
        const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
        if (rec) this.adopt(rec.value);
        // Acknowledge a fence only once this replica's in-flight writes are done (rule 3), and
        // never a phase this replica cannot serve (no target configured): it stays pending.
        if ((!this.record.fence || this.inflightWrites === 0) && this.canServe()) this.ackedEpoch = this.record.epoch;
        await this.control.write<Heartbeat>(heartbeatKey(this.replicaId), {
          id: this.replicaId,
          phase: this.record.phase,
          epoch: this.ackedEpoch,
          at: Date.now(),
          secondaryFailures: this.secondaryFailures,
          lastSecondaryFailureAt: this.lastSecondaryFailureAt,
        });
        this.renewedAt = readAt;
        this.metrics.failClosed.set(0);
        if (!this.stopped) void this.housekeeping();
      } catch (err) {
        if (Date.now() - this.renewedAt > this.timings.leaseMs) this.metrics.failClosed.set(1);
        this.logger.warn("cannot renew the view of the control record", { error: describeError(err) });
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  private housekeepingRun?: Promise<void>;
  private housekeeping(): Promise<void> {
    this.housekeepingRun ??= (async () => {
      try {
        await this.refreshGauges();
        await this.repairJournal();
        if (!this.stopped) await this.backfill.maybeTakeOver();
      } catch (err) {
        this.logger.warn("migration housekeeping failed; will retry", { error: describeError(err) });
      } finally {
        this.housekeepingRun = undefined;
      }
    })();
    return this.housekeepingRun;
  }

  private adopt(rec: PhaseRecord): void {
    if (rec.epoch !== this.record.epoch) {
      this.logger.info(`phase ${rec.phase}${rec.fence ? ` (write fence before ${rec.pending})` : ""}, epoch ${rec.epoch}`);
    }
    this.record = rec;
    this.metrics.setPhase(rec.phase);
  }

  /** Without a target, only SINGLE can be served: a stale-config replica must not write alone. */
  private canServe(): boolean {
    return this.target !== undefined || this.record.phase === "SINGLE";
  }

  /** Rule 2: refuse writes when this replica's view of the phase may be stale. */
  private checkLease(): void {
    if (Date.now() - this.renewedAt > this.timings.leaseMs) {
      this.metrics.failClosed.set(1);
      throw new DecantError("unavailable", `this sidecar could not renew its view of the migration phase for over ${this.timings.leaseMs} ms; it refuses writes rather than write in a stale phase`);
    }
  }

  /**
   * Admits a write: checks the lease, waits out a fence (bounded), and counts the write as in
   * flight until `done` is called. Returns the phase the write must use.
   */
  async admitWrite(): Promise<{ phase: Phase; done: () => void }> {
    this.checkLease();
    const deadline = Date.now() + this.timings.fenceHoldMs;
    while (this.record.fence) {
      if (Date.now() > deadline) throw new DecantError("unavailable", `writes are fenced while the primary moves to ${this.record.pending}; try again`);
      await sleep(10);
      this.checkLease();
    }
    if (!this.canServe()) {
      throw new DecantError("unavailable", `the migration is in ${this.record.phase} but this sidecar has no target configured; configure the target (or, after COMPLETE, the target as current)`);
    }
    this.inflightWrites++;
    let finished = false;
    return {
      phase: this.record.phase,
      done: () => {
        if (!finished) {
          finished = true;
          this.inflightWrites--;
        }
      },
    };
  }

  /** Values must fit every configured store, so they can always be migrated (DESIGN.md §1). */
  checkValueFits(key: string, value: Buffer | null): void {
    checkValueSize(this.current, key, value);
    if (this.target) checkValueSize(this.target, key, value);
  }

  /** Rule 4: a failed secondary write goes to the shared journal; if that fails too, the request fails. */
  async recordSecondaryFailure(role: Role, ns: string, key: string, err: unknown): Promise<void> {
    this.secondaryFailures++;
    this.lastSecondaryFailureAt = Date.now();
    this.metrics.secondaryFailures.labels(role).inc();
    try {
      await this.control.write<JournalEntry>(journalKey(ns, key), { ns, key, at: Date.now() });
    } catch (journalErr) {
      throw unavailable(`${role} (and the repair journal)`, new Error(`${describeError(err)}; journal: ${describeError(journalErr)}`));
    }
  }

  /** Copies journalled keys from the primary to the secondary; any replica may do it. */
  async repairJournal(phase: Phase = this.record.phase, all = false): Promise<number> {
    if (this.repairing && !all) return 0;
    this.repairing = true;
    let repaired = 0;
    try {
      const roles = ROLES[phase];
      const entries = await this.control.list<JournalEntry>(JOURNAL_PREFIX, all ? 100_000 : 500);
      if (!roles.secondary) {
        for (const e of entries) await this.control.remove(e.key, e.version); // nothing to repair without a secondary
        return 0;
      }
      const primary = this.store(roles.primary);
      const secondary = this.store(roles.secondary);
      for (const e of entries) {
        const raw = await primary.getRaw(e.value.ns, e.value.key);
        if (raw) await secondary.applyIfNewer(e.value.ns, [raw]);
        // Only remove the entry if nobody journalled the key again meanwhile.
        if (await this.control.remove(e.key, e.version)) {
          repaired++;
          this.metrics.repaired.inc();
        }
      }
    } catch (err) {
      if (all) throw err;
      this.logger.debug?.("journal repair will retry", { error: describeError(err) });
    } finally {
      this.repairing = false;
    }
    return repaired;
  }

  async journalDepth(): Promise<number> {
    return (await this.control.list(JOURNAL_PREFIX)).length;
  }

  async replicas(): Promise<ReplicaStatus[]> {
    const now = Date.now();
    return (await this.control.list<Heartbeat>(HEARTBEAT_PREFIX)).map(({ value: h }) => ({
      id: h.id,
      phase: h.phase,
      epoch: h.epoch,
      ageSeconds: (now - h.at) / 1000,
      live: now - h.at < this.timings.replicaTtlMs,
    }));
  }

  /** A phase change is active once every live replica has acknowledged its epoch (rule 1). */
  async isActive(epoch = this.record.epoch): Promise<boolean> {
    return (await this.replicas()).filter((r) => r.live).every((r) => r.epoch >= epoch);
  }

  private async refreshGauges(): Promise<void> {
    const live = (await this.replicas()).filter((r) => r.live);
    const acked = live.filter((r) => r.epoch >= this.record.epoch).length;
    this.metrics.replicas.labels("acked").set(acked);
    this.metrics.replicas.labels("pending").set(live.length - acked);
    this.metrics.journalDepth.set(await this.journalDepth());
    const bf = await this.control.read<BackfillRecord>(BACKFILL_KEY);
    if (bf) this.backfill.publish(bf.value);
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

  /** SetPhase: validates the step and its gates, then changes the record (fenced if the primary moves). */
  async setPhase(to: Phase, force: boolean): Promise<void> {
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    if (!rec) throw new DecantError("unavailable", "the control record is missing");
    const from = rec.value;
    if (from.fence) throw new DecantError("failed_precondition", `a write fence is in progress (moving to ${from.pending}); try again shortly`);
    if (to !== "SINGLE" && !this.target) throw new DecantError("failed_precondition", `cannot move to ${to}: no migration target is configured (set target or DECANT_TARGET)`);
    const wrong = transitionError(from.phase, to);
    if (wrong) throw new DecantError("failed_precondition", wrong);

    if (from.phase === "SINGLE" && to === "DUAL_WRITE") await this.checkTargetReady(force);
    if (from.phase === "SHADOW_READ" && to === "READ_TARGET" && !force) await this.checkVerified();

    if (to === "COMPLETE") {
      // The old store is left as it was; journalled writes it missed are repaired first.
      await this.repairJournal(from.phase, true);
      const left = await this.journalDepth();
      if (left > 0) throw new DecantError("failed_precondition", `the repair journal still holds ${left} keys for the current store; wait for it to drain (is the current store reachable?)`);
    }
    if (!movesPrimary(from.phase, to)) {
      await this.commit(rec.version, { phase: to, epoch: from.epoch + 1, fence: false, changedAt: Date.now(), changedBy: this.replicaId });
    } else {
      await this.fencedSwitch(rec.version, from, to);
    }
    if (to === "SINGLE" || to === "COMPLETE") await this.repairJournal(to, true); // clears entries that no longer matter
    await this.tick();
  }

  private async commit(expected: bigint, next: PhaseRecord): Promise<bigint> {
    const v = await this.control.compareAndSet(PHASE_KEY, next, expected);
    if (v === false) throw new DecantError("failed_precondition", "the phase was changed by someone else meanwhile; read the status and try again");
    this.logger.info(`phase set to ${next.phase}${next.fence ? ` (fence before ${next.pending})` : ""}`, { epoch: next.epoch, by: this.replicaId });
    return v;
  }

  /** Rule 3: hold writes everywhere, drain the journal, then move the primary. */
  private async fencedSwitch(expected: bigint, from: PhaseRecord, to: Phase): Promise<void> {
    const fenceEpoch = from.epoch + 1;
    let version = await this.commit(expected, { phase: from.phase, epoch: fenceEpoch, fence: true, pending: to, changedAt: Date.now(), changedBy: this.replicaId });
    const deadline = Date.now() + this.timings.fenceTimeoutMs;
    let failure: string | undefined;
    try {
      await this.tick();
      for (;;) {
        if (await this.isActive(fenceEpoch)) break;
        if (Date.now() > deadline) {
          const pending = (await this.replicas()).filter((r) => r.live && r.epoch < fenceEpoch).map((r) => r.id);
          failure = `replicas ${pending.join(", ")} did not acknowledge the write fence within ${this.timings.fenceTimeoutMs} ms`;
          break;
        }
        await sleep(Math.min(50, this.timings.heartbeatMs));
      }
      if (!failure) {
        await this.repairJournal(from.phase, true);
        const left = await this.journalDepth();
        if (left > 0) failure = `the repair journal still holds ${left} keys`;
      }
    } catch (err) {
      failure = describeError(err);
    }
    const cur = await this.control.read<PhaseRecord>(PHASE_KEY);
    version = cur?.version ?? version;
    if (failure) {
      await this.commit(version, { phase: from.phase, epoch: fenceEpoch + 1, fence: false, changedAt: Date.now(), changedBy: this.replicaId });
      throw new DecantError("unavailable", `stayed in ${from.phase}: ${failure}`);
    }
    await this.commit(version, { phase: to, epoch: fenceEpoch + 1, fence: false, changedAt: Date.now(), changedBy: this.replicaId });
  }

  /** Rule 8 and §1: the target must be empty, and every stored value must fit it. */
  private async checkTargetReady(force: boolean): Promise<void> {
    const target = this.store("target");
    const leftovers = (await target.namespaces()).filter((ns) => ns !== CONTROL_NAMESPACE);
    if (leftovers.length > 0) {
      if (!force) {
        throw new DecantError("failed_precondition", `the target already holds items in namespaces ${leftovers.slice(0, 5).join(", ")}${leftovers.length > 5 ? ", …" : ""}; a migration starts on an empty target (force clears it)`);
      }
      for (const ns of leftovers) await target.dropNamespace(ns);
      this.logger.warn("cleared the target before starting the migration (forced)", { namespaces: leftovers.length });
    }
    // The target's limit is lowest for the longest key; when even that holds anything the
    // current store can, there is nothing to look for. Otherwise the current store lists the
    // values above it (sizes only, filtered in the store), and each is checked for its own key.
    const lowest = target.capabilities.maxValueBytes("k".repeat(MAX_KEY_BYTES));
    if (lowest >= this.current.capabilities.maxValueBytes("")) return;
    const tooBig: string[] = [];
    for (const ns of await this.current.namespaces()) {
      if (ns === CONTROL_NAMESPACE) continue;
      let cursor: string | undefined;
      do {
        const page = await this.current.largeValues(ns, { minBytes: lowest, limit: 500, cursor });
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

  /** Rule 6: the last verification found the stores equal, and nothing failed since it started. */
  private async checkVerified(): Promise<void> {
    const v = await this.control.read<VerifyRecord>(VERIFY_KEY);
    if (!v || !v.value.report.done) throw new DecantError("failed_precondition", "run Verify first: READ_TARGET needs a verification that found the stores equal (or force)");
    if (v.value.namespace) throw new DecantError("failed_precondition", `the last verification covered only namespace ${v.value.namespace}; verify all namespaces (or force)`);
    const r = v.value.report;
    if (r.missing + r.stale + r.extra > 0) throw new DecantError("failed_precondition", `the last verification found differences (missing ${r.missing}, stale ${r.stale}, extra ${r.extra}); repair and verify again (or force)`);
    const failedSince = (await this.control.list<Heartbeat>(HEARTBEAT_PREFIX)).filter((h) => h.value.lastSecondaryFailureAt >= v.value.startedAt);
    if (failedSince.length > 0) throw new DecantError("failed_precondition", `secondary writes failed on ${failedSince.map((h) => h.value.id).join(", ")} since the last verification started; verify again (or force)`);
    const depth = await this.journalDepth();
    if (depth > 0) throw new DecantError("failed_precondition", `the repair journal holds ${depth} keys; wait for it to drain and verify again (or force)`);
  }

  /** True while this replica's view of the phase is too old to write with (decant_fail_closed). */
  isFailClosed(): boolean {
    return Date.now() - this.renewedAt > this.timings.leaseMs;
  }
}
