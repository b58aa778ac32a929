// The backfill copies every item of the current store (tombstones included) to the target
// with its primary version, through applyIfNewer, so it can never overwrite a newer live
// write nor resurrect a deleted key (DESIGN.md §4). It is cut into segments (segments.ts), each
// with its own fenced lease and checkpoint in the control store: every replica, and every
// `decant backfill-worker`, runs up to `segments_per_replica` of them, and a lost worker's
// segments resume from their checkpoints elsewhere. Memory stays flat: it streams pages.
import { randomBytes } from "node:crypto";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { applyChunkSize, type SoftLimit } from "../protocol/batch.js";
import { DecantError, describe as describeError, isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, type RawItem, type ScanPage } from "../protocol/types.js";
import { BACKFILL_KEY } from "./control.js";
import { FIRST_PAGE_ITEMS, nextPageLimit } from "./pages.js";
import { clipToRange, cutWithoutScan, freshSegment, listSegments, removeSegments, segmentKey, type SegmentRecord } from "./segments.js";
import { LeaseLost, SegmentLeases, type Held } from "./segments-lease.js";
import { VerifySegments } from "./segments-verify.js";
import type { VerifyOptions } from "./verify.js";
import { backfillAllowed, systemClock, yieldToEventLoop, type Clock, type WorkContext } from "./work-context.js";

export type BackfillState = "idle" | "running" | "paused" | "done" | "failed";

/** The backfill's own record: what to copy and its state. Progress lives in the segments. */
export interface BackfillRecord {
  state: BackfillState;
  /** The migration attempt it belongs to (PhaseRecord.attempt). */
  attempt?: string;
  rateLimit: number;
  concurrency: number;
  pageSize: number;
  namespaces: string[];
  /** Segments planned, over every namespace. */
  segmentCount: number;
  estimatedTotal: number;
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** Why it failed (state failed), or the last failed page (it is retried). */
  error?: string;
  // Merged from the segments by Backfill.read(); not stored.
  scanned: number;
  copied: number;
  skipped: number;
  /** Time spent running, summed over segments (excludes pauses), for the average rate. */
  activeMs: number;
  /** Items/s now, summed over the running segments. */
  recentRate?: number;
  /** The workers holding segments now, comma-separated. */
  runner?: string;
  segments?: SegmentSummary;
}

export interface SegmentSummary {
  done: number;
  running: number;
  waiting: number;
  /** Running segments by worker, and each worker's items/s. */
  workers: { id: string; segments: number; itemsPerSecond: number }[];
  /** Seconds left at the merged rate (undefined while unknown). */
  etaSeconds?: number;
}

const movingRate = (previous: number | undefined, items: number, ms: number): number => {
  const rate = ms > 0 ? (items / ms) * 1000 : 0;
  return previous === undefined ? rate : previous * 0.7 + rate * 0.3;
};

/** Errors a retry cannot fix: the backfill stops in state failed and says why. */
const PERMANENT = new Set(["invalid_argument", "failed_precondition", "unimplemented", "unauthenticated"]);
export const isPermanent = (err: unknown): boolean => isDecantError(err) && PERMANENT.has(err.kind);

export const DEFAULT_SEGMENTS_PER_REPLICA = 2;
/** Writes of at least this many items where the backend allows (see Writer). */
const MIN_CHUNK = 64;
/**
 * And of at most this many bytes, rounded down to a power of two of items (256 of 1 KiB), not
 * below MIN_CHUNK: a statement is built and sent as one message (PostgreSQL's Bind), and with two
 * segments sharing the default concurrency each page went as two statements of 512 KiB, which
 * left 3-5 MB more in glibc's heap at a backfill's peak than four of 256 KiB (PERFORMANCE.md).
 */
const STATEMENT_BYTES = 512 * 1024;
const STATEMENTS: SoftLimit = { bytes: STATEMENT_BYTES, minItems: MIN_CHUNK };
/** Event-loop delay a page may cause before the segment rests: live requests and lease renewals wait that long. */
const LOOP_DELAY_BUDGET_MS = 50;
/** How often the backfill gauges are refreshed from the segment records. */
const GAUGE_EVERY_MS = 2000;

/** A handler made once: one made in copyPage would hold its page (see there). */
const ignore = (): undefined => undefined;

