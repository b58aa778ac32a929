// A running sidecar: the configured stores, the gRPC listener and the metrics port.
import { openStore } from "../backends/index.js";
import { describeConfig, type Config } from "../config/config.js";
import type { Logger } from "../log.js";
import { instrumentStore } from "../metrics/instrumented.js";
import { startMetricsServer, type Route } from "../metrics/http.js";
import { Metrics } from "../metrics/metrics.js";
import type { Store } from "../protocol/store.js";
import { startGrpcServer, type ServiceRegistration } from "./grpc-server.js";
import { storeHandlers, storeServiceDefinition } from "./store-service.js";

export interface Sidecar {
  grpcPort: number;
  metricsPort: number;
  metrics: Metrics;
  store: Store;
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
  const current = instrumentStore(await openStore(config.current, "current"), "current", metrics);
  const limits = { maxValueBytes: config.maxValueBytes };
  logger.info("starting decant", describeConfig(config));

  let grpcServer;
  let httpServer;
  try {
    grpcServer = await startGrpcServer({
      listen: config.listen,
      metrics,
      logger,
      tls: config.tls,
      services: [
        { name: "decant.v1.Store", definition: storeServiceDefinition(), handlers: (unary) => storeHandlers(() => current, () => limits, unary) },
        ...(hooks.services ?? []),
      ],
    });
    httpServer = await startMetricsServer(config.metricsListen, metrics, hooks.routes);
  } catch (err) {
    await grpcServer?.shutdown(0);
    await current.close();
    throw err;
  }
  logger.info("decant is serving", { grpc: `${config.listen.slice(0, config.listen.lastIndexOf(":"))}:${grpcServer.port}`, metrics_port: httpServer.port, store: current.description });

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpcServer.port,
    metricsPort: httpServer.port,
    metrics,
    store: current,
    stop() {
      stopping ??= (async () => {
        logger.info("stopping decant: draining in-flight requests", { drain_timeout_ms: config.drainTimeoutMs });
        const { forced } = await grpcServer.shutdown(config.drainTimeoutMs);
        if (forced) logger.warn("drain deadline passed; cancelled the requests still in flight");
        await httpServer.close();
        await current.close();
        logger.info("decant stopped");
      })();
      return stopping;
    },
  };
}
