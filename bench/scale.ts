// Issue 16: does the backfill scale with workers where the work is bound by latency, as against
// a store in another zone? A TCP proxy adds a fixed delay each way in front of the target;
// `decant backfill-worker` processes (1, 2, 4) copy one backfill that a sidecar planned (the
// sidecar itself runs no segment). Reported next to the one-worker figure of the same run.
//
// What a worker can do is fixed per worker, as a real worker's CPU and connection pool are: it
// runs `segments_per_replica` segments, each one page at a time (one write in flight per page of
// `page` items), and the global concurrency (64, split among running segments) never binds. On
// this 2-core machine the pages are small so 4 workers stay far below the CPU the machine has:
// otherwise the figure measures the machine's cores, not the workers (each worker's CPU is
// reported as a share of the run's wall time, and the bench process's, which runs the proxy).
//
//   node --import tsx bench/scale.ts [--quick] [--backend postgres,dynamodb] [--delay 5,100]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { connect, createServer, type Server, type Socket } from "node:net";
import { parseArgs } from "node:util";
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
const TICK_S = 1 / 100; // USER_HZ: /proc/<pid>/stat counts CPU in these

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
        s.setNoDelay(true); // no Nagle: a small write would otherwise wait for the previous one's ACK
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

/** CPU seconds (user + system) a process has used so far, from /proc (robust to the machine's load). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_S; // utime, stime
  } catch {
    return NaN;
  }
}

interface WorkerRun {
  pid: number | undefined;
  ready: Promise<void>;
  code: Promise<number | null>;
  kill(): void;
}

function startWorker(env: Record<string, string>): WorkerRun {
  const inherited: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(inherited)) if (k.startsWith("DECANT_") && !k.startsWith("DECANT_TEST_")) delete inherited[k];
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "backfill-worker"], { cwd: ROOT, env: { ...inherited, DECANT_LOG_FORMAT: "json", ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let partial = "";
  let started!: () => void;
  const ready = new Promise<void>((resolve) => (started = resolve));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    const lines = (partial + d).split("\n");
    partial = lines.pop() ?? "";
    if (lines.some((l) => l.includes('"backfill-worker started"'))) started();
  });
  let exited = false;
  const code = new Promise<number | null>((resolve) => child.once("exit", (c) => ((exited = true), resolve(c))));
  void code.then(() => started());
  return { pid: child.pid, ready, code, kill: () => void (exited || child.kill("SIGKILL")) };
}

/**
 * `n` items in SEGMENTS namespaces: a namespace of at most 2,048 items is one segment, so the
 * work is cut in equal parts whatever `n` (dynalite's runs stay small) and 4 workers get equal shares.
 */
const SEGMENTS = 8;
async function preload(url: string, n: number): Promise<void> {
  const store = await openStore(url);
  const value = Buffer.alloc(256, 0xab);
  const per = Math.ceil(n / SEGMENTS);
  for (let s = 0; s < SEGMENTS; s++) {
    for (let i = 0; i < per; i += 1000) {
      const batch: RawItem[] = Array.from({ length: Math.min(1000, per - i) }, (_, j) => ({ key: `key${String(i + j).padStart(8, "0")}`, value, version: BigInt(1 + ((i + j) % 5)) }));
      await store.applyIfNewer(`bench${s}`, batch);
    }
  }
  await store.close();
}

/** What one worker may do at once: its segments, and each segment's page (one write in flight per page). */
interface Shape {
  segmentsPerWorker: number;
  page: number;
}

interface RunResult {
  rate: number;
  seconds: number;
  /** CPU of each worker and of the bench process (proxy, planner, status polling), as a share of the run's wall time. */
  cpu: string;
}

/**
 * One backfill of `n` items by `workers` backfill-worker processes. The backfill is started and
 * paused, the workers start and wait, and the clock runs from the resume to done: a worker's
 * start-up (seconds of tsx on a loaded machine) must not count as a run with fewer workers.
 */
