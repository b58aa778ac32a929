// Issue 17: a sidecar that is merely busy must not fail closed. Two loads, each for 60 s on a
// real `decant serve` process in DUAL_WRITE with a full-speed backfill (restarted whenever it
// finishes) and writers: (a) its data-store pool saturated by slow queries (a TCP delay proxy in
// front of the data stores, a small pool; the control store is reached directly, as a
// deployment with its control record on its own path would), and (b) its process sharing one
// core with a CPU burner (taskset). The sidecar must keep its lease the whole time: no client
// error, never fail closed, no "cannot renew" warning, its view of the control record never
// older than the lease.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import type { RawItem } from "../../src/protocol/types.js";
import type { DecantClient } from "../../src/client/client.js";
import { waitFor } from "../support/migration.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";
import { killAllSidecars, scrapeMetric, startSidecarProcess, type SidecarProcess } from "../support/processes.js";

const LOAD_MS = 60_000;
const LEASE_MS = 5000; // the default lease: what a deployment runs with
const WRITERS = 16;
const PRELOAD = 8000;
const NS = ["lease_a", "lease_b"];

const run = randomBytes(4).toString("hex");
const prefix = `decant_lease_${run}`;

const pgOk = await postgresAvailable();
const hasTaskset = spawnSync("taskset", ["-V"]).status === 0;

const withParams = (base: string, params: Record<string, string>): string => {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
};

/** A TCP proxy that delays every chunk by `delayMs` in each direction, in order (a slow network or a slow server). */
async function startDelayProxy(target: { host: string; port: number }, delayMs: number): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket) =>
    from.on("data", (chunk) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined).on("close", () => {
        sockets.delete(s);
        setTimeout(() => (client.destroy(), upstream.destroy()), delayMs);
      });
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    host: "127.0.0.1",
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Load {
  ops: number;
  errors: string[];
}

/** Puts, gets and deletes on random keys over the preloaded range, until stopped. */
async function writer(client: DecantClient, load: Load, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const ns = NS[Math.floor(Math.random() * NS.length)]!;
    const key = `key_${String(Math.floor(Math.random() * PRELOAD * 1.1)).padStart(6, "0")}`;
    const r = Math.random();
    try {
      if (r < 0.5) await client.put(ns, key, randomBytes(200));
      else if (r < 0.85) await client.get(ns, key);
      else await client.delete(ns, key);
      load.ops++;
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (load.errors.length < 20) load.errors.push(`${ns}/${key}: ${e.code} ${e.details ?? e.message}`);
      else load.errors.push("…");
    }
  }
}

/** decant_control_renewal_seconds as "count ≤ bucket" pairs: how long renewals took. */
async function renewalHistogram(metricsPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const counts = [...text.matchAll(/^decant_control_renewal_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  return counts.map(([le, n], i) => `${n - (i ? counts[i - 1]![1] : 0)}≤${le}`).filter((x) => !x.startsWith("0≤")).join(" ");
}

/**
 * Preloads the current store, starts a sidecar (`pin` runs once it is up), walks it to an active
 * DUAL_WRITE, then runs writers and a backfill restarted whenever it finishes, for LOAD_MS.
 */
async function underLoad(urls: { current: string; target: string; control?: string; direct: string }, report: (line: string) => void, pin?: (p: SidecarProcess) => Promise<void>): Promise<void> {
  const preload = async () => {
    const store = await openStore(urls.direct);
    try {
      for (const ns of NS) {
        for (let start = 0; start < PRELOAD; start += 1000) {
          const items: RawItem[] = Array.from({ length: 1000 }, (_, j) => ({ key: `key_${String(start + j).padStart(6, "0")}`, value: randomBytes(200 + ((start + j) % 300)), version: 1n }));
          await store.applyIfNewer(ns, items);
        }
      }
    } finally {
      await store.close();
    }
  };
  // The sidecar starts while the current store is loaded (its start-up takes a few seconds too).
  const [p] = await Promise.all([
    startSidecarProcess({
      DECANT_CURRENT: urls.current,
      DECANT_TARGET: urls.target,
      ...(urls.control ? { DECANT_CONTROL: urls.control } : {}),
      DECANT_REPLICA_ID: `lease-${run}`,
      DECANT_LEASE_MS: String(LEASE_MS),
    }),
    preload(),
  ]);
  const load: Load = { ops: 0, errors: [] };
  let stop = false;
  let writers: Promise<void>[] = [];
  try {
    await pin?.(p);
    await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }, 60_000);
    await waitFor(async () => (await p.client.call("migration", "GetStatus", {})).active, "DUAL_WRITE active");
    writers = Array.from({ length: WRITERS }, () => writer(p.client, load, () => stop));
    let rounds = 0;
    let backfilled = 0;
    let maxViewAgeS = 0;
    let maxLoopLagS = 0;
    let failClosedSeen = 0;
    const began = Date.now();
    while (Date.now() - began < LOAD_MS) {
      const st = await p.client.call("migration", "GetStatus", {});
      if (st.backfill.state !== "running") {
        if (st.backfill.state === "done") backfilled += Number(st.backfill.scanned);
        if (st.backfill.state === "failed") throw new Error(`backfill failed: ${st.backfill.error}`);
        await p.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 4 });
        rounds++;
      }
      maxViewAgeS = Math.max(maxViewAgeS, await scrapeMetric(p.metricsPort, "decant_control_view_age_seconds"));
      maxLoopLagS = Math.max(maxLoopLagS, await scrapeMetric(p.metricsPort, "decant_nodejs_eventloop_lag_max_seconds"));
      failClosedSeen += await scrapeMetric(p.metricsPort, "decant_fail_closed");
      await new Promise((r) => setTimeout(r, 250));
    }
    stop = true;
    await Promise.all(writers);
    const st = await p.client.call("migration", "GetStatus", {});
    backfilled += st.backfill.state === "done" ? 0 : Number(st.backfill.scanned);
    const renewalSum = await scrapeMetric(p.metricsPort, "decant_control_renewal_seconds_sum");
    const renewalCount = await scrapeMetric(p.metricsPort, "decant_control_renewal_seconds_count");
    const renewWarnings = p.logs.filter((l) => l.includes("cannot renew the view") || l.includes("refuses writes"));
    const renewalBuckets = await renewalHistogram(p.metricsPort);
    report(
      `${load.ops} client ops (${load.errors.length} errors), ${backfilled} items backfilled in ${rounds} runs, oldest view ${maxViewAgeS.toFixed(2)} s (lease ${LEASE_MS / 1000} s), ` +
        `worst event-loop lag ${(maxLoopLagS * 1000).toFixed(0)} ms, renewals ${renewalBuckets}, ${renewWarnings.length} renewal warnings`,
    );
    expect(load.errors, "client errors").to.deep.equal([]);
    expect(renewWarnings, "renewal warnings in the sidecar's log").to.deep.equal([]);
    expect(failClosedSeen, "samples of decant_fail_closed = 1").to.equal(0);
    expect(maxViewAgeS, "oldest view of the control record seen (s)").to.be.below(LEASE_MS / 1000);
    expect(backfilled, "items the backfill scanned (proves it ran)").to.be.above(PRELOAD);
    expect(load.ops, "client operations (proves the writers ran)").to.be.above(1000);
  } finally {
    stop = true;
    await Promise.all(writers);
    await p.stop();
  }
}

