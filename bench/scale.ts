// Issue 16: does the backfill scale with workers where the work is bound by latency, as against
// a store in another zone? A TCP proxy adds a fixed delay each way in front of the target;
// `decant backfill-worker` processes (1, 2, 4) copy one backfill that a sidecar planned (the
// sidecar itself runs no segment). Reported next to the one-worker figure of the same run.
import { spawn } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { loadConfig } from "../src/config/config.js";
import { DecantClient } from "../src/client/client.js";
import { silentLogger } from "../src/log.js";
import { openStore } from "../src/backends/index.js";
import { startSidecar } from "../src/server/sidecar.js";
import type { RawItem } from "../src/protocol/types.js";
import pg from "pg";
import { record } from "./lib.js";

const ROOT = new URL("../", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Forwards TCP to host:port, delaying every chunk by `delayMs` in each direction (order kept). */
export class DelayProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly host: string,
    private readonly upstreamPort: number,
    private readonly delayMs: number,
  ) {}

  async start(): Promise<void> {
    const pipe = (from: Socket, to: Socket) => {
      from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), this.delayMs));
      from.on("end", () => setTimeout(() => to.end(), this.delayMs));
      from.on("error", () => to.destroy());
      from.on("close", () => setTimeout(() => to.destroy(), this.delayMs));
    };
    this.server = createServer((client) => {
      const upstream = connect(this.upstreamPort, this.host);
      for (const s of [client, upstream]) {
        s.setNoDelay(true);
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
      }
      pipe(client, upstream);
      pipe(upstream, client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface WorkerRun {
  code: Promise<number | null>;
  cpuMs: () => number | undefined;
}

function startWorker(env: Record<string, string>): WorkerRun {
  const inherited: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(inherited)) if (k.startsWith("DECANT_") && !k.startsWith("DECANT_TEST_")) delete inherited[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "backfill-worker"], { cwd: ROOT, env: { ...inherited, DECANT_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let cpuMs: number | undefined;
  let partial = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    const lines = (partial + d).split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) if (l.includes('"backfill-worker exits"')) cpuMs = Number((JSON.parse(l) as { cpu_ms?: number }).cpu_ms);
  });
  return { code: new Promise((resolve) => child.once("exit", (c) => resolve(c))), cpuMs: () => cpuMs };
}

async function preload(url: string, n: number): Promise<void> {
  const store = await openStore(url);
  const value = Buffer.alloc(256, 0xab);
  for (let i = 0; i < n; i += 1000) {
    const batch: RawItem[] = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ key: `key${String(i + j).padStart(8, "0")}`, value, version: BigInt(1 + ((i + j) % 5)) }));
    await store.applyIfNewer("bench", batch);
  }
  await store.close();
}

/** One backfill of `n` items by `workers` backfill-worker processes; items/s from the first copied item to done. */
async function oneRun(currentUrl: string, targetUrl: string, n: number, workers: number): Promise<{ rate: number; cpu: string }> {
  await preload(currentUrl, n);
  const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_HEARTBEAT_MS: "200", DECANT_LOG_LEVEL: "info" };
  const config = loadConfig(undefined, { ...env, DECANT_LISTEN: "127.0.0.1:0", DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "0", DECANT_REPLICA_ID: "bench-planner" });
  const sidecar = await startSidecar(config, silentLogger());
  const client = new DecantClient(`127.0.0.1:${sidecar.grpcPort}`);
  try {
    await client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: true });
    for (let i = 0; i < 100 && !(await client.call("migration", "GetStatus", {})).active; i++) await sleep(100);
    await client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 64 });
    const runs = Array.from({ length: workers }, (_, i) => startWorker({ ...env, DECANT_REPLICA_ID: `bench-worker-${i}`, DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "2" }));
    let first: number | undefined;
    let firstScanned = 0;
    for (;;) {
      const s = await client.call("migration", "GetStatus", {});
      if (first === undefined && Number(s.backfill.scanned) > 0) [first, firstScanned] = [performance.now(), Number(s.backfill.scanned)];
      if (s.backfill.state === "done") break;
      if (s.backfill.state === "failed") throw new Error(`backfill failed: ${s.backfill.error}`);
      await sleep(50);
    }
    const rate = (n - firstScanned) / ((performance.now() - (first ?? performance.now())) / 1000);
    await Promise.all(runs.map((r) => r.code));
    const cpu = runs.map((r) => `${((r.cpuMs() ?? NaN) / 1000).toFixed(1)}`).join(" + ");
    return { rate, cpu: `worker CPU s: ${cpu}` };
  } finally {
    client.close();
    await sidecar.stop();
  }
}