async function oneRun(currentUrl: string, targetUrl: string, n: number, workers: number, shape: Shape, others: (number | undefined)[]): Promise<RunResult> {
  await preload(currentUrl, n);
  const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_HEARTBEAT_MS: "200", DECANT_LOG_LEVEL: "info" };
  const config = loadConfig(undefined, { ...env, DECANT_LISTEN: "127.0.0.1:0", DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "0", DECANT_REPLICA_ID: "bench-planner" });
  const sidecar = await startSidecar(config, silentLogger());
  const client = new DecantClient(`127.0.0.1:${sidecar.grpcPort}`);
  const runs: WorkerRun[] = [];
  try {
    await client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: true });
    for (let i = 0; i < 100 && !(await client.call("migration", "GetStatus", {})).active; i++) await sleep(100);
    // The page size is not on the wire (StartBackfill takes rate and concurrency): ask the controller.
    await sidecar.controller.backfill.start(0, 64, shape.page);
    await client.call("migration", "PauseBackfill", {});
    for (let i = 0; i < workers; i++) runs.push(startWorker({ ...env, DECANT_REPLICA_ID: `bench-worker-${i}`, DECANT_BACKFILL_SEGMENTS_PER_REPLICA: String(shape.segmentsPerWorker) }));
    await Promise.all(runs.map((r) => r.ready));
    await sleep(500); // each has read the paused record at least once
    const pids = [...runs.map((r) => r.pid), process.pid, ...others];
    const cpu0 = pids.map(cpuSeconds);
    const t0 = performance.now();
    await client.call("migration", "ResumeBackfill", {});
    // A worker exits as soon as it sees the backfill done, taking its /proc entry along: keep the last reading.
    const last = [...cpu0];
    // Workers read the backfill record itself and may exit on "done" before the planner's view
    // (refreshed every heartbeat) says so: after they all exited 0, its status has a few seconds.
    let allExitedAt: number | undefined;
    for (;;) {
      pids.forEach((p, i) => (last[i] = Number.isNaN(cpuSeconds(p)) ? last[i]! : cpuSeconds(p)));
      const s = await client.call("migration", "GetStatus", {});
      if (s.backfill.state === "done") break;
      if (s.backfill.state === "failed") throw new Error(`backfill failed: ${s.backfill.error}`);
      if (allExitedAt !== undefined && performance.now() - allExitedAt > 5000) throw new Error("every worker exited before the backfill was done");
      const codes = runs.length > 0 ? await Promise.race([Promise.all(runs.map((r) => r.code)), sleep(100).then(() => undefined)]) : undefined;
      if (codes !== undefined && allExitedAt === undefined) {
        if (codes.some((c) => c !== 0)) throw new Error(`a worker exited with ${codes.join(", ")} before the backfill was done`);
        allExitedAt = performance.now();
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const share = pids.map((p, i) => ((Number.isNaN(cpuSeconds(p)) ? last[i]! : cpuSeconds(p)) - cpu0[i]!) / seconds);
    const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "?" : `${Math.round(x * 100)}%`);
    const cpu = `load ${loadavg()[0]!.toFixed(1)}; CPU of run time: workers ${share.slice(0, workers).map(pct).join(" ")}; bench+proxy ${pct(share[workers])}${others.some((p) => p !== undefined) ? `; dynalite ${pct(share[workers + 1])}` : ""}`;
    await Promise.all(runs.map((r) => r.code));
    return { rate: n / seconds, seconds, cpu };
  } finally {
    for (const r of runs) r.kill();
    client.close();
    await sidecar.stop();
  }
}

interface Options {
  quick: boolean;
  pgUrl: string;
  dynamoEndpoint: () => Promise<string>;
  /** dynalite's pid, for its CPU (undefined for an external server). */
  dynamoPid?: () => number | undefined;
  run: string;
  backends: string[];
  /** Only these delays (ms each way), and no run without the proxy. */
  delays?: number[];
}

