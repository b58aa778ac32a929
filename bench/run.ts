// npm run bench [-- --quick] [-- --backend NAME] [-- --only hop,backend,dual,backfill,memory,verify,dynamodb,status,cost,cost-dynamodb,cost-rss,scale]
// Prints every figure next to a baseline measured in the same run, writes
// bench/results/<date>.json and (on a full run) docs/PERFORMANCE.md.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { bucketOf, itemAttrs } from "../src/backends/dynamodb.js";
import { openStore } from "../src/backends/index.js";
import { DecantClient } from "../src/client/client.js";
import { loadConfig } from "../src/config/config.js";
import { silentLogger } from "../src/log.js";
import { startSidecar } from "../src/server/sidecar.js";
import { createLegacyDynamoTable, freePort, startDynalite, writeItems, type Dynalite } from "../test/support/dynalite.js";
import { TEST_URLS } from "../test/support/servers.js";
import { frontBench } from "./front.js";
import { alternating, bareStoreServer, fmt, forgetControl, load, record, rows, table, type LoadResult, buildOnce, shippedNodeFlags } from "./lib.js";
import { scale } from "./scale.js";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, backend: { type: "string" }, only: { type: "string" } } });
const QUICK = Boolean(values.quick);
const ONLY = values.only ? new Set(values.only.split(",")) : undefined;
const BACKENDS = values.backend ? values.backend.split(",") : ["memory", "sqlite", "postgres", "mysql", "redis", "dynamodb"];
const RUN_MS = QUICK ? 300 : 3000;
const run = Math.random().toString(36).slice(2, 8);
const scratch = mkdtempSync(join(tmpdir(), "decant-bench-"));
const want = (section: string) => !ONLY || ONLY.has(section);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dynalite: Dynalite | undefined;
async function dynamoEndpoint(): Promise<string> {
  dynalite ??= await startDynalite();
  return dynalite.endpoint;
}

async function storeUrl(backend: string, tag: string): Promise<string> {
  const table = `bench_${tag}_${run}`;
  switch (backend) {
    case "memory":
      return "memory:";
    case "sqlite":
      return `sqlite:${join(scratch, `${tag}.db`)}`;
    case "postgres":
      return `${TEST_URLS.postgres}?table=${table}`;
    case "mysql":
      return `${TEST_URLS.mysql}?table=${table}`;
    case "redis":
      return `${TEST_URLS.redis}?prefix=${table}`;
    case "dynamodb":
      return `dynamodb://${table}?region=us-east-1&endpoint=${await dynamoEndpoint()}`;
  }
  throw new Error(`unknown backend ${backend}`);
}

async function inProcessSidecar(env: Record<string, string>) {
  const config = loadConfig(undefined, { DECANT_LISTEN: "127.0.0.1:0", DECANT_METRICS_LISTEN: "127.0.0.1:0", ...env });
  const sidecar = await startSidecar(config, silentLogger());
  const client = new DecantClient(`127.0.0.1:${sidecar.grpcPort}`);
  return { sidecar, client, stop: async () => (client.close(), await sidecar.stop()) };
}

const value1k = Buffer.alloc(1024, 7);
const value100 = Buffer.alloc(100, 7);

