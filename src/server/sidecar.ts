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
import { MigrationController, type MigrationHooks } from "../migration/controller.js";
import { MigratingStore } from "../migration/migrating-store.js";
import { MigrationMetrics } from "../metrics/migration-metrics.js";
import { controllerReadiness, Readiness } from "./readiness.js";

export interface Sidecar {
  grpcPort: number;
  metricsPort: number;
  /** The DynamoDB-API front's port, when dynamodb_listen is set. */
  dynamodbPort?: number;
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
  /** Holds a write or a fence at a step (tests replay interleavings with them). */
  migration?: MigrationHooks;
}

const ownConnection = (url: string): boolean => !/^(memory|sqlite):/.test(url);

export async function startSidecar(config: Config, logger: Logger, hooks: SidecarHooks = {}): Promise<Sidecar> {
  const metrics = new Metrics();
  const migrationMetrics = new MigrationMetrics(metrics.registry);
  logger.info("starting decant", describeConfig(config));
  const current = instrumentStore(await openStore(config.current, "current"), "current", metrics);
  const target = config.target ? instrumentStore(await openStore(config.target, "target"), "target", metrics) : undefined;
  // The control record is read every heartbeat: on a network store it gets a pool of its own,
  // so renewals never queue behind data traffic or backfill pages (a busy sidecar must not fail
  // closed). Memory and SQLite stores are shared (in-process, nothing to queue behind).
  const controlUrl = config.control ?? (ownConnection(config.current) ? config.current : undefined);
  const control = controlUrl ? instrumentStore(await openStore(controlUrl, "control"), "control", metrics) : current;
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
      backfillSegments: config.backfillSegmentsPerReplica,
      storeTimeoutMs: config.storeTimeoutMs,
    },
    migrationId: config.migrationId,
    hooks: hooks.migration,
  });
  try {
    await controller.start();
  } catch (err) {
    await closeStores();
    throw err;
  }
  const served: Store = new MigratingStore(controller);

  // gRPC health ("" and the Store service) and /readyz follow readiness; /livez does not.
  let grpcServer: Awaited<ReturnType<typeof startGrpcServer>> | undefined;
  const followReadiness = (ready: boolean) => {
    for (const service of ["", "decant.v1.Store"]) grpcServer?.health.setStatus(service, ready ? "SERVING" : "NOT_SERVING");
  };
  const readiness = new Readiness(controllerReadiness(controller), {
    onChange: (ready, reason) => {
      if (ready) logger.info("ready: the stores answer again");
      else logger.warn("not ready: health is NOT_SERVING and /readyz answers 503", { reason });
      followReadiness(ready);
    },
  });
  await readiness.start();

  let httpServer;
  let dynamoFront: import("../fronts/dynamodb/server.js").DynamoFront | undefined;
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
    followReadiness(readiness.state().ready);
    // The status page is for people: its module (page, style and script templates) is loaded
    // on the first request other than /metrics and /healthz, not kept by every idle sidecar.
    const statusOptions = { controller: target ? controller : undefined, metrics, current, adminToken: config.adminToken };
    let statusRoutes: Promise<Route[]> | undefined;
    const statusPage: Route = async (req, res) => {
      statusRoutes ??= import("./status-page.js").then((page) => page.statusPageRoutes(statusOptions));
      for (const route of await statusRoutes) if (await route(req, res)) return true;
      return false;
    };
    httpServer = await startMetricsServer(config.metricsListen, metrics, [...(hooks.routes ?? []), statusPage], () => readiness.state());
    // The DynamoDB front is one more client of the same store (loaded only when configured).
    if (config.dynamodbListen) {
      const { startDynamoFront } = await import("../fronts/dynamodb/server.js");
      dynamoFront = await startDynamoFront({ listen: config.dynamodbListen, store: served, logger, metrics, maxValueBytes: config.maxValueBytes, credentials: config.dynamodbAuth });
    }
  } catch (err) {
    await readiness.stop();
    await httpServer?.close();
    await grpcServer?.shutdown(0);
    await controller.stop();
    await closeStores();
    throw err;
  }
  const metricsHost = config.metricsListen.slice(0, config.metricsListen.lastIndexOf(":")).replace(/^(0\.0\.0\.0|\[::\]|)$/, "127.0.0.1");
  logger.info("decant is serving", {
    grpc: `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${grpcServer.port}`,
    status_page: `http://${metricsHost}:${httpServer.port}/`,
    metrics_port: httpServer.port,
    store: served.description,
    phase: controller.phase,
    dynamodb_port: dynamoFront?.port,
    ready: readiness.state().ready,
  });

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpcServer.port,
    metricsPort: httpServer.port,
    dynamodbPort: dynamoFront?.port,
    metrics,
    store: served,
    controller,
    stop() {
      stopping ??= (async () => {
        logger.info("stopping decant: draining in-flight requests", { drain_timeout_ms: config.drainTimeoutMs });
        await readiness.stop(); // or a probe round would report SERVING again during the drain
        const [{ forced }] = await Promise.all([grpcServer!.shutdown(config.drainTimeoutMs), dynamoFront?.close(config.drainTimeoutMs)]);
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
