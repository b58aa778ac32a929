// A running sidecar: the configured stores, the gRPC listener and the metrics port.
import { openStore } from "../backends/index.js";
import { describeConfig, type Config } from "../config/config.js";
import type { Logger } from "../log.js";
import { instrumentStore } from "../metrics/instrumented.js";
import { startMetricsServer, type Route, type RunningHttpServer } from "../metrics/http.js";
import { Metrics } from "../metrics/metrics.js";
import type { Store } from "../protocol/store.js";
import { maxRequestBytes } from "../protocol/validate.js";
import { startGrpcServer, type AnyServiceRegistration, type RunningGrpcServer } from "./grpc-server.js";
import { requireToken } from "./auth.js";
import { storeHandlers } from "./store-service.js";
import { migrationHandlers } from "./migration-service.js";
import { MigrationController, type MigrationHooks } from "../migration/controller.js";
import { MigratingStore } from "../migration/migrating-store.js";
import { MigrationMetrics } from "../metrics/migration-metrics.js";
import { controllerReadiness, Readiness } from "./readiness.js";
import type { DynamoFront } from "../fronts/dynamodb/server.js";

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
  services?: AnyServiceRegistration[];
  routes?: Route[];
  /** Holds a write or a fence at a step (tests replay interleavings with them). */
  migration?: MigrationHooks;
}

const ownConnection = (url: string): boolean => !/^(memory|sqlite):/.test(url);

interface Stores {
  current: Store;
  target?: Store;
  control: Store;
  /** The control store on a connection of its own for renewals (the control store itself on memory and SQLite). */
  renewal: Store;
  close(): Promise<void>;
}

interface Listeners {
  grpc: RunningGrpcServer;
  http: RunningHttpServer;
  dynamo?: DynamoFront;
}

/** What the listeners serve: built once the controller runs. */
interface Serving {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  controller: MigrationController;
  served: Store;
  readiness: Readiness;
  health: GrpcHealth;
  hooks: SidecarHooks;
}

export async function startSidecar(config: Config, logger: Logger, hooks: SidecarHooks = {}): Promise<Sidecar> {
  const metrics = new Metrics();
  logger.info("starting decant", describeConfig(config));
  const stores = await openStores(config, metrics);
  const controller = migrationController(config, stores, new MigrationMetrics(metrics.registry), logger, hooks.migration);
  try {
    await controller.start();
  } catch (err) {
    await stores.close();
    throw err;
  }
  const served: Store = new MigratingStore(controller);
  const health = new GrpcHealth();
  const readiness = new Readiness(controllerReadiness(controller), {
    onChange: (ready, reason) => {
      if (ready) logger.info("ready: the stores answer again");
      else logger.warn("not ready: health is NOT_SERVING and /readyz answers 503", { reason });
      health.follow(ready);
    },
  });
  await readiness.start();
  let listeners: Listeners;
  try {
    listeners = await startListeners({ config, logger, metrics, controller, served, readiness, health, hooks });
  } catch (err) {
    await readiness.stop();
    await controller.stop();
    await stores.close();
    throw err;
  }
  logServing(config, logger, listeners, served, controller, readiness);
  const stop = stopper(config, logger, { readiness, listeners, controller, stores });
  return { grpcPort: listeners.grpc.port, metricsPort: listeners.http.port, dynamodbPort: listeners.dynamo?.port, metrics, store: served, controller, stop };
}

/**
 * The configured stores, instrumented. The control record is read every heartbeat: on a
 * network store it gets a pool of its own, so renewals never queue behind data traffic or
 * backfill pages (a busy sidecar must not fail closed). Memory and SQLite stores are shared
 * (in-process, nothing to queue behind).
 */
async function openStores(config: Config, metrics: Metrics): Promise<Stores> {
  const current = instrumentStore(await openStore(config.current, "current"), "current", metrics);
  const target = config.target ? instrumentStore(await openStore(config.target, "target"), "target", metrics) : undefined;
  const controlUrl = config.control ?? (ownConnection(config.current) ? config.current : undefined);
  const control = controlUrl ? instrumentStore(await openStore(controlUrl, "control"), "control", metrics) : current;
  // Renewals get one more connection of their own: intents (one per write in a migration) and
  // backfill checkpoints use the control pool too, and a renewal must not queue behind them.
  const renewal = controlUrl ? instrumentStore(await openStore(controlUrl, "control"), "control", metrics) : control;
  return {
    current,
    target,
    control,
    renewal,
    async close() {
      await current.close();
      await target?.close();
      if (control !== current) await control.close();
      if (renewal !== control) await renewal.close();
    },
  };
}

/**
 * Every replica runs the controller, with or without a target: it heartbeats, so a replica
 * that lacks the target (an old pod mid-rollout) is seen as pending and refuses writes
 * outside SINGLE instead of writing to the current store alone.
 */
