// Issue 16: one backfill spread over real sidecar processes and over backfill-worker processes.
// Three sidecars share a backfill of 20k keys with writers through all three; one is SIGKILLed
// and one SIGSTOPped past its segment lease, then SIGCONTed; the backfill finishes, no segment
// is copied by two workers at once, and a direct comparison of both stores finds no difference.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import type { DecantClient } from "../../src/client/client.js";
import type { Store } from "../../src/protocol/store.js";
import type { RawItem } from "../../src/protocol/types.js";
import { compareStores, waitFor } from "../support/migration.js";
import { freePort } from "../support/ports.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";
import { killAllSidecars, scrapeMetric, startSidecarProcess, type LogLine, type SidecarProcess } from "../support/processes.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const run = randomBytes(4).toString("hex");
const prefix = `decant_spread_${run}`;
const ok = await postgresAvailable();
const table = (name: string): string => {
  const url = new URL(TEST_URLS.postgres);
  url.searchParams.set("table", `${prefix}_${name}`);
  return url.href;
};
const LEASE_MS = 2000;
const FAST = { DECANT_HEARTBEAT_MS: "100", DECANT_LEASE_MS: "2000", DECANT_REPLICA_TTL_MS: "7500", DECANT_BACKFILL_LEASE_MS: String(LEASE_MS), DECANT_FENCE_TIMEOUT_MS: "10000", DECANT_LOG_LEVEL: "debug" };
const status = (client: DecantClient) => client.call("migration", "GetStatus", {});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function preload(store: Store, ns: string, total: number): Promise<void> {
  for (let start = 0; start < total; start += 500) {
    const batch: RawItem[] = [];
    for (let i = start; i < start + 500; i++) batch.push(i % 20 === 0 ? { key: `k${String(i).padStart(6, "0")}`, value: null, version: 2n } : { key: `k${String(i).padStart(6, "0")}`, value: Buffer.from(`preload ${i}`), version: 1n });
    await store.applyIfNewer(ns, batch);
  }
}