export async function scale(o: { quick: boolean; pgUrl: string; dynamoEndpoint: () => Promise<string>; run: string; backends: string[] }): Promise<void> {
  try {
    await measure(o);
  } finally {
    const c = new pg.Client({ connectionString: o.pgUrl });
    await c.connect();
    const rows = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [`bench_scale_%_${o.run}`]);
    for (const { t } of rows.rows) await c.query(`DROP TABLE IF EXISTS public.${t}`);
    await c.end();
  }
}

async function measure(o: { quick: boolean; pgUrl: string; dynamoEndpoint: () => Promise<string>; run: string; backends: string[] }): Promise<void> {
  const pgu = new URL(o.pgUrl);
  const delays = [5];
  const targets = [
    { name: "postgres", n: o.quick ? 2000 : 40_000, url: (host: string, port: number, tag: string) => `postgres://${pgu.username}${pgu.password ? `:${pgu.password}` : ""}@${host}:${port}${pgu.pathname}?table=bench_scale_tgt_${tag}_${o.run}`, upstream: async () => ({ host: pgu.hostname, port: Number(pgu.port || 5432) }) },
    {
      name: "dynamodb (dynalite)",
      n: o.quick ? 300 : 16_000,
      url: (host: string, port: number, tag: string) => `dynamodb://bench_scale_tgt_${tag}_${o.run}?region=us-east-1&endpoint=http://${host}:${port}`,
      upstream: async () => {
        const u = new URL(await o.dynamoEndpoint());
        return { host: u.hostname, port: Number(u.port) };
      },
    },
  ];
  for (const t of targets.filter((x) => o.backends.includes(x.name.split(" ")[0]!))) {
    const up = await t.upstream();
    // For the record: one worker straight to the store (no delay).
    try {
      const direct = await oneRun(`${o.pgUrl}?table=bench_scale_cur_direct_${t.name.slice(0, 4)}_${o.run}`, t.url(up.host, up.port, `direct_${t.name.slice(0, 4)}`), t.n, 1);
      record({ section: "scale", figure: `→ ${t.name}, 1 worker, no delay, ${t.n} × 256 B`, value: direct.rate, unit: "items/s", note: direct.cpu });
    } catch (err) {
      record({ section: "scale", figure: `→ ${t.name}, no delay: failed`, value: NaN, unit: "", note: (err as Error).message.slice(0, 100) });
    }
    for (const delay of delays) {
      const proxy = new DelayProxy(up.host, up.port, delay);
      await proxy.start();
      let one = NaN;
      try {
        for (const workers of o.quick ? [1, 2] : [1, 2, 4]) {
          const tag = `${t.name.slice(0, 4)}_${delay}_${workers}`;
          const r = await oneRun(`${o.pgUrl}?table=bench_scale_cur_${tag}_${o.run}`, t.url("127.0.0.1", proxy.port, tag), t.n, workers);
          if (workers === 1) one = r.rate;
          const goal = workers > 1 ? { goal: `≥ ${(0.8 * workers).toFixed(1)}× (0.8 × linear)`, met: r.rate >= 0.8 * workers * one } : {};
          record({ section: "scale", figure: `→ ${t.name} +${delay} ms each way, ${workers} worker${workers > 1 ? "s" : ""}, ${t.n} × 256 B`, value: r.rate, unit: "items/s", ...(workers > 1 ? { baseline: one } : {}), note: r.cpu, ...goal });
        }
      } catch (err) {
        record({ section: "scale", figure: `→ ${t.name} +${delay} ms: failed`, value: NaN, unit: "", note: (err as Error).message.slice(0, 100) });
      } finally {
        await proxy.stop();
      }
    }
  }
}
