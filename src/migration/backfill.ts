// The backfill copies every item of the current store (tombstones included) to the target
// with its primary version, through applyIfNewer, so it can never overwrite a newer live
// write nor resurrect a deleted key (DESIGN.md §4). One runner across replicas holds a lease
// in the control store; the cursor is checkpointed after every round, so a killed runner's
// successor resumes where it stopped. Memory stays flat: it streams pages.
import { DecantError, describe as describeError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, type RawItem, type ScanPage } from "../protocol/types.js";
import { BACKFILL_KEY } from "./control.js";
import { FIRST_PAGE_ITEMS, nextPageLimit } from "./pages.js";
import { backfillAllowed, systemClock, yieldToEventLoop, type Clock, type WorkContext } from "./work-context.js";

export type BackfillState = "idle" | "running" | "paused" | "done" | "failed";

export interface BackfillRecord {
  state: BackfillState;
  /** The migration attempt it belongs to (PhaseRecord.attempt). */
  attempt?: string;
  runner?: string;
  leaseUntil?: number;
  rateLimit: number;
  concurrency: number;
  pageSize: number;
  namespaces: string[];
  nsIndex: number;
  /** One cursor per segment of the namespace being copied; null = not started, "" = done. */
  segments: (string | null)[];
  scanned: number;
  copied: number;
  skipped: number;
  estimatedTotal: number;
  startedAt: number;
  /** Time spent running (excludes pauses), for the average rate. */
  activeMs: number;
  /** Items/s over the last rounds (moving average), so a stall shows as a falling rate. */
  recentRate?: number;
  updatedAt: number;
  error?: string;
}

const movingRate = (previous: number | undefined, items: number, ms: number): number => {
  const rate = ms > 0 ? (items / ms) * 1000 : 0;
  return previous === undefined ? rate : previous * 0.7 + rate * 0.3;
};

/** Pages of one stream per round (one checkpoint per round): fewer waits for the slowest write. */
const PAGES_PER_ROUND = 4;

/**
 * applyIfNewer in chunks with at most `concurrency` in flight; write() returns once its chunks
 * are all under way, so the caller reads the next page meanwhile. Chunks have a power-of-two
 * size, so SQL adapters run each as one statement they prepared before (see postgres.ts).
 */
class Writer {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private copied = 0;
  private skipped = 0;

  constructor(private readonly target: Store, private readonly ns: string, private readonly concurrency: number) {}

  async write(items: RawItem[]): Promise<void> {
    const chunk = 2 ** Math.max(0, Math.floor(Math.log2(Math.ceil(items.length / this.concurrency))));
    for (let at = 0; at < items.length && this.failure === undefined; at += chunk) {
      while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
      const part = items.slice(at, at + chunk);
      const done: Promise<void> = this.target.applyIfNewer(this.ns, part).then(
        (applied) => {
          for (const a of applied) a ? this.copied++ : this.skipped++;
        },
        (err) => void (this.failure ??= err),
      ).finally(() => this.inFlight.delete(done));
      this.inFlight.add(done);
    }
  }

  /** A write failed: the round is lost, so reading more of it is pointless. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Waits for every write; throws the first failure (the round is then redone from its checkpoint). */
  async finish(): Promise<{ copied: number; skipped: number }> {
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
    return { copied: this.copied, skipped: this.skipped };
  }
}

export class Backfill {
  private running?: Promise<void>;
  private stopRequested = false;
  /** Latency of live primary writes (EWMA, ms), fed by the write path, for throttling. */
  private liveLatency = 0;
  private baselineLatency = 0;

  constructor(
    private readonly c: WorkContext,
    private readonly clock: Clock = systemClock,
  ) {}

  observeLiveLatency(ms: number): void {
    this.liveLatency = this.liveLatency === 0 ? ms : this.liveLatency * 0.9 + ms * 0.1;
  }

