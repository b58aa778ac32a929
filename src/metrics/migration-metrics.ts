import client from "prom-client";
import { PHASES, type Phase } from "../protocol/phases.js";

/** Longest a scrape waits for the control-store gauges before it shows their last values. */
const SCRAPE_REFRESH_MS = 2000;

/** The migration's Prometheus metrics (names fixed by the migration issue; the dashboard and alerts use them). */
export class MigrationMetrics {
  readonly phase: client.Gauge<"phase">;
  readonly replicas: client.Gauge<"state">;
  readonly backfillItems: client.Counter<"result">;
  readonly backfillProgress: client.Gauge;
  readonly backfillRate: client.Gauge;
  readonly backfillRunning: client.Gauge;
  readonly backfillSegments: client.Gauge<"state">;
  readonly backfillEta: client.Gauge;
  readonly backfillWorkerRate: client.Gauge<"worker">;
  readonly secondaryFailures: client.Counter<"store">;
  readonly journalDepth: client.Gauge;
  readonly verifyItems: client.Gauge<"result">;
  readonly inSyncRatio: client.Gauge;
  readonly shadowMismatches: client.Counter;
  readonly repaired: client.Counter;
  readonly repairFailures: client.Counter;
  readonly failClosed: client.Gauge;
  readonly renewal: client.Histogram;
  readonly viewAge: client.Gauge;
  /** The age of this sidecar's view of the control record, in seconds (set by the controller). */
  viewAgeSeconds: () => number = () => Infinity;
  /**
   * Reads what the journal-depth and verification gauges show from the control store (set by the
   * controller). Run when Prometheus scrapes, not every heartbeat: no one reads them in between.
   */
  refreshOnScrape: () => Promise<void> = async () => undefined;
  private refreshing?: Promise<void>;

  constructor(registry: client.Registry) {
    const registers = [registry];
    this.phase = new client.Gauge({ name: "decant_migration_phase", help: "1 for the migration phase this sidecar is in.", labelNames: ["phase"], registers });
    this.replicas = new client.Gauge({ name: "decant_migration_replicas", help: "Live replicas that acknowledged the current phase change, and those pending.", labelNames: ["state"], registers });
    this.backfillItems = new client.Counter({ name: "decant_backfill_items_total", help: "Items the backfill wrote to the target (copied) or found newer there (skipped_newer).", labelNames: ["result"], registers });
    this.backfillProgress = new client.Gauge({ name: "decant_backfill_progress_ratio", help: "Backfill progress: items scanned / estimated total.", registers });
    this.backfillRate = new client.Gauge({ name: "decant_backfill_items_per_second", help: "Backfill rate now: items scanned per second over the last rounds (0 when the backfill is not running or has stalled).", registers });
    this.backfillRunning = new client.Gauge({ name: "decant_backfill_running", help: "1 while a backfill is running (on any replica).", registers });
    this.backfillSegments = new client.Gauge({ name: "decant_backfill_segments", help: "Backfill segments by state: done, running (leased by a worker), waiting.", labelNames: ["state"], registers });
    this.backfillEta = new client.Gauge({ name: "decant_backfill_eta_seconds", help: "Seconds the backfill still needs at the merged rate of every worker (NaN while unknown, 0 when done).", registers });
    this.backfillWorkerRate = new client.Gauge({ name: "decant_backfill_worker_items_per_second", help: "Backfill items/s of each worker (sidecar or backfill-worker) running segments, from the segment records.", labelNames: ["worker"], registers });
    this.secondaryFailures = new client.Counter({ name: "decant_secondary_write_failures_total", help: "Writes to the secondary store that failed (their keys went to the repair journal).", labelNames: ["store"], registers });
    const scraped = () => this.scraped();
    this.journalDepth = new client.Gauge({ name: "decant_repair_journal_depth", help: "Keys waiting in the repair journal.", registers, collect: scraped });
    this.verifyItems = new client.Gauge({ name: "decant_verify_items", help: "Keys of the last verification by result.", labelNames: ["result"], registers, collect: scraped });
    this.inSyncRatio = new client.Gauge({ name: "decant_migration_in_sync_ratio", help: "In-sync share of the keys of the last verification (1 = equal).", registers, collect: scraped });
    this.shadowMismatches = new client.Counter({ name: "decant_shadow_read_mismatches_total", help: "Shadow reads where the target disagreed with the current store.", registers });
    this.repaired = new client.Counter({ name: "decant_repair_items_total", help: "Journal entries repaired.", registers });
    this.repairFailures = new client.Counter({ name: "decant_repair_failures_total", help: "Journal repair rounds that failed (they are retried): a journal that does not drain while this rises is stalled, by a store or a rolling upgrade.", registers });
    this.failClosed = new client.Gauge({ name: "decant_fail_closed", help: "1 while this sidecar refuses writes because it cannot renew its view of the control record.", registers });
    this.renewal = new client.Histogram({ name: "decant_control_renewal_seconds", help: "How long each renewal of the view of the control record took (read and heartbeat); a lease lapses when renewals stop succeeding.", buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    const age = () => this.viewAgeSeconds();
    this.viewAge = new client.Gauge({ name: "decant_control_view_age_seconds", help: "Age of this sidecar's view of the control record (since its last successful renewal started); writes are refused once it exceeds the lease.", registers, collect() { this.set(age()); } });
    for (const r of ["copied", "skipped_newer"]) this.backfillItems.labels(r).inc(0);
    for (const r of ["in_sync", "missing", "stale", "extra"]) this.verifyItems.labels(r).set(0);
    this.secondaryFailures.labels("target").inc(0);
    this.secondaryFailures.labels("current").inc(0);
  }

  /**
   * One refresh per scrape, shared by the gauges it feeds; bounded, so a slow control store
   * makes the scrape show the last values rather than time out. A failure keeps them too.
   */
  private scraped(): Promise<void> {
    this.refreshing ??= this.refreshOnScrape()
      .catch(() => undefined)
      .finally(() => (this.refreshing = undefined));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, SCRAPE_REFRESH_MS).unref()));
    return Promise.race([this.refreshing, bound]).finally(() => clearTimeout(timer));
  }

  setPhase(phase: Phase): void {
    for (const p of PHASES) this.phase.labels(p).set(p === phase ? 1 : 0);
  }
}
