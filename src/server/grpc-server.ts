// The gRPC listener: Store (+ Migration when given), standard health checking and server
// reflection. Shutdown drains in-flight calls, then forces after a deadline.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation } from "grpc-health-check";
import type { TlsConfig } from "../config/config.js";
import type { Logger } from "../log.js";
import { isDecantError } from "../protocol/errors.js";
import type { Metrics } from "../metrics/metrics.js";
import { loadProtocol, protoDir } from "./proto.js";
import { unaryFactory, type UnaryHandlerFactory } from "./rpc.js";

export interface ServiceRegistration {
  name: string; // e.g. "decant.v1.Store"
  definition: grpc.ServiceDefinition;
  handlers: (unary: UnaryHandlerFactory) => grpc.UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  listen: string;
  services: ServiceRegistration[];
  metrics: Metrics;
  logger: Logger;
  tls?: TlsConfig;
}

export interface RunningGrpcServer {
  port: number;
  health: HealthImplementation;
  /** Stops accepting, drains in-flight calls for up to `drainMs`, then cancels what is left. */
  shutdown(drainMs: number): Promise<{ forced: boolean }>;
}

function credentials(tls: TlsConfig | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const read = (path: string, field: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`tls.${field}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  const ca = tls.clientCaFile ? read(tls.clientCaFile, "client_ca_file") : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: read(tls.certFile, "cert_file"), private_key: read(tls.keyFile, "key_file") }], Boolean(ca));
}

const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/.test(host);

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { metrics, logger } = options;
  const server = new grpc.Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024 });
  const statusMap: Record<string, "SERVING" | "NOT_SERVING"> = { "": "SERVING" };
  for (const svc of options.services) {
    const service = svc.name.split(".").pop()!;
    const unary = unaryFactory(service, metrics, (rpc, err) => {
      // Expected failures are the client's business; only the unexpected ones are logged.
      if (!isDecantError(err) || err.kind === "internal") logger.error("request failed unexpectedly", { rpc, error: err instanceof Error ? err.stack : String(err) });
    });
    server.addService(svc.definition, svc.handlers(unary));
    statusMap[svc.name] = "SERVING";
  }
  const health = new HealthImplementation(statusMap);
  health.addToServer(server);
  // Reflection describes the health service too, so grpcurl/buf curl can call it without files.
  const healthDefinition = protoLoader.loadSync("grpc/health/v1/health.proto", { keepCase: true, includeDirs: [protoDir()] });
  new ReflectionService({ ...loadProtocol().packageDefinition, ...healthDefinition }).addToServer(server);

  const host = options.listen.slice(0, options.listen.lastIndexOf(":"));
  if (!isLoopback(host) && !options.tls) {
    logger.warn(`LISTENING ON ${options.listen} WITHOUT TLS: any host that reaches this address can read and write the store. Bind to 127.0.0.1 (the default for a sidecar) or configure tls.`);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, credentials(options.tls), (err, p) => (err ? reject(new Error(`listen: cannot bind ${options.listen}: ${err.message}`)) : resolve(p))),
  );

  return {
    port,
    health,
    async shutdown(drainMs) {
      for (const name of Object.keys(statusMap)) health.setStatus(name, "NOT_SERVING");
      let forced = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          forced = true;
          server.forceShutdown();
          resolve();
        }, drainMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return { forced };
    },
  };
}