  async read(): Promise<{ value: BackfillRecord; version: bigint } | null> {
    return this.c.control.read<BackfillRecord>(BACKFILL_KEY);
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
    const existing = await this.read();
    if (existing && (existing.value.state === "running" || existing.value.state === "paused")) {
      throw new DecantError("failed_precondition", `a backfill is already ${existing.value.state}${existing.value.runner ? ` on ${existing.value.runner}` : ""}; pause/resume it instead`);
    }
    const namespaces = (await this.c.current.namespaces()).filter((ns) => ns !== CONTROL_NAMESPACE).sort();
    let estimatedTotal = 0;
    for (const ns of namespaces) estimatedTotal += await this.c.current.estimateCount(ns);
    const record: BackfillRecord = {
      state: "running",
      attempt: this.c.attempt,
      rateLimit,
      concurrency: concurrency || 4,
      pageSize,
      namespaces,
      nsIndex: 0,
      segments: [],
      scanned: 0,
      copied: 0,
      skipped: 0,
      estimatedTotal,
      startedAt: this.clock.wall(),
      activeMs: 0,
      updatedAt: this.clock.wall(),
    };
    const ok = await this.c.control.compareAndSet(BACKFILL_KEY, record, existing?.version ?? null);
    if (ok === false) throw new DecantError("failed_precondition", "the backfill record changed meanwhile; try again");
    this.c.logger.info("backfill started", { namespaces: namespaces.length, estimated_total: estimatedTotal, rate_limit: rateLimit, concurrency: record.concurrency });
    await this.maybeTakeOver();
  }