(pgOk ? describe : describe.skip)("migration: the lease under load (issue 17)", function () {
  this.timeout(LOAD_MS + 60_000);
  const tables: string[] = [];
  const figures: string[] = [];

  after(async function () {
    this.timeout(30_000);
    await killAllSidecars();
    const c = new pg.Client({ connectionString: TEST_URLS.postgres });
    await c.connect();
    try {
      for (const t of tables) await c.query(`DROP TABLE IF EXISTS public."${t}"`);
    } finally {
      await c.end();
    }
    if (figures.length) console.log(`\n  lease under load:\n${figures.map((f) => `    ${f}`).join("\n")}\n`);
  });

  it("keeps its lease for 60 s while its data-store pool is saturated by slow queries", async function () {
    const pgUrl = new URL(TEST_URLS.postgres);
    // 15 ms each way on every chunk: each statement takes >= 30 ms, so 4 connections serve at
    // most ~130 statements/s against 16 writers and a backfill of 4 writes in flight.
    const proxy = await startDelayProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) }, 15);
    try {
      const cur = `${prefix}_a_cur`;
      const tgt = `${prefix}_a_tgt`;
      tables.push(cur, tgt);
      const slow = (table: string) => {
        const u = new URL(withParams(TEST_URLS.postgres, { table, pool_max: "4" }));
        u.host = `${proxy.host}:${proxy.port}`;
        return u.href;
      };
      await underLoad({ current: slow(cur), target: slow(tgt), control: withParams(TEST_URLS.postgres, { table: cur }), direct: withParams(TEST_URLS.postgres, { table: cur }) }, (line) =>
        figures.push(`saturated pool: ${line}`),
      );
    } finally {
      await proxy.close();
    }
  });

  (hasTaskset ? it : it.skip)("keeps its lease for 60 s while it shares its core with a CPU burner", async function () {
    const cur = `${prefix}_b_cur`;
    const tgt = `${prefix}_b_tgt`;
    tables.push(cur, tgt);
    const core = "0";
    let burner: ChildProcess | undefined;
    try {
      await underLoad(
        { current: withParams(TEST_URLS.postgres, { table: cur }), target: withParams(TEST_URLS.postgres, { table: tgt }), direct: withParams(TEST_URLS.postgres, { table: cur }) },
        (line) => figures.push(`one core shared with a CPU burner: ${line}`),
        async (p) => {
          // Every thread of the sidecar (V8 and libuv's included) on one core, with a busy loop beside it.
          const pinned = spawnSync("taskset", ["-a", "-p", "-c", core, String(p.pid)]);
          expect(pinned.status, `taskset: ${pinned.stderr}`).to.equal(0);
          burner = spawn("taskset", ["-c", core, process.execPath, "-e", "for (;;) {}"], { stdio: "ignore" });
        },
      );
    } finally {
      if (burner?.pid !== undefined && burner.exitCode === null) burner.kill("SIGKILL");
    }
  });
});
