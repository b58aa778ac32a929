// Prometheus metrics (prefix decant_). One Metrics object per sidecar, with its own registry
// so tests can run several sidecars in one process.
import client from "prom-client";

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<"rpc" | "code" | "front">;
  readonly requestDuration: client.Histogram<"rpc" | "front">;
  readonly storeDuration: client.Histogram<"store" | "op">;
  readonly storeErrors: client.Counter<"store" | "op" | "kind">;

  constructor(collectDefaults = true) {
    // The event-loop delay keeps prom-client's 10 ms sampling: every value of Node's histogram
    // includes the sampling interval, so at 100 ms an idle sidecar read ~100 ms of lag on the
    // dashboard (and ~3 ms/s of CPU saved is not worth a metric that misleads).
    if (collectDefaults) client.collectDefaultMetrics({ register: this.registry, prefix: "decant_" });
    const registers = [this.registry];
    this.requests = new client.Counter({ name: "decant_requests_total", help: "Requests by front (grpc, dynamodb), method and status code.", labelNames: ["rpc", "code", "front"], registers });
    this.requestDuration = new client.Histogram({
      name: "decant_request_duration_seconds",
      help: "Request latency by front (grpc, dynamodb) and method.",
      labelNames: ["rpc", "front"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.storeDuration = new client.Histogram({
      name: "decant_store_operation_duration_seconds",
      help: "Latency of operations on a backing store, by store role and operation.",
      labelNames: ["store", "op"],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.storeErrors = new client.Counter({
      name: "decant_store_errors_total",
      help: "Failed operations on a backing store, by store role, operation and error kind.",
      labelNames: ["store", "op", "kind"],
      registers,
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