// 1. The cost of the sidecar hop: Decant on memory vs a bare grpc-js server answering from a Map.
async function hop(): Promise<void> {
  const bare = bareStoreServer();
  const port = await new Promise<number>((res, rej) => bare.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const bareClient = new DecantClient(`127.0.0.1:${port}`);
  const decant = await inProcessSidecar({ DECANT_CURRENT: "memory:" });
  try {
    for (const c of [bareClient, decant.client]) for (let i = 0; i < 1000; i++) await c.put("bench", `k${i}`, value100);
    for (const op of ["Get", "Put"] as const) {
      for (const inFlight of [1, 64]) {
        const call = (c: DecantClient) => (i: number) => (op === "Get" ? c.get("bench", `k${i % 1000}`) : c.put("bench", `k${i % 1000}`, value100));
        // In alternating slices, so drift on a noisy machine hits both alike.
        const [base, dec] = (await alternating([call(bareClient), call(decant.client)], inFlight, 2 * RUN_MS)) as [LoadResult, LoadResult];
        const thr = dec.opsPerSec / base.opsPerSec;
        const p50 = dec.p50 / base.p50;
        record({ section: "hop", figure: `${op} throughput, ${inFlight} in flight`, value: dec.opsPerSec, unit: "ops/s", baseline: base.opsPerSec, goal: "≥ 0.8×", met: thr >= 0.8 });
        record({ section: "hop", figure: `${op} p50, ${inFlight} in flight`, value: dec.p50, unit: "ms", baseline: base.p50, goal: "≤ 1.2×", met: p50 <= 1.2 });
        record({ section: "hop", figure: `${op} p99, ${inFlight} in flight`, value: dec.p99, unit: "ms", baseline: base.p99 });
      }
    }
  } finally {
    bareClient.close();
    bare.forceShutdown();
    await decant.stop();
  }
}

// The DynamoDB front vs a bare HTTP server and dynalite, each in its own process: bench/front.ts.
const dynamodbFront = () => frontBench({ ms: QUICK ? 900 : 12_000 });

interface Direct {
  get(key: string): Promise<unknown>;
  put(key: string, value: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

/** A bench PostgreSQL store URL as what pg connects with and the table it names. */
function pgTable(url: string): { connectionString: string; table: string } {
  const u = new URL(url);
  const table = u.searchParams.get("table")!;
  u.searchParams.delete("table");
  return { connectionString: u.toString(), table };
}

/** The same operations done directly with each driver (the statement/command Decant needs at minimum). */
async function directDriver(backend: string, url: string): Promise<Direct> {
  const ns = "bench";
  if (backend === "postgres") {
    const { connectionString, table: tableName } = pgTable(url);
    const pool = new pg.Pool({ connectionString, max: 10 });
    return {
      get: (key) => pool.query(`SELECT value, version FROM "${tableName}" WHERE ns = $1 AND key = $2`, [ns, key]),
      put: (key, value) =>
        pool.query(`INSERT INTO "${tableName}" AS t (ns, key, value, version) VALUES ($1, $2, $3, 1) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = t.version + 1 RETURNING version`, [ns, key, value]),
      close: () => pool.end(),
    };
  }
  if (backend === "mysql") {
    const mysql = (await import("mysql2/promise")).default;
    const u = new URL(url);
    const tableName = u.searchParams.get("table")!;
    u.search = "";
    const pool = mysql.createPool({ uri: u.toString(), connectionLimit: 10 });
    return {
      get: (key) => pool.query(`SELECT value, version FROM \`${tableName}\` WHERE ns = ? AND k = ?`, [ns, key]),
      put: (key, value) => pool.query(`INSERT INTO \`${tableName}\` (ns, k, value, version) VALUES (?, ?, ?, 1) ON DUPLICATE KEY UPDATE value = VALUES(value), version = version + 1`, [ns, key, value]),
      close: () => pool.end(),
    };
  }
  if (backend === "redis") {
    const { Redis } = await import("ioredis");
    const r = new Redis(TEST_URLS.redis);
    const p = `benchdirect_${run}`;
    return {
      get: (key) => r.pipeline().hget(`${p}:v`, key).hget(`${p}:d`, key).exec(),
      put: (key, value) => r.eval("redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]); return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)", 2, `${p}:v`, `${p}:d`, key, value),
      close: async () => {
        await r.del(`${p}:v`, `${p}:d`);
        r.disconnect();
      },
    };
  }
  if (backend === "dynamodb") {
    const { DynamoDBClient, GetItemCommand, UpdateItemCommand } = await import("@aws-sdk/client-dynamodb");
    const u = new URL(url);
    const client = new DynamoDBClient({ region: "us-east-1", endpoint: u.searchParams.get("endpoint")!, credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const TableName = u.host;
    return {
      // The adapter's key layout: pk = <ns>#<bucket>, sk = <key>.
      get: (key) => client.send(new GetItemCommand({ TableName, Key: { pk: { S: `${ns}#${bucketOf(ns, key)}` }, sk: { S: key } }, ConsistentRead: true })),
      put: (key, value) =>
        client.send(new UpdateItemCommand({ TableName, Key: { pk: { S: `${ns}#${bucketOf(ns, key)}` }, sk: { S: key } }, UpdateExpression: "SET val = :v, ver = if_not_exists(ver, :z) + :o", ExpressionAttributeValues: { ":v": { B: value }, ":z": { N: "0" }, ":o": { N: "1" } } })),
      close: async () => client.destroy(),
    };
  }
  // memory and sqlite have no separate server: the adapter called in-process is the baseline.
  const store = await openStore(url);
  return { get: (key) => store.get(ns, key), put: (key, value) => store.put(ns, key, value), close: () => store.close() };
}

// 2. Backend overhead: Get/Put through Decant vs the same operation done directly with the driver.
// Decant runs as its own process, as deployed next to a service; the adapter alone (in this
// process, no hop) is measured too, to tell the adapter's cost from the hop's.
async function backendOverhead(): Promise<void> {
  for (const backend of BACKENDS) {
    let url: string;
    let decant;
    try {
      url = await storeUrl(backend, "ovh");
      decant = await sidecarProcess({ DECANT_CURRENT: url, DECANT_CONTROL: `sqlite:${join(scratch, `control-ovh-${backend}.db`)}` });
      await decant.client.put("bench", "warm", value100);
    } catch (err) {
      record({ section: "backend", figure: `${backend}: not measured`, value: NaN, unit: "", note: (err as Error).message.slice(0, 80) });
      await decant?.stop();
      continue;
    }
    const direct = await directDriver(backend, url);
    const adapter = await openStore(url);
    try {
      for (let i = 0; i < 200; i++) await decant.client.put("bench", `k${i}`, value100);
      for (let i = 0; i < 200; i++) await direct.put(`k${i}`, value100);
      for (const [op, inFlight] of [["Get", 1], ["Put", 1], ["Get", 16], ["Put", 16]] as const) {
        const viaDecant = (i: number) => (op === "Get" ? decant.client.get("bench", `k${i % 200}`) : decant.client.put("bench", `k${i % 200}`, value100));
        const viaDriver = (i: number) => (op === "Get" ? direct.get(`k${i % 200}`) : direct.put(`k${i % 200}`, value100));
        const viaAdapter = (i: number) => (op === "Get" ? adapter.get("bench", `k${i % 200}`) : adapter.put("bench", `k${i % 200}`, value100));
        // In alternating slices, so drift on a noisy machine hits both alike.
        const [b, d] = (await alternating([viaDriver, viaDecant], inFlight, 2 * RUN_MS)) as [LoadResult, LoadResult];
        // The goal is for networked stores; memory and SQLite run in-process, so their baseline has no hop at all.
        const networked = backend !== "memory" && backend !== "sqlite";
        record({ section: "backend", figure: `${backend} ${op} p50, ${inFlight} in flight`, value: d.p50, unit: "ms", baseline: b.p50, ...(networked ? { goal: "≤ 1.3×", met: d.p50 / b.p50 <= 1.3 } : { note: "baseline in-process" }) });
        record({ section: "backend", figure: `${backend} ${op} p99, ${inFlight} in flight`, value: d.p99, unit: "ms", baseline: b.p99 });
        record({ section: "backend", figure: `${backend} ${op} throughput, ${inFlight} in flight`, value: d.opsPerSec, unit: "ops/s", baseline: b.opsPerSec });
        if (networked && inFlight === 1) {
          const a = await load(viaAdapter, inFlight, RUN_MS);
          record({ section: "backend", figure: `${backend} ${op} p50, adapter alone (no hop)`, value: a.p50, unit: "ms", baseline: b.p50 });
        }
      }
    } finally {
      await direct.close();
      await adapter.close();
      await decant.stop();
    }
  }
}

// 3. Dual-write cost: Put in DUAL_WRITE vs SINGLE, against primary + secondary latency.
async function dualWrite(): Promise<void> {
  // Three pairs of tables, and the three operations measured in alternating slices.
  const single = await inProcessSidecar({ DECANT_CURRENT: await storeUrl("postgres", "dws") });
  const secondary = await openStore(await storeUrl("postgres", "dwd"));
  const dual = await inProcessSidecar({
    DECANT_CURRENT: await storeUrl("postgres", "dwc"),
    DECANT_TARGET: await storeUrl("postgres", "dwt"),
    DECANT_CONTROL: `sqlite:${join(scratch, "control-dual.db")}`,
  });
  await dual.client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: true });
  let v = 1n;
  const [s, sec, d] = (await alternating(
    [
      (i) => single.client.put("bench", `k${i % 500}`, value100),
      (i) => secondary.applyIfNewer("bench", [{ key: `k${i % 500}`, value: value100, version: v++ }]),
      (i) => dual.client.put("bench", `k${i % 500}`, value100),
    ],
    1,
    3 * RUN_MS,
  )) as [LoadResult, LoadResult, LoadResult];
  // The same two writes as the DUAL_WRITE sidecar timed them itself (means, from its metrics):
  // inside a request they are slower than in the direct store's tight loop.
  const inside = await storeMeansMs(dual.sidecar.metricsPort);
  await Promise.all([single.stop(), secondary.close(), dual.stop()]);
  const budget = s.p50 + sec.p50 + 0.1;
  record({ section: "dual-write", figure: "Put p50 in SINGLE (postgres)", value: s.p50, unit: "ms" });
  record({ section: "dual-write", figure: "secondary applyIfNewer p50 (postgres, direct)", value: sec.p50, unit: "ms" });
  record({
    section: "dual-write",
    figure: "Put p50 in DUAL_WRITE (postgres → postgres)",
    value: d.p50,
    unit: "ms",
    baseline: s.p50,
    goal: `≤ ${budget.toFixed(3)} ms (single + secondary + 0.1)`,
    met: d.p50 <= budget,
    note: `inside the sidecar, means: primary put ${fmt(inside["current:put"] ?? NaN)} ms, secondary applyIfNewer ${fmt(inside["target:applyIfNewer"] ?? NaN)} ms`,
  });
}

/** Mean latency (ms) of each store operation a sidecar has timed, as "role:op". */
async function storeMeansMs(metricsPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const sums = new Map<string, number>();
  const means: Record<string, number> = {};
  for (const m of text.matchAll(/^decant_store_operation_duration_seconds_(sum|count)\{store="(\w+):\w+",op="(\w+)"\} (\S+)$/gm)) {
    const key = `${m[2]}:${m[3]}`;
    if (m[1] === "sum") sums.set(key, Number(m[4]));
    else if (Number(m[4]) > 0) means[key] = ((sums.get(key) ?? NaN) / Number(m[4])) * 1000;
  }
  return means;
}

let sidecarsStarted = 0;

/** A sidecar in its own process, so its memory can be read from /proc. */
async function sidecarProcess(env: Record<string, string>) {
  // DECANT_BENCH_MAIN: another build's main.js (a before/after row of one run).
  const main = env.DECANT_BENCH_MAIN ?? (await buildOnce());
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  // The V8 flags the image and make run give it (deploy/Dockerfile NODE_OPTIONS, Makefile NODE_FLAGS).
  const started = Date.now();
  // DECANT_BENCH_NODE_FLAGS: other V8 flags, for a section that compares them in one run.
  const flags = env.DECANT_BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? shippedNodeFlags();
  // DECANT_BENCH_TRACE=dir: every sidecar also runs with DECANT_BENCH_TRACE_FLAGS (say --trace-gc)
  // and its stdout goes to dir/sidecar-N.log, N counting the sidecars this run started.
  const trace = process.env.DECANT_BENCH_TRACE;
  const extra = trace ? (process.env.DECANT_BENCH_TRACE_FLAGS ?? "--trace-gc").split(" ").filter(Boolean) : [];
  const stdout = trace ? openSync(join(trace, `sidecar-${++sidecarsStarted}.log`), "w") : "ignore";
  const child = spawn(process.execPath, [...flags, ...extra, main, "serve"], {
    env: { ...process.env, DECANT_LISTEN: `127.0.0.1:${grpcPort}`, DECANT_METRICS_LISTEN: `127.0.0.1:${metricsPort}`, DECANT_LOG_FORMAT: "json", DECANT_HEARTBEAT_MS: "200", ...env },
    stdio: ["ignore", stdout, "pipe"],
  });
  if (typeof stdout === "number") closeSync(stdout); // the child has its own
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const client = new DecantClient(`127.0.0.1:${grpcPort}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await client.call("store", "Get", { namespace: "bench", key: "x" }, 1000);
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`sidecar did not start: ${log}`);
      await sleep(200);
    }
  }
  const rssMb = (field = "VmRSS") => {
    const m = readFileSync(`/proc/${child.pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? Number(m[1]) / 1024 : NaN;
  };
  /** CPU time (user + system) the sidecar has used so far. */
  const cpuSeconds = () => processCpuSeconds(child.pid!);
  /** Resident MB of glibc's main heap (`[heap]`: malloc, so most Buffers) and of the other anonymous mappings (V8's heap pages, thread arenas, mmapped Buffers). */
  const anonSplitMb = () => {
    let mapping = "";
    const mb = { heap: 0, otherAnon: 0 };
    for (const line of readFileSync(`/proc/${child.pid}/smaps`, "utf8").split("\n")) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) mapping = head[1]!;
      else if (line.startsWith("Rss:") && (mapping === "" || mapping === "[heap]")) mb[mapping === "" ? "otherAnon" : "heap"] += Number(line.split(/\s+/)[1]) / 1024;
    }
    return mb;
  };
  /**
   * RSS once idle. V8's memory reducer hands start-up garbage back 8-10 s after start, or, when
   * it judged the allocation rate too high then (a slow start on a busy machine), 8 s later:
   * wait until RSS has dropped from its start-up level and held still, or 30 s.
   */
  const settledRssMb = async () => {
    if (QUICK) return rssMb();
    let highest = rssMb();
    let last = highest;
    for (;;) {
      await sleep(1000);
      const now = rssMb();
      highest = Math.max(highest, now);
      const held = Math.abs(now - last) < 0.5;
      last = now;
      if (Date.now() - started >= 30_000 || (Date.now() - started >= 12_000 && highest - now >= 3 && held)) return now;
    }
  };
  return {
    client,
    rssMb,
    cpuSeconds,
    anonSplitMb,
    settledRssMb,
    stop: async () => {
      client.close();
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process from /proc (with `children`, also that of its exited children). */
function processCpuSeconds(pid: number, children = false): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
    return ticks / TICKS_PER_SECOND;
  } catch {
    return NaN; // gone meanwhile
  }
}

/**
 * CPU time of the local PostgreSQL server: its live processes plus the backends that exited
 * (counted in the postmaster's children time). NaN when it is not on this machine.
 */
function postgresCpuSeconds(): number {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === "postgres") pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  if (pids.length === 0) return NaN;
  const postmaster = Math.min(...pids);
  return pids.reduce((sum, pid) => sum + processCpuSeconds(pid, pid === postmaster), 0);
}

/** "CPU: sidecar 2.7 s, postgres 3.9 s": the parts that were measured (postgres only when local). */
function cpuNote(seconds: Record<string, number>): string {
  const parts = Object.entries(seconds).filter(([, s]) => !Number.isNaN(s));
  return `CPU: ${parts.map(([who, s]) => `${who} ${s.toFixed(1)} s`).join(", ")}`;
}

async function preloadPostgres(url: string, n: number, valueBytes: number): Promise<void> {
  const store = await openStore(url);
  await store.put("bench", "__create", Buffer.alloc(0)); // creates the table
  await store.close();
  const { connectionString, table: tableName } = pgTable(url);
  const client = new pg.Client({ connectionString });
  await client.connect();
  await client.query(`INSERT INTO "${tableName}" (ns, key, value, version) SELECT 'bench', 'key' || lpad(g::text, 8, '0'), decode(repeat('ab', ${valueBytes}), 'hex'), 1 + g % 5 FROM generate_series(1, ${n}) g ON CONFLICT DO NOTHING`);
  await client.query(`ANALYZE "${tableName}"`);
  await client.end();
}

async function preloadSqlite(url: string, n: number, valueBytes: number): Promise<void> {
  const store = await openStore(url);
  const value = Buffer.alloc(valueBytes, 0xab);
  for (let i = 0; i < n; i += 2000) {
    await store.applyIfNewer("bench", Array.from({ length: Math.min(2000, n - i) }, (_, j) => ({ key: `key${String(i + j + 1).padStart(8, "0")}`, value, version: BigInt(1 + ((i + j) % 5)) })));
  }
  await store.close();
}

/** PostgreSQL's own single-statement copy of the same rows: the baseline for the backfill rate. */
async function inDatabaseCopy(sourceUrl: string, targetTable: string, n: number): Promise<{ rate: number; postgresCpu: number }> {
  const { connectionString, table: source } = pgTable(sourceUrl);
  const client = new pg.Client({ connectionString });
  await client.connect();
  await client.query(`CREATE TABLE "${targetTable}" (LIKE "${source}" INCLUDING ALL)`);
  const cpu = postgresCpuSeconds();
  const t = performance.now();
  await client.query(`INSERT INTO "${targetTable}" AS t SELECT * FROM "${source}" ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version WHERE t.version < excluded.version`);
  const seconds = (performance.now() - t) / 1000;
  const postgresCpu = postgresCpuSeconds() - cpu;
  await client.query(`DROP TABLE "${targetTable}"`);
  await client.end();
  return { rate: n / seconds, postgresCpu };
}

/**
 * The issue's reference for the backfill: a plain loop of keyset pages and unnest upserts with
 * 4 writers, each over a quarter of the preloaded keys (key00000001 …), in this process.
 */
async function plainLoopCopy(sourceUrl: string, targetTable: string, n: number): Promise<{ rate: number; postgresCpu: number; clientCpu: number }> {
  const { connectionString, table: source } = pgTable(sourceUrl);
  const pool = new pg.Pool({ connectionString, max: 4 });
  await pool.query(`CREATE TABLE "${targetTable}" (LIKE "${source}" INCLUDING ALL)`);
  const bound = (i: number) => `key${String(i).padStart(8, "0")}`;
  const cpu = postgresCpuSeconds();
  const clientCpu = process.cpuUsage();
  const t = performance.now();
  await Promise.all(
    [0, 1, 2, 3].map(async (w) => {
      let after = w === 0 ? "" : bound(Math.floor((n * w) / 4));
      const until = bound(Math.floor((n * (w + 1)) / 4));
      for (;;) {
        const { rows } = await pool.query<{ key: string; value: Buffer; version: string }>(`SELECT key, value, version FROM "${source}" WHERE ns = 'bench' AND key > $1 AND key <= $2 ORDER BY key LIMIT 1000`, [after, until]);
        if (rows.length === 0) break;
        await pool.query(
          `INSERT INTO "${targetTable}" AS t (ns, key, value, version) SELECT 'bench', k, v, ver FROM unnest($1::text[], $2::bytea[], $3::int8[]) AS u(k, v, ver)
           ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version WHERE t.version < excluded.version`,
          [rows.map((r) => r.key), rows.map((r) => r.value), rows.map((r) => r.version)],
        );
        after = rows[rows.length - 1]!.key;
      }
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  const postgresCpu = postgresCpuSeconds() - cpu;
  const used = process.cpuUsage(clientCpu);
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${targetTable}" WHERE ns = 'bench' AND key LIKE 'key%'`);
  await pool.query(`DROP TABLE "${targetTable}"`);
  await pool.end();
  if (Number(rows[0]!.n) !== n) throw new Error(`the reference loop copied ${rows[0]!.n} of ${n} rows`);
  return { rate: n / seconds, postgresCpu, clientCpu: (used.user + used.system) / 1e6 };
}

/**
 * The AWS SDK alone writing n × 1 KiB items with the conditional PutItem applyIfNewer needs
 * (BatchWriteItem takes no conditions), 16 in flight from one process: the baseline of a
 * backfill into DynamoDB, whose rate the SDK's own CPU per request bounds.
 */
async function sdkConditionalPuts(endpoint: string, n: number): Promise<number> {
  const { CreateTableCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand, waitUntilTableExists } = await import("@aws-sdk/client-dynamodb");
  const client = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" }, maxAttempts: 1 });
  const TableName = `bench_sdk_${run}`;
  await client.send(
    new CreateTableCommand({
      TableName,
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30 }, { TableName });
  const value = Buffer.alloc(1024, 0xab);
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < n; i = next++) {
        await client.send(
          new PutItemCommand({
            TableName,
            Item: itemAttrs("buckets", "bench", { key: `key${i}`, value, version: BigInt(1 + (i % 5)) }),
            ConditionExpression: "attribute_not_exists(#pk) OR #ver < :v",
            ExpressionAttributeNames: { "#pk": "pk", "#ver": "ver" },
            ExpressionAttributeValues: { ":v": { N: String(1 + (i % 5)) } },
          }),
        );
      }
    }),
  );
  const rate = n / ((performance.now() - t) / 1000);
  await client.send(new DeleteTableCommand({ TableName }));
  client.destroy();
  return rate;
}

async function dropPg(url: string): Promise<void> {
  if (!url.startsWith("postgres")) return;
  const { connectionString, table: t } = pgTable(url);
  const c = new pg.Client({ connectionString });
  await c.connect();
  await c.query(`DROP TABLE IF EXISTS "${t}"`);
  await c.end();
}

/** Runs a whole backfill (and optionally a verify) in a sidecar process; returns rates and peak RSS. */
async function backfillRun(currentUrl: string, targetUrl: string, n: number, withVerify: boolean) {
  // A control store of its own per run: runs reuse source tables, and a control record left in
  // one by an earlier run would say the migration is already under way.
  const control = `sqlite:${join(scratch, `control-${Math.random().toString(36).slice(2)}.db`)}`;
  const p = await sidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_CONTROL: control });
  try {
    const idle = await p.settledRssMb();
    const idleFile = p.rssMb("RssFile");
    await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: true });
    for (let i = 0; i < 100 && !(await p.client.call("migration", "GetStatus", {})).active; i++) await sleep(100);
    let peak = 0;
    let fileBacked = 0; // of the RSS at the highest reading: pages of the node binary and libraries
    const sample = () => {
      const rss = p.rssMb();
      if (rss > peak) [peak, fileBacked] = [rss, p.rssMb("RssFile")];
    };
    const sidecarCpu = p.cpuSeconds();
    const postgresCpu = postgresCpuSeconds();
    const t = performance.now();
    await p.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 4 });
    for (;;) {
      sample();
      const s = await p.client.call("migration", "GetStatus", {});
      if (s.backfill.state === "done") break;
      if (s.backfill.state === "failed") throw new Error(`backfill failed: ${s.backfill.error}`);
      await sleep(200);
    }
    const rate = n / ((performance.now() - t) / 1000);
    const cpu = cpuNote({ sidecar: p.cpuSeconds() - sidecarCpu, postgres: postgresCpuSeconds() - postgresCpu });
    let verifyRate: number | undefined;
    if (withVerify) {
      const tv = performance.now();
      let last: { missing?: string; stale?: string; extra?: string; checked?: string } = {};
      await new Promise<void>((resolve, reject) => {
        const stream = p.client.stream("Verify", {});
        stream.on("data", (r) => {
          last = r;
          sample();
        });
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      verifyRate = Number(last.checked) / ((performance.now() - tv) / 1000);
      if (Number(last.missing) + Number(last.stale) + Number(last.extra) > 0) throw new Error(`verify found differences: ${JSON.stringify(last)}`);
    }
    const memoryNote = `${fileBacked.toFixed(0)} MB of it file-backed: node binary, libraries`;
    return { rate, verifyRate, idle, idleFile, peak: Math.max(peak, p.rssMb("VmHWM")), cpu, memoryNote };
  } finally {
    await p.stop();
    await forgetControl(currentUrl);
  }
}

