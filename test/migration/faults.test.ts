// Faults during a migration (DESIGN.md §4 rules 2, 4 and 5), on real sidecar processes: a target
// outage during DUAL_WRITE (nothing fails, the repair journal catches up), a large journal backlog
// (no false fail-closed), a backfill runner killed mid-way (the other replica resumes from the
// checkpoint), and a control store that becomes unreachable (the sidecar fails closed within its
// lease, and recovers). Outages are made with a small TCP proxy in front of PostgreSQL, either
// stopped (connections refused and dropped mid-query) or partitioned (connections hang).
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import type { Store } from "../../src/protocol/store.js";
import { CONTROL_NAMESPACE, type RawItem } from "../../src/protocol/types.js";
import { journalKey } from "../../src/migration/control.js";
import type { DecantClient } from "../../src/client/client.js";
import { compareStores, waitFor } from "../support/migration.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";
import { startDynalite } from "../support/dynalite.js";
import { killAllSidecars, scrapeMetric, startSidecarProcess, type SidecarProcess } from "../support/processes.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy on loopback in front of host:port, to make outages:
 * - stop() closes the listener and destroys every open connection (new connections are
 *   refused, open ones drop mid-query); start() listens again on the same port;
 * - partition() keeps every connection open but forwards nothing either way (a black hole:
 *   calls hang until their timeouts); heal() forwards again, delivering what was held back.
 */
class TcpProxy {
  port = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private partitioned = false;
  /** Bytes held back during a partition, per destination socket, in order. */
  private readonly held = new Map<Socket, Buffer[]>();
  connections = 0;