/** Writers through every client until stopped; a sidecar that is killed or paused just fails or waits. */
function writers(clients: DecantClient[], ns: string, total: number) {
  let stopped = false;
  let ops = 0;
  const loops = clients.map(async (c, w) => {
    for (let i = 0; !stopped; i++) {
      const key = `k${String((i * 7919 + w * 104729) % total).padStart(6, "0")}`;
      try {
        if (i % 9 === 0) await c.call("store", "Delete", { namespace: ns, key });
        else await c.call("store", "Put", { namespace: ns, key, value: Buffer.from(`live ${w} ${i}`) });
        ops++;
      } catch {
        await sleep(50);
      }
    }
  });
  return {
    get ops() {
      return ops;
    },
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * "No segment copied by two workers at once": every page a worker writes is logged (after its
 * lease check) with the segment's token; per segment, once a newer token has written a page no
 * older token may write one.
 */
function interleavings(pages: LogLine[]): string[] {
  const bySegment = new Map<number, LogLine[]>();
  for (const p of pages) bySegment.set(Number(p.segment), [...(bySegment.get(Number(p.segment)) ?? []), p]);
  const out: string[] = [];
  for (const [segment, list] of bySegment) {
    list.sort((a, b) => Number(a.at) - Number(b.at));
    let highest = 0;
    for (const p of list) {
      if (Number(p.token) < highest) out.push(`segment ${segment}: ${String(p.owner)} (token ${String(p.token)}) wrote a page after token ${highest} had`);
      highest = Math.max(highest, Number(p.token));
    }
  }
  return out;
}

interface Worker {
  exit: Promise<number | null>;
  logs: string[];
  kill(): void;
}

function startWorker(env: Record<string, string>): Worker {
  const inherited: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(inherited)) if (k.startsWith("DECANT_") && !k.startsWith("DECANT_TEST_")) delete inherited[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "backfill-worker"], { cwd: ROOT, env: { ...inherited, DECANT_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  const logs: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (d: string) => logs.push(...d.split("\n").filter((l) => l.trim())));
  return { exit: new Promise((resolve) => child.once("exit", (code) => resolve(code))), logs, kill: () => child.kill("SIGKILL") };
}

/** Nothing listens on the port any more (the worker closed it on exit). */
async function expectRefused(port: number): Promise<void> {
  const err = await fetch(`http://127.0.0.1:${port}/metrics`).then(() => undefined, (e: unknown) => e);
  expect(err, "the port is closed once the worker exits").to.be.instanceOf(Error);
}

const pageLines = (lines: string[]): LogLine[] => lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine).filter((l) => l.message === "backfill page");

if (ok) {
  describe("backfill spread over replicas and workers (issue 16)", function () {
    this.timeout(300_000);
    const opened: Store[] = [];
    const open = async (url: string) => {
      const s = await openStore(url);
      opened.push(s);
      return s;
    };
    after(async function () {
      this.timeout(60_000);
      await killAllSidecars();
      for (const s of opened) await s.close().catch(() => undefined);
      const c = new pg.Client({ connectionString: TEST_URLS.postgres });
      await c.connect();
      const rows = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [`${prefix}%`]);
      for (const { t } of rows.rows) await c.query(`DROP TABLE IF EXISTS public.${t}`);
      await c.end();
    });

    it("three sidecars share one backfill through a SIGKILL and a SIGSTOP past the lease; no segment is copied twice at once; the stores end equal", async function () {
      const ns = "items";
      const total = 20_000;
      const currentUrl = table("three_cur");
      const targetUrl = table("three_tgt");
      const current = await open(currentUrl);
      const target = await open(targetUrl);
      await preload(current, ns, total);
      const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "2", ...FAST };
      const procs = await Promise.all(["s-a", "s-b", "s-c"].map((id) => startSidecarProcess({ ...env, DECANT_REPLICA_ID: id })));
      const [a, b, c] = procs as [SidecarProcess, SidecarProcess, SidecarProcess];
      const load = writers(procs.map((p) => p.client), ns, total);
      try {
        await a.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(a.client)).active, "DUAL_WRITE active on all three");
        await a.client.call("migration", "StartBackfill", { rate_limit: 1500, concurrency: 4 });
        const runners = new Set<string>();
        let segmentsSeen = { total: 0, running: 0 };
        await waitFor(
          async () => {
            const bf = (await status(a.client)).backfill;
            for (const w of bf.workers as { id: string; segments: number }[]) runners.add(w.id);
            segmentsSeen = { total: bf.segments_total, running: Math.max(segmentsSeen.running, bf.segments_running) };
            if (bf.state !== "running") throw new Error(`the backfill is ${bf.state} before the faults: ${bf.error}`);
            return runners.has("s-b") && runners.has("s-c") && Number(bf.scanned) >= 3000;
          },
          "segments to run on s-b and s-c",
          90_000,
        );
        await c.kill();
        process.kill(b.pid, "SIGSTOP");
        await sleep(2 * LEASE_MS + 1000);
        process.kill(b.pid, "SIGCONT");
        await waitFor(
          async () => {
            const bf = (await status(a.client)).backfill;
            if (bf.state === "failed") throw new Error(`backfill failed: ${bf.error}`);
            return bf.state === "done";
          },
          "the backfill to finish",
          180_000,
        );
        await load.stop();
        await waitFor(async () => (await status(a.client)).repair_journal_depth === "0", "the repair journal to drain", 60_000);
        const bf = (await status(a.client)).backfill;
        const diff = await compareStores(current, target, [ns]);
        const pages = procs.flatMap((p) => p.jsonLogs().filter((l) => l.message === "backfill page"));
        const clash = interleavings(pages);
        const takeovers = procs.flatMap((p) => p.jsonLogs().filter((l) => l.message.includes("took over the backfill segment")));
        console.log(`      ran on ${[...runners].sort().join(", ")}; ${pages.length} pages, ${takeovers.length} takeovers; scanned ${bf.scanned}/${total}; ${load.ops} live writes`);
        expect(runners.size, "segments run by at least two replicas").to.be.at.least(2);
        expect(segmentsSeen.total, "GetStatus shows the segments").to.be.at.least(4);
        expect(segmentsSeen.running).to.be.at.least(2);
        expect([bf.segments_done, bf.segments_running, bf.segments_waiting, bf.eta_seconds]).to.deep.equal([bf.segments_total, 0, 0, 0]);
        await waitFor(async () => (await scrapeMetric(a.metricsPort, "decant_backfill_segments", { state: "done" })) === bf.segments_total, "the segment gauge to show every segment done", 10_000);
        expect(takeovers.length, "the killed and the paused replica's segments were taken over").to.be.at.least(1);
        expect(clash, clash.join("\n")).to.deep.equal([]);
        expect(Number(bf.scanned), "resumed from checkpoints, not from zero").to.be.below(1.5 * total);
        expect(diff, diff.slice(0, 10).join("\n")).to.deep.equal([]);
      } finally {
        process.kill(b.pid, "SIGCONT");
        await load.stop();
        await Promise.all(procs.map((p) => p.stop()));
      }
    });

    it("backfill-worker processes alone finish a backfill and exit 0; one started afterwards exits 0 at once", async function () {
      const ns = "items";
      const total = 20_000;
      const currentUrl = table("workers_cur");
      const targetUrl = table("workers_tgt");
      const current = await open(currentUrl);
      const target = await open(targetUrl);
      await preload(current, ns, total);
      // The sidecar runs no segment itself: the workers do all of it.
      const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, ...FAST, DECANT_LOG_LEVEL: "info" };
      const side = await startSidecarProcess({ ...env, DECANT_REPLICA_ID: "w-side", DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "0" });
      try {
        await side.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(side.client)).active, "DUAL_WRITE active");
        await side.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 4 });
        const workers = ["w-1", "w-2"].map((id) => startWorker({ ...env, DECANT_LOG_LEVEL: "debug", DECANT_REPLICA_ID: id, DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "2" }));
        const codes = await Promise.race([Promise.all(workers.map((w) => w.exit)), sleep(180_000).then(() => "timeout" as const)]);
        if (codes === "timeout") workers.forEach((w) => w.kill());
        expect(codes).to.deep.equal([0, 0]);
        const bf = (await status(side.client)).backfill;
        expect(bf.state).to.equal("done");
        const pages = workers.flatMap((w) => pageLines(w.logs));
        expect(new Set(pages.map((p) => p.owner)).size, "both workers copied segments").to.equal(2);
        expect(pages.every((p) => p.owner !== "w-side"), "the sidecar copied nothing").to.equal(true);
        expect(await compareStores(current, target, [ns])).to.deep.equal([]);
        const t0 = Date.now();
        const late = startWorker({ ...env, DECANT_REPLICA_ID: "w-late" });
        expect(await late.exit).to.equal(0);
        console.log(`      two workers: ${pages.length} pages; a late worker exited 0 after ${Date.now() - t0} ms`);
      } finally {
        await side.stop();
      }
    });
    it("a backfill-worker serves /metrics on metrics_listen: its own copied items, its rate, its CPU; a port already taken is logged and the worker still copies", async function () {
      const ns = "items";
      const total = 4500; // 3 segments: each worker (1 at a time) copies at least one
      const currentUrl = table("metrics_cur");
      const targetUrl = table("metrics_tgt");
      await preload(await open(currentUrl), ns, total);
      const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, ...FAST, DECANT_LOG_LEVEL: "info", DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "1" };
      const side = await startSidecarProcess({ ...env, DECANT_REPLICA_ID: "m-side", DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "0" });
      try {
        await side.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(side.client)).active, "DUAL_WRITE active");
        // Slow (1,000 items/s over both workers), so the copy still runs when it is scraped; paused
        // until both workers are up, so the second one meets the port the first one holds.
        await side.client.call("migration", "StartBackfill", { rate_limit: 1000, concurrency: 4 });
        await side.client.call("migration", "PauseBackfill", {});
        const port = await freePort();
        const worker = startWorker({ ...env, DECANT_REPLICA_ID: "m-1", DECANT_METRICS_LISTEN: `127.0.0.1:${port}` });
        await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/livez`).then((r) => r.status, () => 0)) === 200, "the worker's /livez");
        const other = startWorker({ ...env, DECANT_REPLICA_ID: "m-2", DECANT_METRICS_LISTEN: `127.0.0.1:${port}` });
        await waitFor(async () => other.logs.some((l) => l.includes("backfill-worker started")), "the second worker started");
        expect(other.logs.some((l) => l.includes("serves no /metrics")), "the second worker says its port is taken").to.equal(true);
        await side.client.call("migration", "ResumeBackfill", {});
        await waitFor(async () => (await scrapeMetric(port, "decant_backfill_items_total", { result: "copied" })) > 0, "the worker's copied items on its /metrics");
        expect(await scrapeMetric(port, "decant_process_cpu_seconds_total")).to.be.greaterThan(0);
        await waitFor(async () => (await scrapeMetric(port, "decant_backfill_worker_items_per_second", { worker: "m-1" })) > 0, "the worker's rate from the segment records");
        expect(await Promise.all([worker.exit, other.exit])).to.deep.equal([0, 0]);
        expect((await status(side.client)).backfill.state).to.equal("done");
        await expectRefused(port);
      } finally {
        await side.stop();
      }
    });
  });
}