// 4-6. Backfill rate against PostgreSQL's own copy, memory during backfills, verify rate.
async function backfillAndVerify(): Promise<void> {
  const n = QUICK ? 2000 : 200_000;
  const pgSource = await storeUrl("postgres", "bfsrc");
  await preloadPostgres(pgSource, n, 1024);
  const copy = await inDatabaseCopy(pgSource, `bench_copy_${run}`, n);
  const baseline = copy.rate;
  record({ section: "backfill", figure: `PostgreSQL INSERT … SELECT copy, ${n} × 1 KiB`, value: baseline, unit: "items/s", note: cpuNote({ postgres: copy.postgresCpu }) });
  const plain = await plainLoopCopy(pgSource, `bench_plain_${run}`, n);
  record({ section: "backfill", figure: `reference: keyset pages + unnest upserts, 4 writers, ${n} × 1 KiB`, value: plain.rate, unit: "items/s", baseline, note: cpuNote({ loop: plain.clientCpu, postgres: plain.postgresCpu }) });

  const pairs: [string, string, number][] = [
    ["postgres → postgres", "postgres", n],
    ["postgres → redis", "redis", n],
    ["postgres → dynamodb (dynalite)", "dynamodb", QUICK ? 500 : 20_000],
  ];
  for (const [name, targetBackend, count] of pairs) {
    const source = count === n ? pgSource : await storeUrl("postgres", `bfsmall${targetBackend}`);
    if (count !== n) await preloadPostgres(source, count, 1024);
    const target = await storeUrl(targetBackend, `bft${targetBackend}`);
    try {
      const r = await backfillRun(source, target, count, true);
      const isPg = targetBackend === "postgres";
      if (targetBackend === "dynamodb") {
        const sdk = await sdkConditionalPuts(await dynamoEndpoint(), count);
        record({ section: "backfill", figure: `AWS SDK alone: conditional PutItem, 16 in flight, ${count} × 1 KiB`, value: sdk, unit: "items/s" });
        record({ section: "backfill", figure: `${name}, ${count} × 1 KiB`, value: r.rate, unit: "items/s", note: r.cpu, baseline: sdk });
      } else {
        record({ section: "backfill", figure: `${name}, ${count} × 1 KiB`, value: r.rate, unit: "items/s", note: r.cpu, ...(isPg ? { baseline, goal: "≥ 1.0×", met: r.rate >= baseline } : {}) });
      }
      record({ section: "verify", figure: `${name}, ${count} keys`, value: r.verifyRate!, unit: "keys/s" });
      record({ section: "memory", figure: `sidecar peak RSS, backfill + verify ${name} ${count} keys`, value: r.peak, unit: "MB", note: r.memoryNote, goal: "≤ 100 MB", met: r.peak <= 100 });
    } catch (err) {
      record({ section: "backfill", figure: `${name}: failed`, value: NaN, unit: "", note: (err as Error).message.slice(0, 100) });
    } finally {
      await dropPg(target);
      if (source !== pgSource) await dropPg(source);
    }
  }

  const sqliteSource = await storeUrl("sqlite", "bfsrc");
  await preloadSqlite(sqliteSource, n, 1024);
  const pgTarget = await storeUrl("postgres", "bftsqlite");
  try {
    const r = await backfillRun(sqliteSource, pgTarget, n, false);
    record({ section: "backfill", figure: `sqlite → postgres, ${n} × 1 KiB`, value: r.rate, unit: "items/s", note: r.cpu, baseline, goal: "≥ 1.0×", met: r.rate >= baseline });
    record({ section: "memory", figure: `sidecar idle RSS, settled (sqlite → postgres configured)`, value: r.idle, unit: "MB", note: `${r.idleFile.toFixed(0)} MB of it file-backed: node binary, libraries`, goal: "≤ 60 MB", met: r.idle <= 60 });
  } finally {
    await dropPg(pgTarget);
    await dropPg(pgSource);
  }

  if (!QUICK) {
    // Memory must be flat in the number of keys: 1M small items.
    const big = 1_000_000;
    const src = await storeUrl("postgres", "bf1m");
    const dst = await storeUrl("postgres", "bf1mt");
    await preloadPostgres(src, big, 64);
    try {
      const r = await backfillRun(src, dst, big, false);
      record({ section: "backfill", figure: `postgres → postgres, ${big} × 64 B`, value: r.rate, unit: "items/s", note: r.cpu });
      record({ section: "memory", figure: `sidecar peak RSS, backfill of ${big} keys`, value: r.peak, unit: "MB", note: r.memoryNote, goal: "≤ 100 MB", met: r.peak <= 100 });
    } finally {
      await dropPg(src);
      await dropPg(dst);
    }
  }
}

