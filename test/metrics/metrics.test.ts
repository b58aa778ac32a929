// The sidecar's registry: prom-client's default metrics (prefix decant_) and Decant's own, in
// prom-client's exposition format.
import { expect } from "chai";
import client from "prom-client";
import { openStore } from "../../src/backends/index.js";
import { MemoryStore } from "../../src/backends/memory.js";
import { instrumentStore } from "../../src/metrics/instrumented.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";

const families = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("# TYPE "))
    .sort();

describe("metrics", function () {
  it("has prom-client's default metrics and Decant's own, with their types", async function () {
    const metrics = new Metrics();
    new MigrationMetrics(metrics.registry);
    const reference = new client.Registry();
    client.collectDefaultMetrics({ register: reference, prefix: "decant_" });
    const ours = families((await metrics.render()).body);
    expect(ours).to.include.members(families(await reference.metrics()));
    expect(ours).to.include.members(["# TYPE decant_requests_total counter", "# TYPE decant_request_duration_seconds histogram", "# TYPE decant_migration_phase gauge"]);
    expect((await metrics.render()).contentType).to.equal(reference.contentType);
  });

  it("observes and renders like prom-client", async function () {
    const metrics = new Metrics(false);
    metrics.requests.labels("Store/Get", "OK", "grpc").inc();
    metrics.requestDuration.labels("Store/Get", "grpc").observe(0.002);
    const text = (await metrics.render()).body;
    expect(text).to.include('decant_requests_total{rpc="Store/Get",code="OK",front="grpc"} 1');
    expect(text).to.include('decant_request_duration_seconds_bucket{le="0.0025",rpc="Store/Get",front="grpc"} 1');
  });

  it("renders its per-request counter and histograms exactly as prom-client's own would", async function () {
    const metrics = new Metrics(false);
    const reference = new client.Registry();
    const registers = [reference];
    const h = new client.Histogram({ name: "decant_request_duration_seconds", help: "Request latency by front (grpc, dynamodb) and method.", labelNames: ["rpc", "front"], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    const c = new client.Counter({ name: "decant_requests_total", help: "Requests by front (grpc, dynamodb), method and status code.", labelNames: ["rpc", "code", "front"], registers });
    for (const v of [0.0001, 0.0005, 0.002, 0.7, 9]) {
      h.labels("Store/Get", "grpc").observe(v);
      metrics.requestDuration.labels("Store/Get", "grpc").observe(v);
    }
    h.labels("GetItem", "dynamodb").observe(0.01);
    metrics.requestDuration.labels("GetItem", "dynamodb").observe(0.01);
    metrics.requestDuration.labels("Store/Delete", "grpc"); // made, never observed: not shown, as in prom-client
    for (let i = 0; i < 3; i++) {
      c.labels("Store/Get", "OK", "grpc").inc();
      metrics.requests.labels("Store/Get", "OK", "grpc").inc();
    }
    const lines = (text: string) => text.split("\n").filter((l) => l.includes("decant_request")).sort();
    expect(lines((await metrics.render()).body)).to.deep.equal(lines(await reference.metrics()));
    expect(() => metrics.requestDuration.labels("Store/Get")).to.throw(/2 label values expected/);
  });

  it("refuses what prom-client refuses (a counter going down, by Infinity; an observation not a number), and NaN", function () {
    const metrics = new Metrics(false);
    const counter = metrics.requests.labels("Store/Get", "OK", "grpc");
    const reference = new client.Counter({ name: "c", help: "c", registers: [] });
    expect(() => reference.inc(-1)).to.throw(/not possible to decrease/);
    expect(() => counter.inc(-1)).to.throw(/not possible to decrease/);
    expect(() => reference.inc(Number.POSITIVE_INFINITY)).to.throw(/not a valid number/);
    expect(() => counter.inc(Number.POSITIVE_INFINITY)).to.throw(/not a valid number/);
    expect(() => counter.inc(Number.NaN)).to.throw(/not a valid number/); // prom-client would add it
    counter.inc(0);
    counter.inc(2);
    expect(counter.value).to.equal(2);
    expect(() => metrics.requestDuration.labels("Store/Get", "grpc").observe(Number.NaN)).to.throw(/not a valid number/);
  });

  it("an instrumented store times raiseFence where the store has one, and has none where it has not", async function () {
    const metrics = new Metrics(false);
    const store = instrumentStore(new MemoryStore(), "current", metrics);
    expect(await store.raiseFence!(4)).to.equal(4);
    expect((await metrics.render()).body).to.include('decant_store_operation_duration_seconds_count{store="current:memory",op="raiseFence"} 1');
    const unfenced = instrumentStore(await openStore("dynamodb://unfenced?region=us-east-1&endpoint=http://127.0.0.1:1"), "target", metrics);
    expect(unfenced.raiseFence).to.equal(undefined);
    await unfenced.close();
  });
});