/** What a segment's page loop carries from one page to the next (see copyPage). */
interface PageLoop {
  /** Items to ask for next. */
  limit: number;
  /** The next page, read while this one is written (none under a rate limit). */
  prefetch: { cursor: string | undefined; page: Promise<ScanPage<RawItem>> } | undefined;
  /** Rate limit bucket. */
  tokens: number;
  lastRefill: number;
  lastPage: number;
}

/**
 * applyIfNewer in chunks with at most `concurrency` in flight; write() returns once its chunks
 * are all under way, so the caller reads the next page meanwhile. Chunks have a power-of-two
 * size, so SQL adapters run each as one statement they prepared before (see postgres.ts). No
 * chunk starts once `mayStart` says the lease is too close to its end (the fence, step S3).
 */
class Writer {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private copied = 0;
  private skipped = 0;

  constructor(
    private readonly target: Store,
    private readonly ns: string,
    private readonly concurrency: number,
    private readonly mayStart: () => boolean,
  ) {}

  async write(items: RawItem[]): Promise<void> {
    // Chunks of at least MIN_CHUNK items (within the backend's limits): a high concurrency split
    // over many segments must not turn pages into tiny statements; nor large ones (STATEMENT_BYTES).
    const chunk = applyChunkSize(items, Math.min(this.concurrency, Math.ceil(items.length / MIN_CHUNK)), this.target.capabilities.applyBatch, STATEMENTS);
    for (let at = 0; at < items.length && this.failure === undefined; at += chunk) {
      while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
      if (!this.mayStart()) {
        this.failure ??= new LeaseLost("the segment's lease ends too soon to start another write");
        break;
      }
      const part = at === 0 && chunk >= items.length ? items : items.slice(at, at + chunk);
      const done: Promise<void> = this.target
        .applyIfNewer(this.ns, part)
        .then(
          (applied) => {
            let copied = 0;
            for (let i = 0; i < applied.length; i++) if (applied[i]) copied++;
            this.copied += copied;
            this.skipped += applied.length - copied;
          },
          (err) => void (this.failure ??= err),
        )
        .finally(() => this.inFlight.delete(done));
      this.inFlight.add(done);
    }
  }

  /** Waits for every write; throws the first failure (the page is then redone from its checkpoint). */
  async finish(): Promise<{ copied: number; skipped: number }> {
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
    return { copied: this.copied, skipped: this.skipped };
  }
}

export class Backfill {
  /** This process: a replica restarted under the same id is another holder. */
  readonly run = randomBytes(6).toString("hex");
  private readonly tasks = new Map<string, Promise<void>>();
  /** Of the tasks, those planning ranges (cutRanges): they copy nothing, so they take no copy slot. */
  private readonly planning = new Set<string>();
  /** Whether the last listing showed a segment still planning (one this process may take). */
  private plansLeft = false;
  private stopRequested = false;
  private job?: BackfillRecord;
  /** Segments running anywhere (not done, held, not lapsed), as last listed: the rate is split among them. */
  private runningEverywhere = 1;
  private readonly leases: SegmentLeases;
  /** Verifications spread the same way (segments-verify.ts). */
  private readonly verifier: VerifySegments;
  private ticking?: Promise<void>;
  /** Event-loop delay monitors of segments that ended, for the next ones (see runSegment). */
  private readonly delayMonitors: IntervalHistogram[] = [];
  /** Latency of live primary writes (EWMA, ms), fed by the write path, for throttling. */
  private liveLatency = 0;
  private baselineLatency = 0;

  constructor(
    private readonly c: WorkContext,
    private readonly clock: Clock = systemClock,
  ) {
    this.leases = new SegmentLeases(c.control, { id: c.replicaId, run: this.run }, clock, c.timings.backfillLeaseMs, this.marginMs, c.logger);
    // A replica that leaves the backfill to workers still verifies: the Verify caller must not wait on nobody.
    // Its own lease watch: each survey forgets the segments it did not list.
    const verifyLeases = new SegmentLeases(c.control, { id: c.replicaId, run: this.run }, clock, c.timings.backfillLeaseMs, this.marginMs, c.logger);
    this.verifier = new VerifySegments(c, verifyLeases, clock, () => Math.max(1, this.perReplica), () => this.stopRequested);
  }

  private get leaseMs(): number {
    return this.c.timings.backfillLeaseMs;
  }

  /**
   * No write starts within this margin of the lease's end: a write started before it has that
   * long to land before any other worker can take the segment (bounded by the store timeout).
   */
  private get marginMs(): number {
    return Math.min(this.c.timings.storeTimeoutMs, this.leaseMs / 2);
  }

