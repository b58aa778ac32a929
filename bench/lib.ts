// Measurement helpers. Every figure is reported as a ratio to a baseline measured in the
// same run, because these machines are small and noisy.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { openStore } from "../src/backends/index.js";
import { CONTROL_NAMESPACE } from "../src/protocol/types.js";
import { serviceDefinition } from "../src/server/proto.js";

/**
 * The V8 flags the image starts the sidecar with (deploy/Dockerfile's NODE_OPTIONS, which the
 * Makefile and k8s repeat): Decant is measured as it ships (the young generation's size sets how
 * often it collects garbage). Read from the Dockerfile, so the two cannot drift apart.
 */
export function shippedNodeFlags(): string[] {
  const options = /^ENV NODE_OPTIONS=(.*)$/m.exec(readFileSync(new URL("../deploy/Dockerfile", import.meta.url), "utf8"))?.[1];
  if (options === undefined) throw new Error("deploy/Dockerfile sets no NODE_OPTIONS: say here which flags the sidecar ships with");
  return options.trim().split(/\s+/);
}

/**
 * Compiles once into .tmp/bench-dist and returns its main: the sidecar as the image runs it
 * (tsc's output), not through tsx, whose loader and helpers cost CPU and memory of their own.
 */
let built: string | undefined;
export async function buildOnce(): Promise<string> {
  if (built) return built;
  const out = ".tmp/bench-dist";
  await new Promise<void>((resolve, reject) => {
    const tsc = spawn(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json", "--outDir", out], { stdio: "inherit" });
    tsc.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tsc exited ${code}`))));
  });
  return (built = `${out}/src/cli/main.js`);
}

export interface LoadResult {
  ops: number;
  /** CPU µs per call of the server behind the op, counted over its own slices only (alternating with `cpu`). */
  cpuUsPerCall?: number;
  seconds: number;
  opsPerSec: number;
  p50: number; // ms
  p99: number; // ms
}

const quantile = (sorted: number[], q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

/** Runs `op` with `inFlight` callers for `ms` (after a short warm-up) and reports throughput and latency. */
export async function load(op: (i: number) => Promise<unknown>, inFlight: number, ms: number, warmupMs = Math.min(500, ms / 4)): Promise<LoadResult> {
  const { latencies, seconds } = await measure(op, inFlight, ms, warmupMs);
  return summary(latencies, seconds);
}

/** Latencies (ms) of every call after the warm-up, the seconds they took, and how many calls ran in all (warm-up included). */
async function measure(op: (i: number) => Promise<unknown>, inFlight: number, ms: number, warmupMs: number): Promise<{ latencies: number[]; seconds: number; calls: number }> {
  let calls = 0;
  const run = async (durationMs: number, record: boolean) => {
    const latencies: number[] = [];
    let n = 0;
    const end = performance.now() + durationMs;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) {
          const i = n++;
          const t = performance.now();
          await op(i);
          calls++;
          if (record) latencies.push(performance.now() - t);
        }
      }),
    );
    return { latencies, seconds: (performance.now() - start) / 1000 };
  };
  await run(warmupMs, false);
  return { ...(await run(ms, true)), calls };
}

function summary(latencies: number[], seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, seconds, opsPerSec: latencies.length / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

export interface Row {
  section: string;
  figure: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  goal?: string;
  met?: boolean;
  note?: string;
}

export const rows: Row[] = [];

export function record(row: Row): void {
  if (row.baseline !== undefined && row.ratio === undefined) row.ratio = row.value / row.baseline;
  rows.push(row);
  const ratio = row.ratio !== undefined ? ` ratio ${row.ratio.toFixed(2)}` : "";
  const goal = row.goal ? ` goal ${row.goal} ${row.met === undefined ? "" : row.met ? "MET" : "NOT MET"}` : "";
  console.log(`  ${row.section.padEnd(12)} ${row.figure.padEnd(52)} ${fmt(row.value).padStart(10)} ${row.unit}${row.baseline !== undefined ? ` (baseline ${fmt(row.baseline)})` : ""}${ratio}${goal}${row.note ? `  [${row.note}]` : ""}`);
}

export const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));

export function table(): string {
  const head = "| section | figure | value | baseline | ratio | goal | met |\n|---|---|---|---|---|---|---|";
  return [
    head,
    ...rows.map((r) => `| ${r.section} | ${r.figure}${r.note ? ` (${r.note})` : ""} | ${fmt(r.value)} ${r.unit} | ${r.baseline !== undefined ? fmt(r.baseline) : ""} | ${r.ratio !== undefined ? r.ratio.toFixed(2) : ""} | ${r.goal ?? ""} | ${r.met === undefined ? "" : r.met ? "yes" : "no"} |`),
  ].join("\n");
}

/**
 * Runs each operation with `inFlight` callers in turn, `slices` times, for `ms` in all, and
 * merges each one's slices: a figure and its baseline then share the machine's slow stretches
 * instead of one getting the quiet half of the run. Slices, not call by call: a call right
 * after another kind of call pays for that one's leftover work (measured: the driver's Get
 * doubled between sidecar calls), which would favour whichever is measured against it.
 */
export async function alternating(ops: ((i: number) => Promise<unknown>)[], inFlight: number, ms: number, slices = 4, cpu?: (() => number)[]): Promise<LoadResult[]> {
  const slice = ms / slices / ops.length;
  const all = ops.map(() => ({ latencies: [] as number[], seconds: 0, calls: 0, cpuSeconds: 0 }));
  for (let s = 0; s < slices; s++) {
    for (const [k, op] of ops.entries()) {
      // A server's CPU is read around its own slices only: its background work (timers, a
      // control store's heartbeat) while the others run is not charged to its calls.
      const cpu0 = cpu?.[k]?.();
      const part = await measure(op, inFlight, slice, s === 0 ? Math.min(500, slice / 4) : Math.min(100, slice / 4));
      if (cpu0 !== undefined) all[k]!.cpuSeconds += cpu![k]!() - cpu0;
      for (const ms of part.latencies) all[k]!.latencies.push(ms); // not push(...): millions in-process
      all[k]!.seconds += part.seconds;
      all[k]!.calls += part.calls;
    }
  }
  return all.map(({ latencies, seconds, calls, cpuSeconds }, k) => ({ ...summary(latencies, seconds), ...(cpu?.[k] ? { cpuUsPerCall: (cpuSeconds * 1e6) / calls } : {}) }));
}

/** The hop's baseline: a bare grpc-js server answering Store Get/Put from a Map (no validation, no store). */
export function bareStoreServer(): grpc.Server {
  const server = new grpc.Server();
  const map = new Map<string, { value: Buffer; version: number }>();
  server.addService(serviceDefinition("Store"), {
    Get: (call: grpc.ServerUnaryCall<{ namespace: string; key: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const hit = map.get(`${call.request.namespace}/${call.request.key}`);
      cb(null, hit ? { found: true, item: { key: call.request.key, value: hit.value, version: String(hit.version) } } : { found: false });
    },
    Put: (call: grpc.ServerUnaryCall<{ namespace: string; key: string; value: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const k = `${call.request.namespace}/${call.request.key}`;
      const version = (map.get(k)?.version ?? 0) + 1;
      map.set(k, { value: call.request.value, version });
      cb(null, { version: String(version) });
    },
  });
  return server;
}

/** One Store Get/Put done with a database driver alone, answered in the Store protocol's shape. */
interface Forwarded {
  get(ns: string, key: string): Promise<{ found: boolean; item?: { key: string; value: Buffer; version: string } }>;
  put(ns: string, key: string, value: Buffer): Promise<{ version: string }>;
}

/**
 * What Decant's backend sends for a Get and an unconditional Put, with the driver alone: the same
 * statements (PostgreSQL's named ones, MySQL's Put in its transaction), no envelope, no checks.
 * Redis: the read script's two HGETs, and a one-script upsert (Decant's write script also keeps
 * its ordered key index and tombstones).
 */
export async function forwardingDriver(backend: string, url: string): Promise<Forwarded> {
  const found = (key: string, value: Buffer, version: unknown) => ({ found: true, item: { key, value, version: String(version) } });
  if (backend === "postgres") {
    const pg = (await import("pg")).default;
    const u = new URL(url);
    const t = `"${u.searchParams.get("schema") ?? "public"}"."${u.searchParams.get("table")}"`;
    u.search = "";
    const pool = new pg.Pool({ connectionString: u.toString(), max: 10 });
    return {
      get: async (ns, key) => {
        const { rows } = await pool.query({ text: `SELECT key, encode(value, 'base64') AS value, version FROM ${t} WHERE ns = $1 AND key = $2`, values: [ns, key], name: "decant_get" });
        const r = rows[0] as { value: string | null; version: string } | undefined;
        return r && r.value !== null ? found(key, Buffer.from(r.value, "base64"), r.version) : { found: false };
      },
      put: async (ns, key, value) => {
        const text = `INSERT INTO ${t} AS t (ns, key, value, version) VALUES ($1, $2, $3, 1)
      ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = t.version + 1 RETURNING version`;
        const { rows } = await pool.query({ text, values: [ns, key, value], name: "decant_put" });
        return { version: String((rows[0] as { version: string }).version) };
      },
    };
  }
  if (backend === "mysql") {
    const mysql = (await import("mysql2/promise")).default;
    const u = new URL(url);
    const t = `\`${u.searchParams.get("table")}\``;
    u.search = "";
    const pool = mysql.createPool({ uri: u.toString(), connectionLimit: 10 });
    return {
      get: async (ns, key) => {
        const [rows] = await pool.query({ sql: `SELECT k, value, version FROM ${t} WHERE ns = ? AND k = ?`, values: [Buffer.from(ns), Buffer.from(key)] });
        const r = (rows as { value: Buffer | null; version: string }[])[0];
        return r && r.value !== null ? found(key, r.value, r.version) : { found: false };
      },
      put: async (ns, key, value) => {
        const conn = await pool.getConnection();
        try {
          await conn.query("START TRANSACTION");
          const [res] = await conn.query({ sql: `INSERT INTO ${t} (ns, k, value, version) VALUES (?, ?, ?, 1) ON DUPLICATE KEY UPDATE value = VALUES(value), version = LAST_INSERT_ID(version + 1)`, values: [Buffer.from(ns), Buffer.from(key), value] });
          await conn.query("COMMIT");
          const r = res as { affectedRows: number; insertId: number };
          return { version: r.affectedRows === 1 ? "1" : String(r.insertId) };
        } finally {
          conn.release();
        }
      },
    };
  }
  if (backend === "redis") {
    const { Redis } = await import("ioredis");
    const u = new URL(url);
    const prefix = u.searchParams.get("prefix") ?? "decant";
    u.search = "";
    const r = new Redis(u.toString());
    const keys = (ns: string) => [`${prefix}:{${ns}}:ver`, `${prefix}:{${ns}}:val`];
    return {
      get: async (ns, key) => {
        const [[, version], [, value]] = (await r.pipeline().hget(keys(ns)[0]!, key).hgetBuffer(keys(ns)[1]!, key).exec()) as [unknown, unknown][] as [[unknown, string | null], [unknown, Buffer | null]];
        return version && value ? found(key, value, version) : { found: false };
      },
      put: async (ns, key, value) => {
        const [ver, val] = keys(ns);
        const version = await r.eval("redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]); return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)", 2, ver!, val!, key, value);
        return { version: String(version) };
      },
    };
  }
  throw new Error(`no forwarding driver for ${backend}`);
}

/** The structural baseline: a bare grpc-js server that answers Store Get/Put by calling the driver directly. */
export async function bareForwarderServer(backend: string, url: string): Promise<grpc.Server> {
  const driver = await forwardingDriver(backend, url);
  const server = new grpc.Server();
  const answer = <T>(p: Promise<T>, cb: grpc.sendUnaryData<unknown>) =>
    p.then(
      (r) => cb(null, r),
      (err: Error) => cb({ code: grpc.status.UNAVAILABLE, details: err.message }),
    );
  server.addService(serviceDefinition("Store"), {
    Get: (call: grpc.ServerUnaryCall<{ namespace: string; key: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => answer(driver.get(call.request.namespace, call.request.key), cb),
    Put: (call: grpc.ServerUnaryCall<{ namespace: string; key: string; value: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) => answer(driver.put(call.request.namespace, call.request.key, call.request.value), cb),
  });
  return server;
}

/**
 * The next run over the same source is a migration of its own with its own control store: the
 * source forgets this run's (it records which control store coordinates it, and a sidecar with
 * another one refuses to start).
 */
export async function forgetControl(url: string): Promise<void> {
  const store = await openStore(url);
  try {
    await store.dropNamespace(CONTROL_NAMESPACE);
  } finally {
    await store.close();
  }
}
