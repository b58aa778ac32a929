// Standard gRPC health checking, grpc.health.v1.Health: Check, Watch and List, answered as
// grpc-health-check's HealthImplementation answers them. Its handlers are these few lines;
// importing it loads proto-loader and parses health.proto into a Root of its own, which was
// ~0.8 MB of an idle sidecar's heap. The service itself comes from grpc-health-check's
// health.proto (the upstream file, with List).
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { definitionOf } from "../wire/proto.js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

const RESOURCE_EXHAUSTION_LIMIT = 100;

function healthDefinition(): grpc.ServiceDefinition {
  const file = createRequire(import.meta.url).resolve("grpc-health-check/proto/health/v1/health.proto");
  const root = new protobuf.Root().loadSync(file, { keepCase: true });
  root.resolveAll();
  return definitionOf(root, "grpc.health.v1.Health", { longs: String, enums: String, defaults: true, oneofs: true });
}

export class Health {
  private readonly statuses: Map<string, ServingStatus>;
  private readonly watchers = new Map<string, Set<(status: ServingStatus) => void>>();

  constructor(initial: Record<string, ServingStatus>) {
    this.statuses = new Map(Object.entries(initial));
  }

  setStatus(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const watcher of this.watchers.get(service) ?? []) watcher(status);
  }

  addToServer(server: grpc.Server): void {
    type Request = { service: string };
    server.addService(healthDefinition(), {
      Check: (call: grpc.ServerUnaryCall<Request, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
      },
      Watch: (call: grpc.ServerWritableStream<Request, unknown>) => {
        const service = call.request.service;
        const watcher = (status: ServingStatus) => call.write({ status });
        if (!this.watchers.has(service)) this.watchers.set(service, new Set());
        this.watchers.get(service)!.add(watcher);
        call.on("cancelled", () => this.watchers.get(service)?.delete(watcher));
        call.write({ status: this.statuses.get(service) ?? "SERVICE_UNKNOWN" });
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (this.statuses.size > RESOURCE_EXHAUSTION_LIMIT) return callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: "Too many services to list." });
        callback(null, { statuses: Object.fromEntries([...this.statuses].map(([service, status]) => [service, { status }])) });
      },
    });
  }
}