function migrationController(config: Config, stores: Stores, metrics: MigrationMetrics, logger: Logger, hooks?: MigrationHooks): MigrationController {
  const m = config.migration;
  return new MigrationController({
    current: stores.current,
    target: stores.target,
    control: stores.control,
    renewal: stores.renewal,
    replicaId: config.replicaId,
    metrics,
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
    hooks,
  });
}

/** gRPC health ("" and the Store service) follows readiness; it is set once the server runs. */
class GrpcHealth {
  server?: RunningGrpcServer;

  follow(ready: boolean): void {
    for (const service of ["", "decant.v1.Store"]) this.server?.health.setStatus(service, ready ? "SERVING" : "NOT_SERVING");
  }
}

/** gRPC, the metrics port (with the status page) and the DynamoDB front; on a failure, none stays open. */
async function startListeners(o: Serving): Promise<Listeners> {
  let grpc: RunningGrpcServer | undefined;
  let http: RunningHttpServer | undefined;
  try {
    grpc = await startGrpc(o);
    o.health.server = grpc;
    o.health.follow(o.readiness.state().ready);
    http = await startMetricsServer(o.config.metricsListen, o.metrics, [...(o.hooks.routes ?? []), statusPageRoute(o)], () => o.readiness.state());
    return { grpc, http, dynamo: await startFront(o) };
  } catch (err) {
    await http?.close();
    await grpc?.shutdown(0);
    throw err;
  }
}

function startGrpc(o: Serving): Promise<RunningGrpcServer> {
  const { config } = o;
  const limits = { maxValueBytes: config.maxValueBytes, maxBatchBytes: config.maxBatchBytes };
  return startGrpcServer({
    listen: config.listen,
    metrics: o.metrics,
    logger: o.logger,
    tls: config.tls,
    maxReceiveBytes: maxRequestBytes(limits),
    connections: config.connections,
    services: [
      { service: "Store", handlers: (unary) => storeHandlers(() => o.served, () => limits, unary) },
      { service: "Migration", handlers: (unary, serverStream) => migrationHandlers(o.controller, unary, serverStream), authorize: requireToken(config.adminToken) },
      ...(o.hooks.services ?? []),
    ],
  });
}

/**
 * The status page is for people: its module (page, style and script templates) is loaded on
 * the first request other than /metrics and /healthz, not kept by every idle sidecar.
 */
function statusPageRoute(o: Serving): Route {
  const options = { controller: o.controller, metrics: o.metrics, adminToken: o.config.adminToken };
  let routes: Promise<Route[]> | undefined;
  return async (req, res) => {
    routes ??= import("./status-page.js").then((page) => page.statusPageRoutes(options));
    for (const route of await routes) if (await route(req, res)) return true;
    return false;
  };
}

/** The DynamoDB front is one more client of the same store (loaded only when configured). */
async function startFront(o: Serving): Promise<DynamoFront | undefined> {
  const { config } = o;
  if (!config.dynamodbListen) return undefined;
  const { startDynamoFront } = await import("../fronts/dynamodb/server.js");
  return startDynamoFront({ listen: config.dynamodbListen, store: o.served, logger: o.logger, metrics: o.metrics, maxValueBytes: config.maxValueBytes, credentials: config.dynamodbAuth, storeTimeoutMs: config.storeTimeoutMs });
}

function logServing(config: Config, logger: Logger, l: Listeners, served: Store, controller: MigrationController, readiness: Readiness): void {
  const metricsHost = config.metricsListen.slice(0, config.metricsListen.lastIndexOf(":")).replace(/^(0\.0\.0\.0|\[::\]|)$/, "127.0.0.1");
  logger.info("decant is serving", {
    grpc: config.listen.startsWith("unix:") ? config.listen : `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${l.grpc.port}`,
    status_page: `http://${metricsHost}:${l.http.port}/`,
    metrics_port: l.http.port,
    store: served.description,
    phase: controller.phase,
    dynamodb_port: l.dynamo?.port,
    ready: readiness.state().ready,
  });
}

/** Graceful stop, once: drain, then force after the configured deadline; then close the stores. */
function stopper(config: Config, logger: Logger, parts: { readiness: Readiness; listeners: Listeners; controller: MigrationController; stores: Stores }): () => Promise<void> {
  const { readiness, listeners, controller, stores } = parts;
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      logger.info("stopping decant: draining in-flight requests", { drain_timeout_ms: config.drainTimeoutMs });
      await readiness.stop(); // or a probe round would report SERVING again during the drain
      const [{ forced }] = await Promise.all([listeners.grpc.shutdown(config.drainTimeoutMs), listeners.dynamo?.close(config.drainTimeoutMs)]);
      if (forced) logger.warn("drain deadline passed; cancelled the requests still in flight");
      await controller.stop(); // the backfill checkpoints before its stores close
      await listeners.http.close();
      await stores.close();
      logger.info("decant stopped");
    })();
    return stopping;
  };
}