  constructor(
    private readonly host: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    this.heal();
    if (this.server) return;
    const server = createServer((client) => {
      this.connections++;
      const upstream = connect({ host: this.host, port: this.upstreamPort });
      this.sockets.add(client);
      this.sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
        this.held.delete(client);
        this.held.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (this.partitioned) {
          const q = this.held.get(to) ?? [];
          q.push(chunk);
          this.held.set(to, q);
        } else if (!to.destroyed) to.write(chunk);
      };
      client.on("data", forward(upstream));
      upstream.on("data", forward(client));
      // A half-close is forwarded only when not partitioned; during a partition the peer sees nothing.
      client.on("end", () => !this.partitioned && upstream.end());
      upstream.on("end", () => !this.partitioned && client.end());
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    this.heal();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.held.clear();
    await Promise.race([closed, sleep(2000)]); // close() waits for every connection; never hang on one
  }

  /** A black hole: connections stay open (new ones are accepted) but nothing is forwarded. */
  partition(): void {
    this.partitioned = true;
  }

  /** Forwards again, delivering what was held back (a late delivery, as when a real partition heals). */
  heal(): void {
    if (!this.partitioned) return;
    this.partitioned = false;
    for (const [to, chunks] of this.held) if (!to.destroyed) for (const c of chunks) to.write(c);
    this.held.clear();
  }

  /** `base` (a postgres URL) with its host and port pointing at this proxy. */
  url(base: string, params: Record<string, string>): string {
    const url = new URL(base);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url.href;
  }
}

const withParams = (base: string, params: Record<string, string>): string => {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
};

const ok = await postgresAvailable();

const run = randomBytes(4).toString("hex");
const prefix = `decant_faults_${run}`;
const FAST = { DECANT_HEARTBEAT_MS: "100", DECANT_LEASE_MS: "2000", DECANT_REPLICA_TTL_MS: "7500", DECANT_BACKFILL_LEASE_MS: "2000", DECANT_FENCE_TIMEOUT_MS: "10000" };
const pgUpstream = new URL(TEST_URLS.postgres);

interface Traffic {
  ops: number;
  errors: string[];
  stop(): Promise<void>;
}

/** Writers (puts and deletes on a fixed key set) through `clients`, counting every failure. */
function traffic(clients: DecantClient[], ns: string, keys: number, perClient = 2, accept: (code: grpc.status) => boolean = () => false): Traffic {
  let stopped = false;
  const t: Traffic = {
    ops: 0,
    errors: [],
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
  const loops = clients.flatMap((client, ci) =>
    Array.from({ length: perClient }, async (_, w) => {
      let n = 0;
      while (!stopped) {
        n++;
        const key = `k${Math.floor(Math.random() * keys)}`;
        try {
          if (n % 6 === 0) await client.delete(ns, key);
          else await client.put(ns, key, Buffer.from(`${ci}.${w}.${n}`));
          t.ops++;
        } catch (err) {
          const e = err as grpc.ServiceError;
          if (!accept(e.code)) t.errors.push(`${key}: ${e.code} ${e.details ?? e.message}`);
        }
        await sleep(2);
      }
    }),
  );
  return t;
}

async function dropTables(): Promise<void> {
  const c = new pg.Client({ connectionString: TEST_URLS.postgres });
  await c.connect();
  try {
    const rows = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [`${prefix}%`]);
    for (const { t } of rows.rows) await c.query(`DROP TABLE IF EXISTS public.${t}`);
  } finally {
    await c.end();
  }
}

const status = (client: DecantClient) => client.call("migration", "GetStatus", {});

if (ok) {
  describe("migration faults", function () {
    this.timeout(240_000);
    const dir = mkdtempSync(join(tmpdir(), "decant-faults-"));
    const proxy = new TcpProxy(pgUpstream.hostname, Number(pgUpstream.port || 5432));
    const opened: Store[] = [];
    const open = async (url: string) => {
      const s = await openStore(url);
      opened.push(s);
      return s;
    };

    before(async () => proxy.start());
    after(async function () {
      this.timeout(60_000);
      await killAllSidecars();
      await proxy.stop();
      for (const s of opened) await s.close().catch(() => undefined);
      await dropTables().catch((err) => console.warn("cleanup failed:", err));
      rmSync(dir, { recursive: true, force: true });
    });
    afterEach(async () => proxy.start()); // whatever a test did, the next one starts with the proxy up

    type Outage = "stop" | "partition";
    const cut = async (mode: Outage) => (mode === "stop" ? proxy.stop() : proxy.partition());
    const restore = async (mode: Outage) => (mode === "stop" ? proxy.start() : proxy.heal());
    const describeOutage = (mode: Outage) => (mode === "stop" ? "proxy stopped, open connections dropped" : "network partition, connections hang");

    /** Rule 4: a secondary (target) outage during DUAL_WRITE fails no request and is repaired. */
    async function targetOutage(mode: Outage): Promise<void> {
      const ns = "users";
      const table = `${prefix}_outage_${mode}`;
      const currentUrl = `sqlite:${join(dir, `outage-${mode}.db`)}`;
      const targetDirect = withParams(TEST_URLS.postgres, { table });
      const targetViaProxy = proxy.url(TEST_URLS.postgres, { table, timeout_ms: "1000" });
      const p = await startSidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetViaProxy, DECANT_REPLICA_ID: `outage-${mode}`, ...FAST });
      let load: Traffic | undefined;
      try {
        await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(p.client)).active, "DUAL_WRITE active");
        load = traffic([p.client], ns, 400, 3);
        await sleep(1000);
        const failuresBefore = await scrapeMetric(p.metricsPort, "decant_secondary_write_failures_total");
        const opsBefore = load.ops;

        await cut(mode);
        const outageStarted = Date.now();
        let maxDepth = 0;
        while (Date.now() - outageStarted < 3000 && !p.exited()) {
          const depth = await status(p.client).then((s) => Number(s.repair_journal_depth), () => 0);
          maxDepth = Math.max(maxDepth, depth);
          await sleep(200);
        }
        const failuresDuring = p.exited() ? failuresBefore : await scrapeMetric(p.metricsPort, "decant_secondary_write_failures_total");
        const opsDuring = load.ops - opsBefore;
        await restore(mode);
        const restored = Date.now();
        // First: a dropped connection must not take the sidecar down.
        expect(p.exited(), `the sidecar process died during the outage: ${p.logs.slice(-3).join("\n")}`).to.equal(false);

        await waitFor(async () => (await status(p.client)).repair_journal_depth === "0", "the repair journal to drain with traffic running", 60_000);
        const drainMs = Date.now() - restored;
        await sleep(500);
        await load.stop();
        await waitFor(async () => (await status(p.client)).repair_journal_depth === "0", "the repair journal to drain", 30_000);
        const current = await open(currentUrl);
        const target = await open(targetDirect);
        const diff = await compareStores(current, target, [ns]);
        console.log(
          `      target outage (${describeOutage(mode)}): ${opsDuring} writes succeeded during the 3 s outage; journal peak ${maxDepth}; ` +
            `decant_secondary_write_failures_total ${failuresBefore} → ${failuresDuring}; journal drained ${drainMs} ms after the target came back; ${load.ops} ops in all`,
        );

        expect(load.errors, load.errors.slice(0, 10).join("\n")).to.deep.equal([]);
        expect(opsDuring, "writes kept succeeding during the outage").to.be.greaterThan(0);
        expect(maxDepth, "GetStatus.repair_journal_depth grew").to.be.greaterThan(0);
        expect(failuresDuring, "decant_secondary_write_failures_total rose").to.be.greaterThan(failuresBefore);
        expect(diff, diff.slice(0, 10).join("\n")).to.deep.equal([]);
      } finally {
        await load?.stop();
        await restore(mode);
        await p.stop();
      }
    }

    // Regression (fixed in b3717f8): pg-pool removes its idle 'error' listener from a checked-out
    // client, so a connection dropped mid-query raised an uncaught 'error' in PostgresStore.q()
    // and the whole sidecar process died instead of journalling the failed secondary writes.
    it("target outage during DUAL_WRITE (proxy stopped): no request fails, the repair journal fills, drains after, and the stores converge", async function () {
      await targetOutage("stop");
    });

    it("target outage during DUAL_WRITE (network partition): no request fails, the repair journal fills, drains after, and the stores converge", async function () {
      await targetOutage("partition");
    });

    it("a large repair journal (target partitioned) does not make a healthy sidecar fail closed", async function () {
      // A long target outage under write traffic leaves many keys in the journal. The journal is
      // listed for the gauges and drained beside the heartbeat; none of that may delay the lease
      // renewal (on revisions before ff262cb, a 50,000-entry journal stretched every tick past a
      // 2 s lease, and a sidecar whose control store was healthy refused every write).
      const ns = "users";
      const entries = 50_000;
      const table = `${prefix}_backlog`;
      const currentUrl = withParams(TEST_URLS.postgres, { table });
      const targetViaProxy = proxy.url(TEST_URLS.postgres, { table: `${prefix}_backlog_tgt`, timeout_ms: "1000" });
      const p = await startSidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetViaProxy, DECANT_REPLICA_ID: "backlog", ...FAST });
      const current = await open(currentUrl);
      try {
        await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(p.client)).active, "DUAL_WRITE active");
        await p.client.put(ns, "k1", Buffer.from("v1"));
        proxy.partition();
        // A backlog as a long outage would leave it: entries for keys the target must be repaired with.
        const began = Date.now();
        for (let start = 0; start < entries; start += 500) {
          const items: RawItem[] = Array.from({ length: Math.min(500, entries - start) }, (_, j) => ({
            key: journalKey(ns, `k1/${start + j}`),
            value: Buffer.from(JSON.stringify({ ns, key: "k1", at: Date.now() })),
            version: 1n,
          }));
          await current.applyIfNewer(CONTROL_NAMESPACE, items);
        }
        const injectMs = Date.now() - began;
        let ok = 0;
        const refused: string[] = [];
        const watchFrom = Date.now();
        while (Date.now() - watchFrom < 10_000) {
          try {
            await p.client.call("store", "Put", { namespace: ns, key: `w${ok}`, value: Buffer.from("x") }, 10_000);
            ok++;
          } catch (err) {
            const e = err as grpc.ServiceError;
            refused.push(`${e.code} ${e.details}`);
          }
          await sleep(100);
        }
        const depth = Number((await status(p.client)).repair_journal_depth);
        console.log(`      journal backlog: ${entries} entries injected in ${injectMs} ms; over 10 s with the target partitioned ${ok} writes succeeded, ${refused.length} failed; journal depth ${depth}`);
        expect(p.exited(), "the sidecar process is still running").to.equal(false);
        expect(refused, refused.slice(0, 5).join("\n")).to.deep.equal([]);
        expect(ok).to.be.greaterThan(0);
        expect(depth).to.be.at.least(entries);
      } finally {
        proxy.heal();
        await p.stop();
      }
    });

    it("crash mid-backfill: the runner is SIGKILLed, the other replica takes over from the checkpoint", async function () {
      const ns = "items";
      const total = 20_000;
      const currentUrl = withParams(TEST_URLS.postgres, { table: `${prefix}_crash_cur` });
      const targetUrl = withParams(TEST_URLS.postgres, { table: `${prefix}_crash_tgt` });
      const current = await open(currentUrl);
      const target = await open(targetUrl);
      for (let start = 0; start < total; start += 500) {
        const batch: RawItem[] = [];
        for (let i = start; i < start + 500; i++) batch.push(i % 20 === 0 ? { key: `k${i}`, value: null, version: 2n } : { key: `k${i}`, value: Buffer.from(`preload ${i} ${"y".repeat(80)}`), version: 1n });
        await current.applyIfNewer(ns, batch);
      }
      const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, ...FAST };
      const procs = await Promise.all([startSidecarProcess({ ...env, DECANT_REPLICA_ID: "crash-a" }), startSidecarProcess({ ...env, DECANT_REPLICA_ID: "crash-b" })]);
      let load: Traffic | undefined;
      try {
        const [a] = procs as [SidecarProcess, SidecarProcess];
        await a.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(a.client)).active, "DUAL_WRITE active");
        // ~2,500 items/s: about 8 s for the whole backfill, checkpointed every round.
        await a.client.call("migration", "StartBackfill", { rate_limit: 2500, concurrency: 4 });
        let runnerId = "";
        let scannedAtKill = 0;
        await waitFor(
          async () => {
            const bf = (await status(a.client)).backfill;
            runnerId = bf.runner.split(",")[0] ?? ""; // segments run on both replicas: kill one of them
            scannedAtKill = Number(bf.scanned);
            if (bf.state === "done") throw new Error("the backfill finished before it could be interrupted; lower the rate limit");
            return runnerId !== "" && scannedAtKill >= 4000;
          },
          "the backfill to be under way",
          60_000,
        );
        const runner = procs.find((p) => p.replicaId === runnerId)!;
        const survivor = procs.find((p) => p !== runner)!;
        expect(runner, `runner ${runnerId}`).to.not.equal(undefined);
        load = traffic([survivor.client], ns, total + 500, 2);
        const peakRunnerKb = runner.peakRssKb() ?? 0;
        await runner.kill();
        const killedAt = Date.now();

        let tookOverMs = 0;
        await waitFor(
          async () => {
            const bf = (await status(survivor.client)).backfill;
            if (!tookOverMs && !bf.runner.split(",").includes(runnerId) && bf.runner.includes(survivor.replicaId)) tookOverMs = Date.now() - killedAt;
            if (bf.state === "failed") throw new Error(`backfill failed: ${bf.error}`);
            return bf.state === "done";
          },
          "the survivor to finish the backfill",
          120_000,
        );
        await sleep(300);
        await load.stop();
        const bf = (await status(survivor.client)).backfill;
        await waitFor(async () => (await status(survivor.client)).repair_journal_depth === "0", "the repair journal to drain", 30_000);
        const diff = await compareStores(current, target, [ns]);
        const logs = survivor.jsonLogs().map((l) => l.message);
        console.log(
          `      crash: killed ${runnerId} (peak RSS ${Math.round(peakRunnerKb / 1024)} MiB) at scanned ${scannedAtKill}/${total}; ${survivor.replicaId} took over after ${tookOverMs} ms; final scanned ${bf.scanned}, copied ${bf.copied}, skipped ${bf.skipped}; ${load.ops} ops on the survivor`,
        );

        expect(load.errors, load.errors.slice(0, 10).join("\n")).to.deep.equal([]);
        expect(logs.some((m) => m.includes("took over the backfill")), "the survivor logs the takeover").to.equal(true);
        expect(Number(bf.scanned), "resumed from the checkpoint, not from zero").to.be.below(1.5 * total);
        expect(Number(bf.scanned)).to.be.at.least(total);
        expect(diff, diff.slice(0, 10).join("\n")).to.deep.equal([]);
      } finally {
        await load?.stop();
        await Promise.all(procs.map((p) => p.stop()));
      }
    });

    it("a backfill the target refuses for good (an item too large for DynamoDB) ends in state failed, with the reason in GetStatus", async function () {
      const ns = "items";
      const currentUrl = `sqlite:${join(dir, "bf-failed.db")}`;
      const current = await open(currentUrl);
      await current.applyIfNewer(ns, Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: Buffer.from(`v${i}`), version: 1n })));
      const dynalite = await startDynalite();
      const p = await startSidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: `dynamodb://bf_failed_${run}?region=us-east-1&endpoint=${dynalite.endpoint}`, DECANT_REPLICA_ID: "bf-failed", ...FAST });
      try {
        await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(p.client)).active, "DUAL_WRITE active");
        // Written behind the sidecar's back after the DUAL_WRITE gate checked the sizes: 500 KB.
        await current.applyIfNewer(ns, [{ key: "huge", value: Buffer.alloc(500 * 1024, 1), version: 1n }]);
        await p.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
        await waitFor(async () => (await status(p.client)).backfill.state !== "running", "the backfill to stop", 60_000);
        const bf = (await status(p.client)).backfill;
        console.log(`      backfill failed: ${bf.error}`);
        expect(bf.state).to.equal("failed");
        expect(bf.error).to.match(/items segment \d+: value: .*at most/);
        expect(p.jsonLogs().some((l) => l.message === "the backfill failed")).to.equal(true);
      } finally {
        await p.stop();
        await dynalite.stop();
      }
    });

    it("target outage mid-backfill: the failed round is redone from its checkpoint once the target is back", async function () {
      const ns = "items";
      const total = 12_000;
      const currentUrl = `sqlite:${join(dir, "bf-outage.db")}`;
      const table = `${prefix}_bf_outage`;
      const current = await open(currentUrl);
      for (let start = 0; start < total; start += 500) {
        await current.applyIfNewer(ns, Array.from({ length: 500 }, (_, j) => ({ key: `k${start + j}`, value: (start + j) % 25 === 0 ? null : Buffer.from(`v${start + j}`), version: 1n + BigInt(j % 3) })));
      }
      const p = await startSidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: proxy.url(TEST_URLS.postgres, { table, timeout_ms: "1000" }), DECANT_REPLICA_ID: "bf-outage", ...FAST });
      try {
        await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(p.client)).active, "DUAL_WRITE active");
        await p.client.call("migration", "StartBackfill", { rate_limit: 3000, concurrency: 4 });
        await waitFor(async () => Number((await status(p.client)).backfill.scanned) >= 3000, "the backfill to be under way");
        await cut("stop");
        let error = "";
        await waitFor(async () => ((error = (await status(p.client)).backfill.error ?? ""), error !== ""), "the failed round to be reported", 30_000);
        const during = (await status(p.client)).backfill;
        await restore("stop");
        await waitFor(async () => (await status(p.client)).backfill.state === "done", "the backfill to finish after the outage", 60_000);
        const bf = (await status(p.client)).backfill;
        const diff = await compareStores(current, await open(withParams(TEST_URLS.postgres, { table })), [ns]);
        console.log(`      backfill outage: round failed at scanned ${during.scanned}/${total} with "${error.slice(0, 80)}"; finished with scanned ${bf.scanned}, copied ${bf.copied}`);
        expect(during.state, "a failed round leaves the backfill running, to be retried").to.equal("running");
        expect(Number(bf.scanned)).to.be.at.least(total);
        expect(diff, diff.slice(0, 10).join("\n")).to.deep.equal([]);
      } finally {
        await restore("stop");
        await p.stop();
      }
    });

    /** Rule 2: a sidecar that cannot renew its view of the control record stops accepting writes within its lease. */
    async function failClosed(mode: Outage): Promise<void> {
      const ns = "users";
      const lease = 2000;
      const heartbeat = 100;
      const controlUrl = proxy.url(TEST_URLS.postgres, { table: `${prefix}_control_${mode}`, timeout_ms: "1000" });
      const p = await startSidecarProcess({
        DECANT_CURRENT: `sqlite:${join(dir, `closed-${mode}.db`)}`,
        DECANT_TARGET: withParams(TEST_URLS.postgres, { table: `${prefix}_closed_tgt_${mode}` }),
        DECANT_CONTROL: controlUrl,
        DECANT_REPLICA_ID: `closed-${mode}`,
        ...FAST,
      });
      try {
        await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
        await waitFor(async () => (await status(p.client)).active, "DUAL_WRITE active");
        await p.client.put(ns, "before", Buffer.from("ok"));

        await cut(mode);
        const cutAt = Date.now();
        let refusedAfter = -1;
        let lastSuccessAfter = -1;
        let other = "";
        let n = 0;
        while (Date.now() - cutAt < lease + heartbeat + 3000) {
          try {
            await p.client.call("store", "Put", { namespace: ns, key: `during${n++}`, value: Buffer.from("x") }, 5000);
            lastSuccessAfter = Date.now() - cutAt;
          } catch (err) {
            const e = err as grpc.ServiceError;
            if (e.code === grpc.status.UNAVAILABLE) {
              refusedAfter = Date.now() - cutAt;
              break;
            }
            other = `${e.code} ${e.details}`;
          }
          await sleep(50);
        }
        // A write may be refused before the lease lapses (its journal intent cannot be written);
        // the sidecar fails closed once the lease has lapsed.
        let closed = NaN;
        for (const until = cutAt + lease + heartbeat + 1500; Date.now() < until; await sleep(50)) {
          closed = await scrapeMetric(p.metricsPort, "decant_fail_closed").catch(() => NaN);
          if (closed === 1) break;
        }
        const read = await p.client.get(ns, "before").catch((e: grpc.ServiceError) => e);
        const again = await p.client.put(ns, "still", Buffer.from("x")).catch((e: grpc.ServiceError) => e);
        const diedDuringOutage = p.exited();

        await restore(mode);
        const back = Date.now();
        let recoveredMs = -1;
        if (!p.exited()) {
          await waitFor(
            async () => {
              try {
                await p.client.put(ns, "after", Buffer.from("ok"));
                return true;
              } catch {
                return false;
              }
            },
            "writes to be accepted again",
            30_000,
          );
          recoveredMs = Date.now() - back;
        }
        console.log(
          `      fail closed (${describeOutage(mode)}): last write accepted ${lastSuccessAfter} ms after the cut, refused (UNAVAILABLE) after ${refusedAfter} ms ` +
            `(lease ${lease} ms); decant_fail_closed ${closed}; accepted again ${recoveredMs} ms after the control store came back`,
        );

        expect(diedDuringOutage, `the sidecar process died during the outage: ${p.logs.slice(-3).join("\n")}`).to.equal(false);
        expect(other, "no error other than UNAVAILABLE").to.equal("");
        expect(refusedAfter, "a write was refused").to.be.greaterThan(-1);
        expect(refusedAfter).to.be.at.most(lease + heartbeat + 1500);
        expect((again as grpc.ServiceError).code, "writes stay refused while the control store is away").to.equal(grpc.status.UNAVAILABLE);
        // During a migration a view that lapsed refuses reads of the current store too: the
        // migration may have moved past the phases that still write it (model finding N2).
        expect((read as grpc.ServiceError).code, `reads are refused too: ${String((read as Error).message ?? "")}`).to.equal(grpc.status.UNAVAILABLE);
        expect(closed).to.equal(1);
        expect(recoveredMs).to.be.greaterThan(-1);
      } finally {
        await restore(mode);
        await p.stop();
      }
    }

    // Regression (fixed in b3717f8): the heartbeat's control read in flight when the connection
    // dropped crashed the sidecar (same pg-pool cause as above) instead of letting it fail closed.
    it("fail closed (proxy stopped): a sidecar that cannot reach its control store refuses writes within its lease, and recovers", async function () {
      await failClosed("stop");
    });

    it("fail closed (network partition): a sidecar that cannot reach its control store refuses writes within its lease, and recovers", async function () {
      await failClosed("partition");
    });
  });
}
