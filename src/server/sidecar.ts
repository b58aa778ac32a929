// A running sidecar: the configured stores, the gRPC listener and the metrics port.
import { openStore } from "../backends/index.js";
import { describeConfig, type Config } from "../config/config.js";
import type { Logger } from "../log.js";
import { instrumentStore } from "../metrics/instrumented.js";
import { startMetricsServer, type Route } from "../metrics/http.js";
import { Metrics } from "../metrics/metrics.js";
import type { Store } from "../protocol/store.js";
import { maxRequestBytes } from "../protocol/validate.js";
import { startGrpcServer, type ServiceRegistration } from "./grpc-server.js";
import { storeHandlers } from "./store-service.js";
import { migrationHandlers } from "./migration-service.js";
import { serviceDefinition } from "./proto.js";
import { MigrationController } from "../migration/controller.js";
import { MigratingStore } from "../migration/migrating-store.js";
import { MigrationMetrics } from "../metrics/migration-metrics.js";

export interface Sidecar {
  grpcPort: number;
  metricsPort: number;
  metrics: Metrics;
  /** The store clients are served from (the migration layer when a target is configured). */
  store: Store;
  controller: MigrationController;
  /** Graceful stop: drain, then force after the configured deadline; closes the stores. */
  stop(): Promise<void>;
}

export interface SidecarHooks {
  /** Extra services and routes (the migration layer adds its own). */
  services?: ServiceRegistration[];
  routes?: Route[];
}

export async function startSidecar(config: Config, logger: Logger, hooks: SidecarHooks = {}): Promise<Sidecar> {
  const metrics = new Metrics();
  const migrationMetrics = new MigrationMetrics(metrics.registry);
  logger.info("starting decant", describeConfig(config));
  const current = instrumentStore(await openStore(config.current, "current"), "current", metrics);
  const target = config.target ? instrumentStore(await openStore(config.target, "target"), "target", metrics) : undefined;
  const control = config.control ? instrumentStore(await openStore(config.control, "control"), "control", metrics) : current;
  const limits = { maxValueBytes: config.maxValueBytes, maxBatchBytes: config.maxBatchBytes };
  const closeStores = async () => {
    await current.close();
    await target?.close();
    if (control !== current) await control.close();
  };

  // Every replica runs the controller, with or without a target: it heartbeats, so a replica
  // that lacks the target (an old pod mid-rollout) is seen as pending and refuses writes
  // outside SINGLE instead of writing to the current store alone.
  const m = config.migration;
  const controller = new MigrationController({
    current,
    target,
    control,
    replicaId: config.replicaId,
    metrics: migrationMetrics,
    logger,
    timings: {
      heartbeatMs: m.heartbeat_ms,
      leaseMs: m.lease_ms,
      replicaTtlMs: m.replica_ttl_ms,
      fenceHoldMs: m.fence_hold_ms,
      fenceTimeoutMs: m.fence_timeout_ms,
      backfillLeaseMs: m.backfill_lease_ms,
    },
  });
  try {
    await controller.start();
  } catch (err) {
    await closeStores();
    throw err;
  }
  const served: Store = new MigratingStore(controller);

  let grpcServer;
  let httpServer;
  try {
    grpcServer = await startGrpcServer({
      listen: config.listen,
      metrics,
      logger,
      tls: config.tls,
      maxReceiveBytes: maxRequestBytes(limits),
      connections: config.connections,
      services: [
        { name: "decant.v1.Store", definition: serviceDefinition("Store"), handlers: (unary) => storeHandlers(() => served, () => limits, unary) },
        { name: "decant.v1.Migration", definition: serviceDefinition("Migration"), handlers: (unary, serverStream) => migrationHandlers(controller, config.adminToken, unary, serverStream) },
        ...(hooks.services ?? []),
      ],
    });
    // The status page is for people: its module (page, style and script templates) is loaded
    // on the first request other than /metrics and /healthz, not kept by every idle sidecar.
    const statusOptions = { controller: target ? controller : undefined, metrics, current, adminToken: config.adminToken };
    let statusRoutes: Promise<Route[]> | undefined;
    const statusPage: Route = async (req, res) => {
      statusRoutes ??= import("./status-page.js").then((page) => page.statusPageRoutes(statusOptions));
      for (const route of await statusRoutes) if (await route(req, res)) return true;
      return false;
    };
    httpServer = await startMetricsServer(config.metricsListen, metrics, [...(hooks.routes ?? []), statusPage]);
  } catch (err) {
    await grpcServer?.shutdown(0);
    await controller.stop();
    await closeStores();
    throw err;
  }
  logger.info("decant is serving", { grpc: `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${grpcServer.port}`, metrics_port: httpServer.port, store: served.description, phase: controller.phase });

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpcServer.port,
    metricsPort: httpServer.port,
    metrics,
    store: served,
    controller,
    stop() {
      stopping ??= (async () => {
        logger.info("stopping decant: draining in-flight requests", { drain_timeout_ms: config.drainTimeoutMs });
        const { forced } = await grpcServer.shutdown(config.drainTimeoutMs);
        if (forced) logger.warn("drain deadline passed; cancelled the requests still in flight");
        await controller.stop(); // the backfill checkpoints before its stores close
        await httpServer.close();
        await closeStores();
        logger.info("decant stopped");
      })();
      return stopping;
    },
  };
}
