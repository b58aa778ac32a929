// Health that tells the truth: with the store behind a paused proxy (a stalled network),
// readiness (/readyz, gRPC health "" and decant.v1.Store) goes NOT_SERVING within a bounded
// time while liveness (/livez, /healthz) stays OK, and comes back when the proxy resumes.
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { waitFor } from "../support/migration.js";
import { startPausableProxy, type PausableProxy } from "../support/proxy.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;

const ok = await postgresAvailable();

/** Readiness must drop within a probe interval plus a probe timeout (1 s + 2 s), with room for a loaded machine. */
const BOUND_MS = 8000;

async function healthClient(port: number) {
  const { protoPath } = await import("grpc-health-check");
  const protoLoader = await import("@grpc/proto-loader");
  const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
  const client = new def.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    check: (service: string) =>
      new Promise<string>((res, rej) => client.Check({ service }, { deadline: Date.now() + 2000 }, (e: Error, v: { status: string }) => (e ? rej(e) : res(v.status)))),
    watch: (service: string) => client.Watch({ service }),
    close: () => client.close(),
  };
}

if (ok) {
  describe("health: liveness and readiness", function () {
    this.timeout(60_000);
    const table = `decant_health_${process.pid}`;
    let proxy: PausableProxy;
    let s: Running;
    let health: Awaited<ReturnType<typeof healthClient>>;
    const http = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}${path}`, { signal: AbortSignal.timeout(2000) });
      return { status: r.status, body: await r.text() };
    };
    const grpcStatuses = async () => [await health.check(""), await health.check("decant.v1.Store")];

    before(async () => {
      const url = new URL(TEST_URLS.postgres);
      proxy = await startPausableProxy({ host: url.hostname, port: Number(url.port || 5432) });
      url.host = proxy.address;
      url.searchParams.set("table", table);
      url.searchParams.set("timeout_ms", "1000");
      s = await startTestSidecar({ DECANT_CURRENT: url.toString() });
      health = await healthClient(s.sidecar.grpcPort);
    });
    after(async () => {
      proxy?.resume();
      health?.close();
      await s?.stop();
      await proxy?.close();
      const admin = new pg.Client({ connectionString: TEST_URLS.postgres });
      await admin.connect();
      await admin.query(`DROP TABLE IF EXISTS public.${table}`);
      await admin.end();
    });

    it("is ready and live while the store answers", async () => {
      for (const path of ["/livez", "/healthz", "/readyz"]) expect(await http(path), path).to.deep.equal({ status: 200, body: "ok\n" });
      expect(await grpcStatuses()).to.deep.equal(["SERVING", "SERVING"]);
    });

    it("stops being ready, but stays live, while the store does not answer; and is ready again after", async () => {
      proxy.pause();
      const pausedAt = Date.now();
      await waitFor(async () => (await http("/readyz")).status === 503, "/readyz to answer 503", BOUND_MS);
      const readyz = await http("/readyz");
      expect(readyz.body).to.match(/^not ready: store unreachable: .*postgres/);
      await waitFor(async () => (await grpcStatuses()).every((st) => st === "NOT_SERVING"), "gRPC health NOT_SERVING", BOUND_MS);
      expect(Date.now() - pausedAt).to.be.below(BOUND_MS);
      for (const path of ["/livez", "/healthz"]) expect(await http(path), path).to.deep.equal({ status: 200, body: "ok\n" });
      expect(await health.check("decant.v1.Migration"), "the admin service still answers").to.equal("SERVING");

      proxy.resume();
      await waitFor(async () => (await http("/readyz")).status === 200, "/readyz to answer 200 again", 20_000);
      await waitFor(async () => (await grpcStatuses()).every((st) => st === "SERVING"), "gRPC health SERVING again", 20_000);
      await s.client.put("health", "k", Buffer.from("v")); // and the store serves again
    });
  });
}

describe("health: readiness follows the migration layer's fail-closed state", function () {
  it("is not ready while writes fail closed, though the store answers", async () => {
    const s = await startTestSidecar({ DECANT_LEASE_MS: "1000", DECANT_HEARTBEAT_MS: "100" });
    try {
      const health = await healthClient(s.sidecar.grpcPort);
      try {
        expect(await health.check("")).to.equal("SERVING");
        await s.sidecar.controller.stop(); // no more renewals: the lease runs out
        await waitFor(async () => (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/readyz`)).status === 503, "/readyz 503", BOUND_MS);
        const body = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/readyz`)).text();
        expect(body).to.include("decant_fail_closed is 1");
        await waitFor(async () => (await health.check("decant.v1.Store")) === "NOT_SERVING", "gRPC health NOT_SERVING", BOUND_MS);
        expect((await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/livez`)).status).to.equal(200);
      } finally {
        health.close();
      }
    } finally {
      await s.stop();
    }
  });
});

describe("health: while the sidecar drains", function () {
  it("/readyz answers 503 (stopping) while /livez still answers", async () => {
    const s = await startTestSidecar({ DECANT_DRAIN_TIMEOUT_MS: "3000" });
    const health = await healthClient(s.sidecar.grpcPort);
    try {
      // An open Watch is a call in flight: the drain waits for it, up to the drain timeout.
      const watch = health.watch("");
      watch.on("error", () => {});
      await new Promise((r) => watch.once("data", r));
      const stopped = s.stop();
      const url = `http://127.0.0.1:${s.sidecar.metricsPort}`;
      const readyz = await fetch(`${url}/readyz`);
      expect(readyz.status).to.equal(503);
      expect(await readyz.text()).to.equal("not ready: the sidecar is stopping\n");
      expect((await fetch(`${url}/livez`)).status).to.equal(200);
      watch.cancel();
      await stopped;
    } finally {
      health.close();
    }
  });
});
