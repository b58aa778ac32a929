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