// 5 (part). Memory idle and under load, on the memory backend.
async function memory(): Promise<void> {
  const p = await sidecarProcess({ DECANT_CURRENT: "memory:" });
  try {
    const early = p.rssMb();
    const idle = await p.settledRssMb();
    record({ section: "memory", figure: "sidecar RSS just after start (memory backend)", value: early, unit: "MB" });
    record({ section: "memory", figure: "sidecar idle RSS, settled (memory backend)", value: idle, unit: "MB", note: `${p.rssMb("RssFile").toFixed(0)} MB of it file-backed: node binary, libraries`, goal: "≤ 60 MB", met: idle <= 60 });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, p.rssMb())), 100);
    await load((i) => p.client.put("bench", `k${i % 1000}`, value1k), 64, QUICK ? 500 : 5000);
    clearInterval(sampler);
    record({ section: "memory", figure: "sidecar RSS under load (64 in flight, 1 KiB puts)", value: peak, unit: "MB" });
  } finally {
    await p.stop();
  }
}

// 7. GetStatus on a DynamoDB control store shared with other namespaces' items: the control
// records are read by Query and GetItem, so the latency must not grow with the table (issue 18).
async function statusOnDynamo(): Promise<void> {
  const endpoint = await dynamoEndpoint();
  const counts = QUICK ? [0, 500, 2000] : [0, 5000, 40_000];
  const calls = QUICK ? 10 : 100;
  /** GetStatus p50/p99 through a sidecar whose current (and control) store is `table`, holding n items of another namespace. */
  const measureStatus = async (table: string, n: number, legacy: boolean) => {
    const url = `dynamodb://${table}?region=us-east-1&endpoint=${endpoint}`;
    if (legacy) await createLegacyDynamoTable(endpoint, table);
    const store = await openStore(url);
    await store.put("warm", "k", value100); // creates the table (the bucketed layout) if absent
    await store.close();
    const items = Array.from({ length: n }, (_, i) => itemAttrs(legacy ? "legacy" : "buckets", "bulk", { key: `key_${i}`, value: value100, version: 1n }));
    await writeItems(endpoint, table, items);
    const s = await inProcessSidecar({ DECANT_CURRENT: url });
    try {
      const latencies: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t = performance.now();
        await s.client.call("migration", "GetStatus", {});
        latencies.push(performance.now() - t);
      }
      latencies.sort((a, b) => a - b);
      return { p50: latencies[Math.floor(calls / 2)]!, p99: latencies[Math.min(calls - 1, Math.floor(calls * 0.99))]! };
    } finally {
      await s.stop();
    }
  };
  let base = NaN;
  for (const n of counts) {
    const r = await measureStatus(`bench_status_${n}_${run}`, n, false);
    if (n === 0) base = r.p50;
    record({ section: "status", figure: `GetStatus p50, DynamoDB control store, ${n} unrelated items`, value: r.p50, unit: "ms", baseline: base, ...(n ? { goal: "≤ 1.5×", met: r.p50 <= 1.5 * base } : {}) });
    record({ section: "status", figure: `GetStatus p99, DynamoDB control store, ${n} unrelated items`, value: r.p99, unit: "ms" });
  }
  const n = counts[1]!;
  const old = await measureStatus(`bench_status_legacy_${run}`, n, true);
  record({ section: "status", figure: `GetStatus p50, legacy table layout (pk = ns#key), ${n} unrelated items`, value: old.p50, unit: "ms", baseline: base, note: "earlier versions: a table Scan per listing" });
}