  /** Segments this process copies now (planners copy nothing). */
  private get copyingHere(): number {
    return this.tasks.size - this.planning.size;
  }

  private get perReplica(): number {
    return Math.max(0, this.c.timings.backfillSegments ?? DEFAULT_SEGMENTS_PER_REPLICA); // 0: leave them to backfill-workers
  }

  observeLiveLatency(ms: number): void {
    this.liveLatency = this.liveLatency === 0 ? ms : this.liveLatency * 0.9 + ms * 0.1;
  }

  /** The backfill record with its segments' progress merged in. */
  async read(): Promise<{ value: BackfillRecord; version: bigint } | null> {
    const job = await this.c.control.read<BackfillRecord>(BACKFILL_KEY);
    if (!job) return null;
    const segments = await listSegments(this.c.control, job.value.attempt);
    return { value: this.merge(job.value, segments.map((s) => s.value)), version: job.version };
  }

  private merge(job: BackfillRecord, segments: SegmentRecord[]): BackfillRecord {
    const now = this.clock.wall();
    const stalledAfter = Math.max(10_000, 10 * this.c.timings.heartbeatMs, 3 * this.leaseMs);
    const running = segments.filter((s) => !s.done && s.owner !== undefined);
    const workers = new Map<string, { id: string; segments: number; itemsPerSecond: number }>();
    for (const s of running) {
      const w = workers.get(s.owner!) ?? { id: s.owner!, segments: 0, itemsPerSecond: 0 };
      w.segments++;
      if (job.state === "running" && now - s.updatedAt < stalledAfter) w.itemsPerSecond += s.recentRate ?? 0;
      workers.set(s.owner!, w);
    }
    const sum = (f: (s: SegmentRecord) => number) => segments.reduce((n, s) => n + f(s), 0);
    const scanned = sum((s) => s.scanned);
    const rate = [...workers.values()].reduce((n, w) => n + w.itemsPerSecond, 0);
    const left = Math.max(0, job.estimatedTotal - scanned);
    const lastError = segments.filter((s) => s.error).sort((a, b) => b.updatedAt - a.updatedAt)[0];
    return {
      ...job,
      scanned,
      copied: sum((s) => s.copied),
      skipped: sum((s) => s.skipped),
      activeMs: Math.max(0, ...segments.map((s) => s.activeMs)),
      recentRate: rate,
      runner: [...workers.keys()].sort().join(","),
      error: job.error ?? (lastError ? `${lastError.ns} segment ${lastError.index}: ${lastError.error}` : undefined),
      segments: {
        done: segments.filter((s) => s.done).length,
        running: running.length,
        // Of segmentCount: ranges still to be found by a planner are waiting too.
        waiting: Math.max(0, job.segmentCount - running.length - segments.filter((s) => s.done).length),
        // Code-unit order, as `runner`: localeCompare would load ICU's collation data (~3 MB of RSS).
        workers: [...workers.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
        etaSeconds: job.state === "done" ? 0 : rate > 0 ? left / rate : undefined,
      },
    };
  }

  /** StartBackfill: only once DUAL_WRITE (or later, before the primary moves) is active everywhere. */
  async start(rateLimit: number, concurrency: number, pageSize = 1024): Promise<void> {
    const phase = this.c.phase;
    if (!backfillAllowed(phase) || !this.c.target) {
      throw new DecantError("failed_precondition", `the backfill runs in DUAL_WRITE (now ${phase}); set the phase to DUAL_WRITE first`);
    }
    if (!(await this.c.isActive())) throw new DecantError("failed_precondition", `${phase} is not active yet: not every live replica has acknowledged it; try again in a few seconds`);
    if (!Number.isFinite(rateLimit) || rateLimit < 0) throw new DecantError("invalid_argument", "rate_limit: must be 0 (unlimited) or a positive number of items per second", { field: "rate_limit" });
    if (!Number.isInteger(concurrency) || concurrency < 0 || concurrency > 64) throw new DecantError("invalid_argument", "concurrency: must be 1 to 64 (0 = default 4)", { field: "concurrency" });
    const existing = await this.c.control.read<BackfillRecord>(BACKFILL_KEY);
    if (existing && (existing.value.state === "running" || existing.value.state === "paused")) {
      throw new DecantError("failed_precondition", `a backfill is already ${existing.value.state}; pause/resume it instead`);
    }
    await removeSegments(this.c.control); // of an earlier run of this attempt
    const namespaces = (await this.c.current.namespaces()).filter((ns) => ns !== CONTROL_NAMESPACE).sort();
    let estimatedTotal = 0;
    let index = 0;
    const now = this.clock.wall();
    for (const ns of namespaces) {
      const estimate = await this.c.current.estimateCount(ns);
      estimatedTotal += estimate;
      const cut = cutWithoutScan(this.c.current, estimate);
      if ("ranges" in cut) {
        // Key ranges are found as the backfill runs: the namespace's last segment plans them (cutRanges).
        const last = index + cut.ranges - 1;
        await this.c.control.write(segmentKey(this.c.attempt, last), { ...freshSegment(this.c.attempt, last, ns, {}, now), plan: { next: index, perSegment: cut.perSegment, since: 0 } });
        index = last + 1;
        continue;
      }
      for (const part of cut.parts) {
        await this.c.control.write(segmentKey(this.c.attempt, index), freshSegment(this.c.attempt, index, ns, part, now));
        index++;
      }
    }
    const record: BackfillRecord = {
      state: "running",
      attempt: this.c.attempt,
      rateLimit,
      concurrency: concurrency || 4,
      pageSize,
      namespaces,
      segmentCount: index,
      scanned: 0,
      copied: 0,
      skipped: 0,
      estimatedTotal,
      startedAt: now,
      activeMs: 0,
      updatedAt: now,
    };
    const ok = await this.c.control.compareAndSet(BACKFILL_KEY, strip(record), existing?.version ?? null);
    if (ok === false) throw new DecantError("failed_precondition", "the backfill record changed meanwhile; try again");
    this.c.logger.info("backfill started", { namespaces: namespaces.length, segments: index, estimated_total: estimatedTotal, rate_limit: rateLimit, concurrency: record.concurrency });
    await this.maybeTakeOver();
  }

  async setPaused(paused: boolean): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const rec = await this.c.control.read<BackfillRecord>(BACKFILL_KEY);
      if (!rec) throw new DecantError("failed_precondition", "no backfill has been started");
      const want: BackfillState = paused ? "paused" : "running";
      if (rec.value.state === want) return;
      if (rec.value.state !== (paused ? "running" : "paused")) throw new DecantError("failed_precondition", `the backfill is ${rec.value.state}; only a ${paused ? "running" : "paused"} backfill can be ${paused ? "paused" : "resumed"}`);
      if (!paused && (!backfillAllowed(this.c.phase) || !this.c.target || rec.value.attempt !== this.c.attempt)) {
        throw new DecantError("failed_precondition", `the backfill cannot resume in ${this.c.phase}${rec.value.attempt !== this.c.attempt ? " (it belongs to an earlier migration attempt)" : ""}; it runs in DUAL_WRITE, SHADOW_READ or READ_TARGET on a sidecar with the target configured`);
      }
      const next: BackfillRecord = { ...rec.value, state: want, updatedAt: this.clock.wall() };
      if ((await this.c.control.compareAndSet(BACKFILL_KEY, next, rec.version)) !== false) {
        this.job = next;
        this.c.logger.info(`backfill ${paused ? "paused" : "resumed"}`);
        if (paused) await Promise.all(this.tasks.values()); // each stops after its page, at a checkpoint
        else await this.maybeTakeOver();
        return;
      }
      await this.clock.sleep(20);
    }
    throw new DecantError("unavailable", "could not update the backfill record (it keeps changing)");
  }

  /**
   * Called every tick: lists the segments, notes lapsed leases, takes up to segments_per_replica
   * segments this process can lease, and marks the backfill done once every segment is.
   */
  maybeTakeOver(): Promise<void> {
    // No caller is passed into it: a StartBackfill/ResumeBackfill caller that goes must not stop the segments it started.
    this.ticking ??= Promise.all([this.takeOver(), this.verifier.takeOver()])
      .then(() => undefined)
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  /** Verify spreads its work over every replica's segment loop (see verify()). */
  spreadVerify: NonNullable<VerifyOptions["spread"]> = (k, namespaces, onProgress) => this.verifier.run(k, namespaces, onProgress);

  private async takeOver(): Promise<void> {
    if (this.stopRequested || !this.c.target || !backfillAllowed(this.c.phase)) return;
    const job = await this.c.control.read<BackfillRecord>(BACKFILL_KEY);
    this.job = job?.value;
    if (!job || job.value.state !== "running" || job.value.attempt !== this.c.attempt) return;
    if (job.value.segmentCount === undefined) return; // written by an earlier Decant (one runner): StartBackfill again
    // Nothing to take and no rate to split: spare the control store a listing (it also serves the phase renewals).
    if (this.copyingHere >= this.perReplica && !this.plansLeft && job.value.rateLimit === 0 && this.tasks.size > 0) return;
    const segments = await listSegments(this.c.control, job.value.attempt);
    this.plansLeft = segments.some((s) => s.value.plan !== undefined);
    if (segments.length >= job.value.segmentCount && segments.every((s) => s.value.done)) return this.finish(job.value, job.version, segments.map((s) => s.value));
    const { free, elsewhere } = this.leases.survey(segments, new Set(this.tasks.keys()));
    // Segments copying anywhere, which share the rate and the concurrency (a planner copies nothing).
    const takeable = new Set(free);
    const planningElsewhere = segments.filter((s) => s.value.plan !== undefined && !s.value.done && !this.tasks.has(s.key) && !takeable.has(s)).length;
    this.runningEverywhere = Math.max(1, elsewhere - planningElsewhere + this.copyingHere);
    for (const s of free) {
      if (this.stopRequested) break;
      // One planner at a time beside the copy slots: a plan hands out work, it must not wait for a slot.
      const plans = s.value.plan !== undefined;
      if (plans ? this.planning.size > 0 || this.perReplica === 0 : this.copyingHere >= this.perReplica) continue;
      const held = await this.leases.take(s, "backfill");
      if (!held) continue; // another worker took it first
      if (plans) this.planning.add(s.key);
      else this.runningEverywhere++;
      const task = this.runSegment(held, job.value).finally(() => {
        this.tasks.delete(s.key);
        this.planning.delete(s.key);
        if (!this.stopRequested) void this.maybeTakeOver().catch(() => undefined); // the next segment now, not a heartbeat later
      });
      this.tasks.set(s.key, task);
    }
  }

  /** Every segment is done: the backfill is (whoever sees it first records it). */
  private async finish(job: BackfillRecord, version: bigint, segments: SegmentRecord[]): Promise<void> {
    const merged = this.merge(job, segments);
    const rec: BackfillRecord = { ...job, state: "done", updatedAt: this.clock.wall(), finishedAt: this.clock.wall(), error: undefined };
    if ((await this.c.control.compareAndSet(BACKFILL_KEY, strip(rec), version)) === false) return;
    this.job = rec;
    this.publish({ ...merged, state: "done" });
    this.c.logger.info("backfill done", { scanned: merged.scanned, copied: merged.copied, skipped_newer: merged.skipped, segments: segments.length });
  }

  /** A rollback to SINGLE ends the attempt: its backfill stops and its records go. */
  async abandon(): Promise<void> {
    await this.c.control.remove(BACKFILL_KEY);
    await removeSegments(this.c.control);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.ticking;
    await Promise.all(this.tasks.values());
    await this.verifier.stop();
  }

  /** Segments this process runs now (the backfill-worker exits when it has none and none are left). */
  get held(): number {
    return this.tasks.size;
  }

  /** The backfill record as of the last tick. */
  get lastSeen(): BackfillRecord | undefined {
    return this.job;
  }

  private async runSegment(h: Held<SegmentRecord>, job: BackfillRecord): Promise<void> {
    const target = this.c.store("target");
    // A page into a slow target can outlast the lease: renew it meanwhile.
    const stopRenewing = this.leases.renewing(h);
    // A busy (or CPU-starved) sidecar must not fail closed: when a page delayed the event loop
    // past the budget, the segment rests as long as the worst delay, so renewals and live
    // requests keep their turn.
    // Monitors are reused across segments: each holds a native histogram of ~100–370 KB of malloc'd
    // memory, freed only when V8 collects it, and a backfill runs hundreds of segments.
    const loopDelay = this.delayMonitors.pop() ?? monitorEventLoopDelay({ resolution: 10 });
    loopDelay.reset();
    loopDelay.enable();
    // What a segment carries from page to page. The page itself lives only in copyPage.
    const pages: PageLoop = { limit: Math.min(FIRST_PAGE_ITEMS, job.pageSize), prefetch: undefined, tokens: 0, lastRefill: this.clock.monotonic(), lastPage: this.clock.monotonic() };
    this.baselineLatency = this.liveLatency;
    try {
      if (h.rec.plan) {
        // Planned or stopped, the planner gives its segment back: copying it takes a copy slot.
        await this.cutRanges(h);
        if (!h.lost) await this.leases.release(h);
        return;
      }
      while (!h.rec.done) {
        if (this.stops(h)) break;
        if (!this.leases.holds(h)) throw new LeaseLost("the segment's lease lapsed (this process was paused or the control store was slow)");
        if (!(await this.copyPage(h, job, target, pages))) return;
        await yieldToEventLoop();
        const worstDelayMs = loopDelay.max / 1e6 - 10; // less the sampling resolution
        loopDelay.reset();
        if (worstDelayMs > (this.c.timings.loopDelayBudgetMs ?? LOOP_DELAY_BUDGET_MS)) await this.clock.sleep(Math.min(1000, worstDelayMs));
      }
      if (!h.rec.done) await this.leases.release(h);
    } catch (err) {
      await this.failed(h, err);
    } finally {
      stopRenewing();
      loopDelay.disable();
      this.delayMonitors.push(loopDelay);
    }
  }

  /**
   * One page of a segment: read it (or take the one read ahead), write it, checkpoint it. Returns
   * false once the segment is lost (the checkpoint was not saved).
   *
   * A function of its own, so that nothing of the page outlives it. runSegment's own frame lives
   * as long as its segment, so V8 soon moves it to the old generation, and at every await it
   * stores all its registers there, dead ones included: a page, or a temporary that holds it (the
   * page's settled promise, the checkpoint closure), left in a register from one iteration stayed
   * reachable from that old frame through the next page's read and write. Every scavenge
   * meanwhile treated it as a root. With two segments at a time (each page takes about twice as
   * long at the same rate) that outlived two scavenges often: such pages were promoted, with the
   * socket chunks their values are views into, which only a mark-compact frees; their external
   * memory brought mark-compacts, each of which promotes every live page too. This frame is made
   * per page and dies young with it (measured: 9.6-16 MB promoted and 4-12 mark-compacts per
   * backfill of 200k items, now ~5 MB and one, as with one segment at a time).
   */
  private async copyPage(h: Held<SegmentRecord>, job: BackfillRecord, target: Store, s: PageLoop): Promise<boolean> {
    const ns = h.rec.ns;
    const read = (cursor: string | undefined) =>
      this.c.current.scanRaw(ns, { limit: s.limit, cursor, ...(h.rec.hash ? { segment: h.rec.hash.segment, totalSegments: h.rec.hash.total } : {}) });
    const rate = job.rateLimit > 0 ? job.rateLimit / this.runningEverywhere : 0;
    if (rate > 0) s.limit = Math.max(1, Math.min(s.limit, Math.ceil(rate)));
    const cursor = h.rec.cursor ?? h.rec.start;
    const ahead = s.prefetch && s.prefetch.cursor === cursor ? s.prefetch.page : undefined;
    s.prefetch = undefined;
    const page = await (ahead ?? read(cursor));
    s.limit = nextPageLimit(page.items, s.limit, job.pageSize);
    const { items, ended } = clipToRange(h.rec, page.items);
    const done = ended || page.cursor === undefined;
    // Read ahead only while this process copies one segment: with more, their reads already
    // overlap each other's writes, and a page read ahead waited through two writes, long enough
    // to outlive two scavenges and be promoted with its socket chunks (measured: PERFORMANCE.md).
    if (!done && rate === 0 && this.copyingHere <= 1) {
      s.prefetch = { cursor: page.cursor, page: read(page.cursor) };
      // A failed prefetch is retried by the next page's own read. The handler is not made here: a
      // closure made in this frame would hold the page until the next one arrives.
      s.prefetch.page.catch(ignore);
    }
    // Rate limit: this segment's share of the global rate (split among the running segments).
    if (rate > 0) {
      const t = this.clock.monotonic();
      s.tokens = Math.min(rate, s.tokens + ((t - s.lastRefill) / 1000) * rate) - page.items.length;
      s.lastRefill = t;
      if (s.tokens < 0) await this.clock.sleep((-s.tokens / rate) * 1000);
    }
    if (this.baselineLatency > 0 && this.liveLatency > 3 * this.baselineLatency + 2) await this.clock.sleep(Math.min(1000, this.liveLatency * 4));
    // S3: no write starts unless the lease holds for the margin beyond now.
    const concurrency = Math.max(1, Math.floor(job.concurrency / Math.max(1, Math.min(this.runningEverywhere, job.concurrency))));
    const writer = new Writer(target, ns, concurrency, () => this.leases.holds(h));
    this.c.logger.debug("backfill page", { segment: h.rec.index, ns, token: h.rec.token, owner: this.c.replicaId, from: cursor ?? "", items: items.length, at: this.clock.wall() });
    await writer.write(items);
    const { copied, skipped } = await writer.finish();
    this.c.metrics.backfillItems.labels("copied").inc(copied);
    this.c.metrics.backfillItems.labels("skipped_newer").inc(skipped);
    const t = this.clock.monotonic();
    const ms = t - s.lastPage;
    s.lastPage = t;
    return this.leases.save(h, (r) => ({
      ...r,
      cursor: done ? r.cursor : page.cursor,
      done,
      ...(done ? { owner: undefined, run: undefined } : {}),
      scanned: r.scanned + items.length,
      copied: r.copied + copied,
      skipped: r.skipped + skipped,
      activeMs: r.activeMs + ms,
      recentRate: movingRate(r.recentRate, items.length, ms),
      updatedAt: this.clock.wall(),
      error: undefined,
    }));
  }

  /** Whether a segment's work stops before its next page: stopping, paused, the phase or the attempt moved on. */
  private stops(h: Held<SegmentRecord>): boolean {
    return this.stopRequested || this.job?.state !== "running" || !backfillAllowed(this.c.phase) || h.rec.attempt !== this.c.attempt;
  }

  /**
   * The planner's part of a namespace's last segment (RangePlan): reads ahead without copying and
   * writes a segment for each range of about perSegment items, until the namespace has all its
   * segments or ends; this segment is then the last range, copied like any other. Checkpointed
   * per page, so a lost planner resumes elsewhere. Returns early when the backfill stops.
   */
  private async cutRanges(h: Held<SegmentRecord>): Promise<void> {
    let limit = FIRST_PAGE_ITEMS;
    while (h.rec.plan) {
      if (this.stops(h)) return;
      const plan = h.rec.plan;
      const page = await this.c.current.scanRaw(h.rec.ns, { limit, cursor: plan.scan ?? h.rec.start, keysOnly: true });
      limit = nextPageLimit(page.items, limit, 1024);
      // S3: no record is written unless the lease holds for the margin beyond now.
      if (!this.leases.holds(h)) throw new LeaseLost("the segment's lease lapsed while it planned ranges");
      const next = { ...plan, scan: page.cursor, since: plan.since + page.items.length };
      let moved: Pick<SegmentRecord, "start" | "from"> | undefined;
      let ended = false;
      const first = page.items[0];
      if (plan.splitAt !== undefined && first) {
        const range = await this.writeRange(h.rec, plan.next, plan.splitAt, first.key);
        // An earlier planner found the namespace's end and wrote this index done: the plan ends,
        // and this segment keeps its range, which runs to the end.
        if (range === "ended") ended = true;
        else [moved, next.next] = [range, plan.next + 1];
        next.splitAt = undefined;
      }
      // Ended, or every index handed out: this segment is the last range and runs to the end.
      const finished = ended || page.cursor === undefined || next.next >= h.rec.index;
      if (!finished && next.splitAt === undefined && next.since >= plan.perSegment) {
        [next.splitAt, next.since] = [page.cursor, 0];
      }
      if (finished) await this.fillUnused(h.rec, next.next);
      const saved = await this.leases.save(h, (r) => ({ ...r, ...moved, plan: finished ? undefined : next, updatedAt: this.clock.wall() }));
      if (!saved) throw new LeaseLost("the segment was taken over while it planned ranges");
      // A new segment: taken now if this process copies nothing yet, else left a heartbeat for the others.
      if (moved && this.tasks.size === this.planning.size) void this.maybeTakeOver().catch(() => undefined);
      await yieldToEventLoop();
    }
  }

  /**
   * Writes the range segment `index`, from the planner's start to the key `end` (the first after
   * the cursor `splitAt`); returns the planner's own range from there on, or "ended" when an
   * earlier planner found the namespace's end there.
   */
  private async writeRange(planner: SegmentRecord, index: number, splitAt: string, end: string): Promise<Pick<SegmentRecord, "start" | "from"> | "ended"> {
    const key = segmentKey(planner.attempt, index);
    const seg = freshSegment(planner.attempt, index, planner.ns, { start: planner.start, from: planner.from, end }, this.clock.wall());
    if ((await this.c.control.compareAndSet(key, seg, null)) !== false) return { start: splitAt, from: end };
    const existing = (await this.c.control.read<SegmentRecord>(key))?.value;
    if (existing?.end === undefined) return "ended"; // written done as unused (fillUnused)
    // An earlier planner from this very checkpoint wrote it and was lost before saving: its cut
    // stands, and its end may lie before this cursor, so this range starts where it did, from
    // that end. Anything else (a stale planner of an earlier run) is not trusted: this range
    // stays whole, so its keys may be copied twice but none is left out.
    if (existing.from === planner.from && existing.start === planner.start) return { start: planner.start, from: existing.end };
    return { start: planner.start, from: planner.from };
  }

  /** The namespace held fewer items than estimated: the indices left over are written done, so the count adds up. */
  private async fillUnused(planner: SegmentRecord, from: number): Promise<void> {
    for (let i = from; i < planner.index; i++) {
      await this.c.control.compareAndSet(segmentKey(planner.attempt, i), { ...freshSegment(planner.attempt, i, planner.ns, {}, this.clock.wall()), done: true }, null);
    }
  }

  private async failed(h: Held<SegmentRecord>, err: unknown): Promise<void> {
    if (err instanceof LeaseLost || h.lost) {
      h.lost = true;
      this.c.logger.warn(`backfill segment ${h.rec.index} (${h.rec.ns}) stopped: ${err instanceof Error ? err.message : String(err)}`, { token: h.rec.token });
      return;
    }
    const message = describeError(err);
    if (isPermanent(err)) {
      // A retry cannot fix it: the whole backfill fails and says why.
      const reason = `${h.rec.ns} segment ${h.rec.index}: ${message}`;
      this.c.logger.error("the backfill failed", { error: reason });
      await this.leases.release(h, message);
      for (let i = 0; i < 5; i++) {
        const job = await this.c.control.read<BackfillRecord>(BACKFILL_KEY).catch(() => null);
        if (!job || job.value.state !== "running") return;
        if ((await this.c.control.compareAndSet(BACKFILL_KEY, { ...job.value, state: "failed", error: reason, updatedAt: this.clock.wall() }, job.version).catch(() => false)) !== false) return;
      }
      return;
    }
    this.c.logger.error("backfill page failed; will retry from the checkpoint", { segment: h.rec.index, ns: h.rec.ns, error: message });
    await this.leases.release(h, message);
    await this.clock.sleep(this.c.timings.heartbeatMs);
  }

  /** Items/s now: the merged recent rate while segments keep checkpointing, 0 once they stop. */
  currentRate(rec: BackfillRecord): number {
    return rec.state === "running" ? (rec.recentRate ?? 0) : 0;
  }

  /** Refreshes the backfill gauges from the records. */
  async refreshGauges(): Promise<void> {
    // The gauges need not follow every heartbeat: listing every segment that often loads the control store.
    const now = this.clock.monotonic();
    if (now - this.gaugesAt < Math.max(this.c.timings.heartbeatMs, GAUGE_EVERY_MS)) return;
    this.gaugesAt = now;
    const rec = await this.read();
    if (rec) this.publish(rec.value);
  }

  private gaugesAt = -Infinity;

  publish(rec: BackfillRecord): void {
    const m = this.c.metrics;
    m.backfillProgress.set(rec.estimatedTotal > 0 ? Math.min(1, rec.scanned / rec.estimatedTotal) : rec.state === "done" ? 1 : 0);
    m.backfillRate.set(this.currentRate(rec));
    m.backfillRunning.set(rec.state === "running" ? 1 : 0);
    const seg = rec.segments;
    for (const state of ["done", "running", "waiting"] as const) m.backfillSegments.labels(state).set(seg?.[state] ?? 0);
    m.backfillEta.set(rec.state === "done" ? 0 : (seg?.etaSeconds ?? Number.NaN));
    m.backfillWorkerRate.reset();
    // This replica is a worker too when it can take segments: 0 while it runs none, so the
    // per-worker panel has a line for every sidecar, not only for the moments a segment runs.
    if (this.c.target && this.perReplica > 0) m.backfillWorkerRate.labels(this.c.replicaId).set(0);
    for (const w of seg?.workers ?? []) m.backfillWorkerRate.labels(w.id).set(w.itemsPerSecond);
  }
}

/** The stored backfill record: the merged fields are computed, not kept. */
function strip(rec: BackfillRecord): BackfillRecord {
  const { scanned: _s, copied: _c, skipped: _k, activeMs: _a, recentRate: _r, runner: _n, segments: _g, ...stored } = rec;
  return { ...stored, scanned: 0, copied: 0, skipped: 0, activeMs: 0 };
}
