// Prometheus metrics (prefix decant_). One Metrics object per sidecar, with its own registry
// so tests can run several sidecars in one process.
import client from "prom-client";

type Labels<L extends string> = Record<L, string>;

/**
 * The per-request metrics, rendered by prom-client's registry exactly as its own Counter and
 * Histogram render, but each labelled child (made once by the caller, see rpc.ts) counts in a
 * few array operations: prom-client validates and hashes the labels on every inc/observe,
 * ~9–17 µs of sidecar CPU per request in a profile (more than the rest of the metrics work).
 */
abstract class LabelledMetric<L extends string, C> {
  readonly aggregator = "sum";
  protected readonly children = new Map<string, { labels: Labels<L>; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    registers: client.Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as unknown as client.Metric);
  }

  /** The child for these label values, in labelNames' order (made on first use). */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected (${this.labelNames.join(", ")}), got ${values.length}`);
    const key = values.join("\u0000");
    let entry = this.children.get(key);
    if (!entry) {
      const labels = Object.fromEntries(this.labelNames.map((n, i) => [n, String(values[i])])) as Labels<L>;
      this.children.set(key, (entry = { labels, child: this.child() }));
    }
    return entry.child;
  }

  reset(): void {
    this.children.clear();
  }

  protected abstract child(): C;
}

class CounterChild {
  value = 0;
  inc(by = 1): void {
    // As prom-client's: a counter only goes up by a finite number (NaN too, which prom-client lets through and which would poison the series).
    if (!Number.isFinite(by)) throw new TypeError(`Value is not a valid number: ${by}`);
    if (by < 0) throw new Error("It is not possible to decrease a counter");
    this.value += by;
  }
}

export class Counter<L extends string> extends LabelledMetric<L, CounterChild> {
  readonly type = "counter";

  constructor(config: { name: string; help: string; labelNames: L[]; registers: client.Registry[] }) {
    super(config.name, config.help, config.labelNames, config.registers);
  }

  protected child(): CounterChild {
    return new CounterChild();
  }

  async get(): Promise<{ name: string; help: string; type: "counter"; aggregator: "sum"; values: { labels: Labels<L>; value: number }[] }> {
    // Only children that counted, as prom-client shows them (a child is made before its first call).
    const values = [...this.children.values()].filter(({ child }) => child.value !== 0).map(({ labels, child }) => ({ labels, value: child.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

class HistogramChild {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class Histogram<L extends string> extends LabelledMetric<L, HistogramChild> {
  readonly type = "histogram";
  private readonly bounds: readonly number[];

  constructor(config: { name: string; help: string; labelNames: L[]; buckets: number[]; registers: client.Registry[] }) {
    super(config.name, config.help, config.labelNames, config.registers);
    this.bounds = [...config.buckets].sort((a, b) => a - b);
  }

  protected child(): HistogramChild {
    return new HistogramChild(this.bounds);
  }

  /** As prom-client's Histogram gives them: cumulative buckets (le first), +Inf, then _sum and _count. */
  async get(): Promise<{ name: string; help: string; type: "histogram"; aggregator: "sum"; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, child } of this.children.values()) {
      if (child.count === 0) continue;
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += child.counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: "+Inf", ...labels }, value: child.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: child.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: Counter<"rpc" | "code" | "front">;
  readonly requestDuration: Histogram<"rpc" | "front">;
  readonly storeDuration: Histogram<"store" | "op">;
  readonly storeErrors: client.Counter<"store" | "op" | "kind">;

  constructor(collectDefaults = true) {
    // The event-loop delay keeps prom-client's 10 ms sampling: every value of Node's histogram
    // includes the sampling interval, so at 100 ms an idle sidecar read ~100 ms of lag on the
    // dashboard (and ~3 ms/s of CPU saved is not worth a metric that misleads).
    if (collectDefaults) client.collectDefaultMetrics({ register: this.registry, prefix: "decant_" });
    const registers = [this.registry];
    this.requests = new Counter({ name: "decant_requests_total", help: "Requests by front (grpc, dynamodb), method and status code.", labelNames: ["rpc", "code", "front"], registers });
    this.requestDuration = new Histogram({
      name: "decant_request_duration_seconds",
      help: "Request latency by front (grpc, dynamodb) and method.",
      labelNames: ["rpc", "front"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.storeDuration = new Histogram({
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