export async function scale(o: Options): Promise<void> {
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

/** Product defaults: what one worker does flat out (2 segments, pages up to 1,024 items, 64 writes in flight). */
const DEFAULT_SHAPE: Shape = { segmentsPerWorker: 2, page: 1024 };

interface Target {
  name: string;
  /** Items, at most 2,048 × SEGMENTS. */
  n: number;
  /** Each delay with its worker shape: pages small enough that 4 workers stay well within this machine's 2 cores. */
  delays: { ms: number; shape: Shape }[];
  url: (host: string, port: number, tag: string) => string;
  upstream: () => Promise<{ host: string; port: number }>;
  pid: () => number | undefined;
}

function targets(o: Options): Target[] {
  const pgu = new URL(o.pgUrl);
  return [
    {
      name: "postgres",
      n: o.quick ? 2048 : 8192,
      delays: [
        { ms: 5, shape: { segmentsPerWorker: 1, page: 16 } },
        { ms: 100, shape: { segmentsPerWorker: 1, page: 64 } },
      ],
      url: (host, port, tag) => `postgres://${pgu.username}${pgu.password ? `:${pgu.password}` : ""}@${host}:${port}${pgu.pathname}?table=bench_scale_tgt_${tag}_${o.run}`,
      upstream: async () => ({ host: pgu.hostname, port: Number(pgu.port || 5432) }),
      pid: () => undefined,
    },
    {
      name: "dynamodb (dynalite)",
      n: o.quick ? 128 : 512,
      delays: [{ ms: 200, shape: { segmentsPerWorker: 1, page: 8 } }],
      url: (host, port, tag) => `dynamodb://bench_scale_tgt_${tag}_${o.run}?region=us-east-1&endpoint=http://${host}:${port}`,
      upstream: async () => {
        const u = new URL(await o.dynamoEndpoint());
        return { host: u.hostname, port: Number(u.port) };
      },
      pid: () => o.dynamoPid?.(),
    },
  ];
}

async function measure(o: Options): Promise<void> {
  const counts = o.quick ? [1, 2] : [1, 2, 4];
  for (const t of targets(o).filter((x) => o.backends.includes(x.name.split(" ")[0]!))) {
    const up = await t.upstream();
    const short = t.name.slice(0, 4);
    const series = async (label: string, host: string, port: number, shape: Shape, tagOf: (w: number) => string) => {
      let one = NaN;
      for (const workers of counts) {
        const tag = tagOf(workers);
        try {
          const r = await oneRun(`${o.pgUrl}?table=bench_scale_cur_${tag}_${o.run}`, t.url(host, port, tag), t.n, workers, shape, [t.pid()]);
          if (workers === 1) one = r.rate;
          const goal = workers > 1 && label !== "no delay" ? { goal: `≥ ${(0.8 * workers).toFixed(1)}× (0.8 × linear)`, met: r.rate >= 0.8 * workers * one } : {};
          record({ section: "scale", figure: `→ ${t.name}, ${label}, ${workers} worker${workers > 1 ? "s" : ""} × ${shape.segmentsPerWorker} seg × page ${shape.page}, ${t.n} × 256 B`, value: r.rate, unit: "items/s", ...(workers > 1 ? { baseline: one } : {}), note: `${r.seconds.toFixed(1)} s; ${r.cpu}`, ...goal });
        } catch (err) {
          record({ section: "scale", figure: `→ ${t.name}, ${label}, ${workers} workers: failed`, value: NaN, unit: "", note: (err as Error).message.slice(0, 100) });
        }
      }
    };
    // For the record: the product's defaults straight to the store (CPU-bound on 2 cores).
    if (!o.delays) await series("no delay", up.host, up.port, DEFAULT_SHAPE, (w) => `${short}_direct_${w}`);
    for (const d of t.delays.filter((x) => !o.delays || o.delays.includes(x.ms))) {
      const proxy = new DelayProxy(up.host, up.port, d.ms);
      await proxy.start();
      try {
        await series(`+${d.ms} ms each way`, "127.0.0.1", proxy.port, d.shape, (w) => `${short}_${d.ms}_${w}`);
      } finally {
        await proxy.stop();
      }
    }
  }
}

// Run alone: node --import tsx bench/scale.ts [--quick] [--backend postgres,dynamodb] [--delay 5,100]
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, backend: { type: "string" }, delay: { type: "string" } } });
  const { TEST_URLS } = await import("../test/support/servers.js");
  const { startDynalite } = await import("../test/support/dynalite.js");
  let dynalite: Awaited<ReturnType<typeof startDynalite>> | undefined;
  try {
    await scale({
      quick: Boolean(values.quick),
      pgUrl: TEST_URLS.postgres,
      dynamoEndpoint: async () => (dynalite ??= await startDynalite()).endpoint,
      dynamoPid: () => dynalite?.pid,
      run: Math.random().toString(36).slice(2, 8),
      backends: (values.backend ?? "postgres,dynamodb").split(","),
      ...(values.delay ? { delays: values.delay.split(",").map(Number) } : {}),
    });
  } finally {
    await dynalite?.stop();
  }
  process.exit(0);
}
