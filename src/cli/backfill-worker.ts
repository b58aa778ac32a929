// decant backfill-worker: the backfill's segment loop alone, outside the service's pods (a
// Kubernetes Job runs P of them). Same config, same binary; no gRPC front, no heartbeat as a
// replica (it serves no writes, so no phase change waits for it). It follows the phase record,
// leases segments like any sidecar, and exits 0 once no segment is left. It serves /metrics on
// metrics_listen as a sidecar does, so each worker's rate and CPU are scraped.
import { parseArgs } from "node:util";
import { openStore } from "../backends/index.js";
import { ConfigError, loadConfig, type Config } from "../config/config.js";
import { createLogger, type Logger } from "../log.js";
import { startMetricsServer, type RunningHttpServer } from "../metrics/http.js";
import { Metrics } from "../metrics/metrics.js";
import { MigrationMetrics } from "../metrics/migration-metrics.js";
import { DecantError, describe as describeError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { Backfill, type BackfillRecord } from "../migration/backfill.js";
import { BACKFILL_KEY, ControlStore, PHASE_KEY, type PhaseRecord } from "../migration/control.js";
import { DEFAULT_TIMINGS } from "../migration/controller.js";
import type { Phase, Role } from "../migration/phases.js";
import { systemClock, type WorkContext, type WorkTimings } from "../migration/work-context.js";

/** The worker's view of the phase record: stale after a lease without a successful read (then no phase allows work). */
class PhaseView {
  private record?: PhaseRecord;
  private readAt = -Infinity;

  constructor(
    private readonly control: ControlStore,
    private readonly leaseMs: number,
  ) {}

  async refresh(): Promise<void> {
    const at = systemClock.monotonic();
    const rec = await this.control.read<PhaseRecord>(PHASE_KEY);
    this.record = rec?.value;
    this.readAt = at;
  }

  get phase(): Phase {
    return this.record && systemClock.monotonic() - this.readAt <= this.leaseMs ? this.record.phase : "SINGLE";
  }

  get attempt(): string | undefined {
    return this.record?.attempt;
  }

  get epoch(): number {
    return this.record?.epoch ?? 0;
  }
}

function workContext(o: { current: Store; target: Store; control: ControlStore; view: PhaseView; config: Config; logger: Logger; timings: WorkTimings; metrics: MigrationMetrics }): WorkContext {
  const { view } = o;
  return {
    current: o.current,
    target: o.target,
    control: o.control,
    replicaId: o.config.replicaId,
    timings: o.timings,
    metrics: o.metrics,
    logger: o.logger,
    get phase() {
      return view.phase;
    },
    get attempt() {
      return view.attempt;
    },
    get epoch() {
      return view.epoch;
    },
    store: (role: Role) => (role === "current" ? o.current : o.target),
    isActive: async () => {
      throw new DecantError("failed_precondition", "a backfill-worker does not start a backfill; call StartBackfill on a sidecar");
    },
    failureCounts: async () => ({}),
    publishVerify: () => undefined,
  };
}

export async function backfillWorker(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true });
  let config: Config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`decant: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  if (!config.target) {
    logger.error("backfill-worker needs the migration target (target or DECANT_TARGET)");
    return 2;
  }
  const current = await openStore(config.current, "current");
  const target = await openStore(config.target, "target");
  const control = config.control ? await openStore(config.control, "control") : current;
  const m = config.migration;
  const timings: WorkTimings = {
    heartbeatMs: m.heartbeat_ms ?? DEFAULT_TIMINGS.heartbeatMs,
    backfillLeaseMs: m.backfill_lease_ms ?? DEFAULT_TIMINGS.backfillLeaseMs,
    storeTimeoutMs: config.storeTimeoutMs || DEFAULT_TIMINGS.storeTimeoutMs,
    backfillSegments: config.backfillSegmentsPerReplica,
    loopDelayBudgetMs: Number.POSITIVE_INFINITY, // no live requests here to rest for
  };
  const controlStore = new ControlStore(control);
  const view = new PhaseView(controlStore, m.lease_ms ?? DEFAULT_TIMINGS.leaseMs);
  const metrics = new Metrics();
  const backfill = new Backfill(workContext({ current, target, control: controlStore, view, config, logger, timings, metrics: new MigrationMetrics(metrics.registry) }));
  const http = await serveMetrics(config.metricsListen, metrics, logger);
  let stopping = false;
  const onSignal = (signal: string) => {
    logger.info(`received ${signal}: the segments held go back at their checkpoints`);
    stopping = true;
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  logger.info("backfill-worker started", { replica: config.replicaId, segments_per_worker: timings.backfillSegments ?? 2, metrics_port: http?.port });
  let code: number | undefined;
  try {
    while (code === undefined) {
      try {
        await view.refresh();
        await backfill.maybeTakeOver();
        await backfill.refreshGauges();
        code = await exitCode(controlStore, view, backfill, logger);
      } catch (err) {
        logger.warn("cannot read the migration records; retrying", { error: describeError(err) });
      }
      if (stopping) code ??= 3;
      if (code === undefined) await systemClock.sleep(timings.heartbeatMs);
    }
  } finally {
    await backfill.stop();
    await http?.close();
    await current.close();
    await target.close();
    if (control !== current) await control.close();
  }
  const cpu = process.cpuUsage();
  logger.info("backfill-worker exits", { code, cpu_ms: Math.round((cpu.user + cpu.system) / 1000) });
  return code;
}

/**
 * /metrics (and /livez, /readyz) on metrics_listen, as a sidecar serves them. A port already
 * taken (the default one, by a sidecar on the same host) is logged and the worker copies without
 * it: the copy matters more than its gauges. In a Job's pod the port is the worker's own.
 */
async function serveMetrics(listen: string, metrics: Metrics, logger: Logger): Promise<RunningHttpServer | undefined> {
  try {
    return await startMetricsServer(listen, metrics);
  } catch (err) {
    logger.warn("backfill-worker serves no /metrics: set metrics_listen (DECANT_METRICS_LISTEN) to a free host:port", { error: (err as Error).message });
    return undefined;
  }
}

/** 0 once no segment is left (done, or no backfill of this attempt), 1 if it failed; undefined = keep working. */
async function exitCode(control: ControlStore, view: PhaseView, backfill: Backfill, logger: Logger): Promise<number | undefined> {
  const job = (await control.read<BackfillRecord>(BACKFILL_KEY))?.value;
  if (!job || job.attempt !== view.attempt) {
    logger.info("no backfill of this migration attempt to run: nothing to do");
    return 0;
  }
  if (job.state === "done" && backfill.held === 0) {
    logger.info("the backfill is done: no segment is left");
    return 0;
  }
  if (job.state === "failed") {
    logger.error("the backfill failed", { error: job.error });
    return 1;
  }
  return undefined; // running (segments left, here or elsewhere) or paused
}