  async setPaused(paused: boolean): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const rec = await this.read();
      if (!rec) throw new DecantError("failed_precondition", "no backfill has been started");
      const want: BackfillState = paused ? "paused" : "running";
      if (rec.value.state === want) return;
      if (rec.value.state !== (paused ? "running" : "paused")) throw new DecantError("failed_precondition", `the backfill is ${rec.value.state}; only a ${paused ? "running" : "paused"} backfill can be ${paused ? "paused" : "resumed"}`);
      if (!paused && (!backfillAllowed(this.c.phase) || !this.c.target || rec.value.attempt !== this.c.attempt)) {
        throw new DecantError("failed_precondition", `the backfill cannot resume in ${this.c.phase}${rec.value.attempt !== this.c.attempt ? " (it belongs to an earlier migration attempt)" : ""}; it runs in DUAL_WRITE, SHADOW_READ or READ_TARGET on a sidecar with the target configured`);
      }
      const next: BackfillRecord = { ...rec.value, state: want, runner: undefined, leaseUntil: undefined, updatedAt: this.clock.wall() };
      if ((await this.c.control.compareAndSet(BACKFILL_KEY, next, rec.version)) !== false) {
        this.c.logger.info(`backfill ${paused ? "paused" : "resumed"}`, { scanned: rec.value.scanned });
        if (!paused) await this.maybeTakeOver();
        return;
      }
      await this.clock.sleep(20); // the runner checkpointed meanwhile; retry on the fresh record
    }
    throw new DecantError("unavailable", "could not update the backfill record (it keeps changing)");
  }

  /**
   * Called every tick: take the lease if the backfill runs and nobody holds it — only on a
   * replica with the target, in a phase the backfill runs in, for this migration attempt.
   */
  async maybeTakeOver(): Promise<void> {
    if (this.running || this.stopRequested || !this.c.target || !backfillAllowed(this.c.phase)) return;
    const rec = await this.read();
    if (!rec || rec.value.state !== "running" || rec.value.attempt !== this.c.attempt) return;
    if (rec.value.runner && rec.value.runner !== this.c.replicaId && (rec.value.leaseUntil ?? 0) > this.clock.wall()) return;
    const mine: BackfillRecord = { ...rec.value, runner: this.c.replicaId, leaseUntil: this.clock.wall() + this.c.timings.backfillLeaseMs };
    const version = await this.c.control.compareAndSet(BACKFILL_KEY, mine, rec.version);
    if (version === false) return;
    if (rec.value.runner && rec.value.runner !== this.c.replicaId) this.c.logger.warn(`took over the backfill from ${rec.value.runner} at its checkpoint`, { scanned: rec.value.scanned });
    this.running = this.run(mine, version)
      .catch((err) => this.c.logger.error("the backfill runner stopped on an unexpected error; another round retries from the checkpoint", { error: describeError(err) }))
      .finally(() => {
        this.running = undefined;
      });
  }

  /** A rollback to SINGLE ends the attempt: its backfill stops and its record goes. */
  async abandon(): Promise<void> {
    const rec = await this.read();
    if (rec) await this.c.control.remove(BACKFILL_KEY);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.running;
  }

  private async run(start: BackfillRecord, startVersion: bigint): Promise<void> {
    let rec = start;
    let version = startVersion;
    const target = this.c.store("target");
    const current = this.c.current;
    // Ordered backends page through their key index cheaply, and their hash segments would each
    // read the whole index: one stream with the next page prefetched and parallel writes is
    // faster there. Unordered backends (DynamoDB) scale their scans by segments.
    const segmented = current.capabilities.segmentedScan && !current.capabilities.orderedScan;
    let prefetch: { ns: string; cursor: string | null; page: Promise<ScanPage<RawItem>> } | undefined;
    let pageLimit = Math.min(FIRST_PAGE_ITEMS, rec.pageSize);
    let tokens = 0;
    let lastRefill = this.clock.wall();
    let lastRound = this.clock.wall();
    this.baselineLatency = this.liveLatency;
    // A round into a slow target can outlast the lease: renew it in the background meanwhile,
    // or the other replicas would take over mid-round, again and again.
    const renewal = setInterval(() => void this.renewLease(), Math.max(50, this.c.timings.backfillLeaseMs / 3));
    try {
      while (!this.stopRequested) {
        if (!backfillAllowed(this.c.phase) || rec.attempt !== this.c.attempt) {
          this.c.logger.info(`backfill runner stopped: the migration is in ${this.c.phase}`);
          return;
        }
        if (rec.nsIndex >= rec.namespaces.length) {
          rec = { ...rec, state: "done", runner: undefined, leaseUntil: undefined, updatedAt: this.clock.wall() };
          await this.checkpoint(rec, version);
          this.c.logger.info("backfill done", { scanned: rec.scanned, copied: rec.copied, skipped_newer: rec.skipped });
          return;
        }
        const ns = rec.namespaces[rec.nsIndex]!;
        if (rec.segments.length === 0) rec = { ...rec, segments: Array(segmented ? rec.concurrency : 1).fill(null) };
        const total = rec.segments.length;

        // One round. One stream: a few pages, each read while the one before is written, with
        // `concurrency` writes in flight. Segments: every unfinished segment copies one page.
        const round = rec;
        const streamRound = async (cursor: string | null) => {
          const read = (c: string | null) => current.scanRaw(ns, { limit: pageLimit, cursor: c ?? undefined });
          const writer = new Writer(target, ns, round.concurrency);
          let scanned = 0;
          // A rate-limited backfill keeps rounds to one page, so its pauses stay short.
          for (let p = 0; p < (round.rateLimit > 0 ? 1 : PAGES_PER_ROUND) && cursor !== "" && !writer.failed; p++) {
            const ahead = prefetch && prefetch.ns === ns && prefetch.cursor === cursor ? prefetch.page : undefined;
            prefetch = undefined;
            const page = await (ahead ?? read(cursor));
            pageLimit = nextPageLimit(page.items, pageLimit, round.pageSize);
            if (page.cursor !== undefined) {
              prefetch = { ns, cursor: page.cursor, page: read(page.cursor) };
              prefetch.page.catch(() => undefined); // a failed prefetch is retried by the next round's own read
            }
            await writer.write(page.items);
            scanned += page.items.length;
            cursor = page.cursor ?? "";
          }
          const { copied, skipped } = await writer.finish();
          return { cursor, scanned, copied, skipped };
        };
        const results = segmented
          ? await Promise.all(
              rec.segments.map(async (cursor, segment) => {
                if (cursor === "") return { cursor: "", scanned: 0, copied: 0, skipped: 0 };
                const page = await current.scanRaw(ns, { limit: pageLimit, cursor: cursor ?? undefined, segment, totalSegments: total });
                pageLimit = nextPageLimit(page.items, pageLimit, round.pageSize);
                const writer = new Writer(target, ns, 1);
                await writer.write(page.items);
                return { cursor: page.cursor ?? "", scanned: page.items.length, ...(await writer.finish()) };
              }),
            )
          : [await streamRound(rec.segments[0]!)];
        const scanned = results.reduce((n, r) => n + r.scanned, 0);
        const copied = results.reduce((n, r) => n + r.copied, 0);
        const skipped = results.reduce((n, r) => n + r.skipped, 0);
        this.c.metrics.backfillItems.labels("copied").inc(copied);
        this.c.metrics.backfillItems.labels("skipped_newer").inc(skipped);
        const segments = results.map((r) => r.cursor);
        const nsDone = segments.every((s) => s === "");
        const now = this.clock.wall();
        rec = {
          ...rec,
          segments: nsDone ? [] : segments,
          nsIndex: nsDone ? rec.nsIndex + 1 : rec.nsIndex,
          scanned: rec.scanned + scanned,
          copied: rec.copied + copied,
          skipped: rec.skipped + skipped,
          activeMs: rec.activeMs + (now - lastRound),
          recentRate: movingRate(rec.recentRate, scanned, now - lastRound),
          leaseUntil: now + this.c.timings.backfillLeaseMs,
          updatedAt: now,
        };
        lastRound = now;
        const next = await this.checkpoint(rec, version);
        if (next === null) return; // paused, or someone else holds the lease now
        version = next;
        this.publish(rec);
        await yieldToEventLoop();

        // Rate limit (token bucket in items/s) and back-off when live latency rises.
        if (rec.rateLimit > 0) {
          tokens += ((this.clock.wall() - lastRefill) / 1000) * rec.rateLimit - scanned;
          lastRefill = this.clock.wall();
          if (tokens < 0) await this.clock.sleep((-tokens / rec.rateLimit) * 1000);
        }
        if (this.baselineLatency > 0 && this.liveLatency > 3 * this.baselineLatency + 2) await this.clock.sleep(Math.min(1000, this.liveLatency * 4));
      }
    } catch (err) {
      const message = describeError(err);
      this.c.logger.error("backfill round failed; will retry from the checkpoint", { error: message });
      // Leave the record running with the lease lapsed: this or another replica retries from the checkpoint.
      const fresh = await this.read().catch(() => null);
      if (fresh && fresh.value.runner === this.c.replicaId) {
        await this.c.control.compareAndSet(BACKFILL_KEY, { ...fresh.value, runner: undefined, leaseUntil: undefined, error: message, updatedAt: this.clock.wall() }, fresh.version).catch(() => false);
      }
      await this.clock.sleep(this.c.timings.heartbeatMs);
    } finally {
      clearInterval(renewal);
    }
  }

  /** Extends this runner's lease, if it still runs the backfill (a pause or takeover ends that). */
  private async renewLease(): Promise<void> {
    try {
      const fresh = await this.read();
      if (!fresh || fresh.value.state !== "running" || fresh.value.runner !== this.c.replicaId) return;
      await this.c.control.compareAndSet(BACKFILL_KEY, { ...fresh.value, leaseUntil: this.clock.wall() + this.c.timings.backfillLeaseMs }, fresh.version);
    } catch {
      // The next checkpoint or renewal tries again; a lapsed lease only means another replica resumes.
    }
  }

  /** Saves progress if this replica still holds the lease and the backfill still runs. */
  private async checkpoint(rec: BackfillRecord, version: bigint): Promise<bigint | null> {
    const v = await this.c.control.compareAndSet(BACKFILL_KEY, rec, version);
    if (v !== false) return v;
    const fresh = await this.read();
    if (!fresh || fresh.value.state !== "running" || (fresh.value.runner && fresh.value.runner !== this.c.replicaId)) {
      // Paused (or taken over): keep the cursor we reached so a resume does not redo the round.
      if (fresh && fresh.value.state === "paused" && fresh.value.nsIndex <= rec.nsIndex) {
        await this.c.control.compareAndSet(BACKFILL_KEY, { ...rec, state: "paused", runner: undefined, leaseUntil: undefined }, fresh.version);
      }
      this.c.logger.info("backfill runner stopped", { state: fresh?.value.state ?? "gone" });
      return null;
    }
    return this.c.control.compareAndSet(BACKFILL_KEY, rec, fresh.version).then((x) => (x === false ? null : x));
  }

  /** Items/s now: the recent rate while rounds keep checkpointing, 0 once they stop. */
  currentRate(rec: BackfillRecord): number {
    const stalledAfter = Math.max(10_000, 10 * this.c.timings.heartbeatMs);
    return rec.state === "running" && this.clock.wall() - rec.updatedAt < stalledAfter ? (rec.recentRate ?? 0) : 0;
  }

  publish(rec: BackfillRecord): void {
    const m = this.c.metrics;
    m.backfillProgress.set(rec.estimatedTotal > 0 ? Math.min(1, rec.scanned / rec.estimatedTotal) : rec.state === "done" ? 1 : 0);
    m.backfillRate.set(this.currentRate(rec));
    m.backfillRunning.set(rec.state === "running" ? 1 : 0);
  }
}
