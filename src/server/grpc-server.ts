// The gRPC listener: Store (+ Migration when given), standard health checking and server
// reflection. Shutdown drains in-flight calls, then forces after a deadline.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import type { ConnectionSettings, TlsConfig } from "../config/config.js";
import type { Logger } from "../log.js";
import { isDecantError } from "../protocol/errors.js";
import type { Metrics } from "../metrics/metrics.js";
import { connectionOptions, listenBounded } from "./connections.js";
import { Health } from "./health.js";
import { definitionOf, LOADER_OPTIONS, PROTO_FILES, protoDir } from "../wire/proto.js";
import type { ServiceName } from "../wire/types.js";
import { serviceDefinition } from "./proto.js";
import { serverStreamFactory, unaryFactory, type CallPolicy, type Handlers, type ServerStreamHandlerFactory, type UnaryHandlerFactory } from "./rpc.js";

/** A Decant service: its handlers come from the factories (rpc.ts), one per method of its definition. */
export interface ServiceRegistration<S extends ServiceName> {
  service: S;
  handlers: (unary: UnaryHandlerFactory<S>, serverStream: ServerStreamHandlerFactory<S>) => Handlers<S>;
  /** Checked on every call of the service before anything else (e.g. requireToken in auth.ts). */
  authorize?: CallPolicy["authorize"];
}
export type AnyServiceRegistration = { [S in ServiceName]: ServiceRegistration<S> }[ServiceName];

export interface GrpcServerOptions {
  listen: string;
  services: AnyServiceRegistration[];
  metrics: Metrics;
  logger: Logger;
  tls?: TlsConfig;
  /** The largest request accepted (maxRequestBytes of the limits); a larger one is RESOURCE_EXHAUSTED before it is read. */
  maxReceiveBytes: number;
  connections: ConnectionSettings;
}

export interface RunningGrpcServer {
  port: number;
  health: Health;
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

/**
 * Server reflection (v1 and v1alpha), loaded on its first call: @grpc/reflection, proto-loader
 * and the descriptor index they build were ~2 MB of an idle sidecar's RSS, for a service only
 * tools such as grpcurl and buf curl call. Until then each version is served by a stub that
 * loads the real handlers and hands them its stream (a stream keeps the messages nobody reads
 * yet). The stubs decode messages as @grpc/reflection's own proto-loader options would.
 */
function addReflectionOnFirstUse(server: grpc.Server): void {
  type Handler = grpc.handleBidiStreamingCall<unknown, unknown>;
  let handlers: Promise<Map<string, Handler>> | undefined;
  const load = async () => {
    const [{ ReflectionService }, protoLoader] = await Promise.all([import("@grpc/reflection"), import("@grpc/proto-loader")]);
    // Reflection describes the health service too, so grpcurl/buf curl can call it without files.
    const described = protoLoader.loadSync([...PROTO_FILES, "grpc/health/v1/health.proto"], { ...LOADER_OPTIONS, includeDirs: [protoDir()] });
    const byPath = new Map<string, Handler>();
    new ReflectionService(described).addToServer({
      addService: (definition, implementation) => byPath.set(definition.ServerReflectionInfo!.path, implementation.ServerReflectionInfo as Handler),
    });
    return byPath;
  };
  const require = createRequire(import.meta.url);
  const versions = ["v1", "v1alpha"];
  const root = new protobuf.Root().loadSync(versions.map((v) => require.resolve(`@grpc/reflection/build/proto/grpc/reflection/${v}/reflection.proto`)));
  root.resolveAll();
  for (const version of versions) {
    const definition = definitionOf(root, `grpc.reflection.${version}.ServerReflection`, { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true });
    const path = definition.ServerReflectionInfo!.path;
    server.addService(definition, {
      ServerReflectionInfo: (stream: grpc.ServerDuplexStream<unknown, unknown>) => {
        handlers ??= load();
        handlers.then(
          (byPath) => byPath.get(path)!(stream),
          (err: Error) => stream.emit("error", { code: grpc.status.INTERNAL, details: `server reflection is unavailable: ${err.message}` }),
        );
      },
    });
  }
}

function addDecantService<S extends ServiceName>(server: grpc.Server, svc: ServiceRegistration<S>, policy: CallPolicy): void {
  const definition = serviceDefinition(svc.service);
  const handlers: Record<string, grpc.UntypedHandleCall> = svc.handlers(unaryFactory(svc.service, policy), serverStreamFactory(svc.service, policy));
  const missing = Object.keys(definition).filter((method) => !handlers[method]);
  if (missing.length) throw new Error(`decant.v1.${svc.service} has no handler for ${missing.join(", ")}`);
  server.addService(definition, handlers);
}

const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/.test(host);

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { metrics, logger } = options;
  const server = new grpc.Server({ "grpc.max_receive_message_length": options.maxReceiveBytes, ...connectionOptions(options.connections) });
  const statusMap: Record<string, "SERVING" | "NOT_SERVING"> = { "": "SERVING" };
  const onError = (rpc: string, err: unknown) => {
    // Expected failures are the client's business; only the unexpected ones are logged.
    if (!isDecantError(err) || err.kind === "internal") logger.error("request failed unexpectedly", { rpc, error: err instanceof Error ? err.stack : String(err) });
  };
  for (const svc of options.services) {
    addDecantService(server, svc as ServiceRegistration<ServiceName>, { metrics, onError, authorize: svc.authorize });
    statusMap[`decant.v1.${svc.service}`] = "SERVING";
  }
  const health = new Health(statusMap);
  health.addToServer(server);
  addReflectionOnFirstUse(server);

  const host = options.listen.slice(0, options.listen.lastIndexOf(":"));
  if (!options.listen.startsWith("unix:") && !isLoopback(host) && !options.tls) {
    logger.warn(`LISTENING ON ${options.listen} WITHOUT TLS: any host that reaches this address can read and write the store. Bind to 127.0.0.1 (the default for a sidecar) or configure tls.`);
  }
  const listener = await listenBounded(server, credentials(options.tls), options.listen, options.connections, logger);

  return {
    port: listener.port,
    health,
    async shutdown(drainMs) {
      for (const name of Object.keys(statusMap)) health.setStatus(name, "NOT_SERVING");
      listener.close();
      let forced = false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          forced = true;
          server.forceShutdown();
          listener.destroyAll();
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