async function main(): Promise<void> {
  const started = new Date();
  console.log(`decant bench — ${started.toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}${QUICK ? " — QUICK (smoke) run" : ""}`);
  try {
    if (want("hop")) await hop();
    if (want("backend")) await backendOverhead();
    if (want("dual")) await dualWrite();
    if (want("memory")) await memory();
    if (want("backfill")) await backfillAndVerify();
    if (want("dynamodb")) await dynamodbFront();
    if (want("status") && BACKENDS.includes("dynamodb")) await statusOnDynamo();
    // What Decant itself costs (issue 17): bench/cost.ts, with this file's helpers.
    const costContext = { quick: QUICK, runMs: RUN_MS, backends: BACKENDS, storeUrl, directDriver, sidecarProcess, dynamoEndpoint, preloadPostgres, dropPg };
    if (want("cost")) await (await import("./cost.js")).cost(costContext);
    else {
      // --only cost-dynamodb: section (ii) of cost.ts alone (CPU per item into DynamoDB).
      if (ONLY?.has("cost-dynamodb")) await (await import("./cost.js")).dynamoCpu(costContext);
      // --only cost-rss: section (iii) of cost.ts alone (peak RSS of a backfill).
      if (ONLY?.has("cost-rss")) await (await import("./cost.js")).backfillRss(costContext);
    }
    if (want("scale")) await scale({ quick: QUICK, pgUrl: TEST_URLS.postgres, dynamoEndpoint, dynamoPid: () => dynalite?.pid, run, backends: BACKENDS });
  } finally {
    await dynalite?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${started.toISOString().slice(0, 10)}${QUICK ? "-quick" : ""}.json`;
  writeFileSync(file, `${JSON.stringify({ date: started.toISOString(), machine, quick: QUICK, rows }, null, 2)}\n`);
  console.log(`\n${table()}\n\nwrote ${file}`);
  if (!QUICK && !ONLY && !values.backend) {
    const doc = readFileSync("docs/PERFORMANCE.md", "utf8").replace(/<!-- results -->[\s\S]*<!-- \/results -->/, `<!-- results -->\nMeasured ${started.toISOString()} on ${machine}.\n\n${table()}\n<!-- /results -->`);
    writeFileSync("docs/PERFORMANCE.md", doc);
    console.log("updated docs/PERFORMANCE.md");
  }
  process.exit(0);
}

await main();
