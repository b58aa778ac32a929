// The DynamoDB front's cost (issue 15): GetItem and PutItem through Decant's front on the memory
// store, against (a) a bare Node HTTP server answering the same calls from a Map — the HTTP hop
// alone — and (b) dynalite. Each server runs in its own process and the load generator in this
// one, so a server's own work is what differs; the three are measured in alternating slices of
// one run (bench/lib.ts alternating), after a warm-up, so a noisy machine's slow stretches hit
// all alike. Besides throughput and p50, each server's CPU time per call is read from /proc:
// the figure least moved by other processes on the machine.
//
//   npx tsx bench/front.ts [--quick] [--seconds N] [--profile DIR] [--compare CHECKOUT]
//   npx tsx bench/front.ts --instructions [--quick]
//
// --profile starts Decant with --cpu-prof (the profile lands in DIR when it exits). --compare
// runs a second Decant from another checkout (say `git archive OLD bin src | tar -x -C DIR` with
// node_modules linked) in the same alternating slices: before/after figures from one run.
// --instructions counts each server's main-thread instructions per call under callgrind instead
// (minutes; a figure the machine's load barely moves). Registered in bench/run.ts as the
// `dynamodb` section (the timed figures).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { freePort, startDynalite } from "../test/support/dynalite.js";
import { alternating, buildOnce, fmt, record, shippedNodeFlags, type LoadResult } from "./lib.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** dynalite wants an Authorization header of the right shape (and checks no more); Decant without credentials ignores it. */
const FAKE_SIGV4 = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/** A DynamoDB JSON-protocol call over keep-alive connections (no SDK: the server's cost shows). */
export function dynamoCaller(endpoint: string, inFlight: number) {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: inFlight });
  let calls = 0;
  const call = (target: string, body: string) =>
    new Promise<void>((resolve, reject) => {
      calls++;
      const req = httpRequest({ host: url.hostname, port: url.port, method: "POST", path: "/", agent, headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `DynamoDB_20120810.${target}`, "content-length": Buffer.byteLength(body), authorization: FAKE_SIGV4, "x-amz-date": "20260101T000000Z" } }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d));
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${target}: HTTP ${res.statusCode} ${text}`))));
      });
      req.on("error", reject);
      req.end(body);
    });
  return { call, calls: () => calls, close: () => agent.destroy() };
}

/** The HTTP hop alone, in its own process: parse the JSON, answer GetItem/PutItem from a Map. */
const BARE_SERVER = `
import { createServer } from "node:http";
const map = new Map();
const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    const op = String(req.headers["x-amz-target"]).split(".")[1];
    let out = {};
    if (op === "PutItem") map.set(input.Item.id.S, input.Item);
    else if (op === "GetItem") out = map.has(input.Key.id.S) ? { Item: map.get(input.Key.id.S) } : {};
    const body = JSON.stringify(out);
    res.writeHead(200, { "content-type": "application/x-amz-json-1.0", "content-length": Buffer.byteLength(body), "x-amzn-requestid": "bare" }).end(body);
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
`;

/**
 * The same answers from node:net with a minimal hand-made HTTP/1.1 parse (no checks): the least a
 * Node server can spend on this exchange, the floor under the front's lean path.
 */
const BARE_NET_SERVER = `
import { createServer } from "node:net";
const map = new Map();
createServer((socket) => {
  let buf = null;
  socket.on("data", (chunk) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const end = buf.indexOf("\\r\\n\\r\\n");
      if (end < 0) return;
      const head = buf.toString("latin1", 0, end);
      const length = Number(/\\r\\ncontent-length: *(\\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      const input = JSON.parse(buf.toString("utf8", end + 4, end + 4 + length));
      buf = buf.length > end + 4 + length ? buf.subarray(end + 4 + length) : null;
      const op = /\\r\\nx-amz-target: *DynamoDB_20120810\\.(\\w+)/i.exec(head)?.[1];
      let out = {};
      if (op === "PutItem") map.set(input.Item.id.S, input.Item);
      else if (op === "GetItem") out = map.has(input.Key.id.S) ? { Item: map.get(input.Key.id.S) } : {};
      const body = JSON.stringify(out);
      socket.write("HTTP/1.1 200 OK\\r\\ncontent-type: application/x-amz-json-1.0\\r\\ncontent-length: " + Buffer.byteLength(body) + "\\r\\nx-amzn-requestid: bare\\r\\n\\r\\n" + body);
      if (!buf) return;
    }
  });
}).listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
`;

/** The bench's table, and the calls every server gets: 1,000 keys, a 100-byte string and a number per item. */
const create = JSON.stringify({ TableName: "bench", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" });
const put = (i: number) => JSON.stringify({ TableName: "bench", Item: { id: { S: `k${i % 1000}` }, v: { S: "x".repeat(100) }, n: { N: String(i % 977) } } });
const get = (i: number) => JSON.stringify({ TableName: "bench", Key: { id: { S: `k${i % 1000}` } } });

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

interface Served {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

async function child(name: string, args: string[], env: Record<string, string>, port: number): Promise<Served> {
  const proc: ChildProcess = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const deadline = Date.now() + 60_000;
  while (!(await accepts(port))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start: ${log}`);
    await sleep(100);
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: proc.pid!,
    stop: async () => {
      proc.kill("SIGTERM");
      const hard = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(hard);
    },
  };
}

export const bareServer = async (profileDir?: string) => {
  const port = await freePort();
  const flags = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  return child("bare HTTP server", [...flags, "--input-type=module", "-e", BARE_SERVER], { PORT: String(port) }, port);
};

/**
 * `decant serve` on the memory store with the DynamoDB front: this checkout compiled by tsc, as
 * the image runs it; another checkout (--compare) through its bin/decant.js (tsx).
 */
export const decantServer = async (profileDir?: string, checkout = ".") => {
  const [grpc, metrics, port] = [await freePort(), await freePort(), await freePort()];
  const flags = [...shippedNodeFlags(), ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [])];
  const main = checkout === "." ? await buildOnce() : `${checkout}/bin/decant.js`;
  return child("decant", [...flags, main, "serve"], { DECANT_CURRENT: "memory:", DECANT_LISTEN: `127.0.0.1:${grpc}`, DECANT_METRICS_LISTEN: `127.0.0.1:${metrics}`, DECANT_DYNAMODB_LISTEN: `127.0.0.1:${port}`, DECANT_LOG_LEVEL: "error" }, port);
};

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export interface FrontBenchOptions {
  /** Measured milliseconds per (operation, in-flight) pair, shared by the three servers. */
  ms: number;
  slices?: number;
  profileDir?: string;
  /** Another checkout (bin/ and src/, node_modules linked) measured in the same slices: before/after figures. */
  compare?: string;
}

export async function frontBench(options: FrontBenchOptions): Promise<void> {
  const slices = options.slices ?? 6;
  const servers: Record<string, Served | Awaited<ReturnType<typeof startDynalite>>> = { bare: await bareServer(), decant: await decantServer(options.profileDir), dynalite: await startDynalite() };
  if (options.compare) servers.before = await decantServer(undefined, options.compare);
  const names = Object.keys(servers);
  try {
    for (const name of names) {
      const c = dynamoCaller(servers[name]!.endpoint, 1);
      if (name !== "bare") await c.call("CreateTable", create);
      // dynalite's table is CREATING for a moment.
      for (let tries = 0; !(await c.call("PutItem", put(0)).then(() => true, (e: Error) => (tries > 100 ? Promise.reject(e) : false))); tries++) await sleep(50);
      for (let i = 0; i < 1000; i++) await c.call("PutItem", put(i));
      c.close();
    }
    // Each server's idle CPU (Decant heartbeats its control record): taken off its CPU per call below,
    // since a server is idle while the others have their slices.
    const idleSeconds = Math.max(1, Math.min(5, options.ms / 4000));
    await sleep(500);
    const idle0 = names.map((n) => cpuSeconds(servers[n]!.pid!));
    await sleep(idleSeconds * 1000);
    const idleRate = names.map((n, k) => (cpuSeconds(servers[n]!.pid!) - idle0[k]!) / idleSeconds);
    record({ section: "dynamodb", figure: "Decant's idle CPU (heartbeats), taken off its CPU per call", value: idleRate[1]! * 1000, unit: "ms/s" });
    for (const op of ["GetItem", "PutItem"] as const) {
      for (const inFlight of [1, 64]) {
        const callers = names.map((n) => dynamoCaller(servers[n]!.endpoint, inFlight));
        const body = op === "GetItem" ? get : put;
        const cpuBefore = names.map((n) => cpuSeconds(servers[n]!.pid!));
        const started = performance.now();
        const [b, d, dl, before] = (await alternating(callers.map((c) => (i: number) => c.call(op, body(i))), inFlight, options.ms, slices)) as [LoadResult, LoadResult, LoadResult, LoadResult | undefined];
        // CPU per call, warm-up calls included, less what the server spends idle over the run.
        const elapsed = (performance.now() - started) / 1000;
        const cpuUs = names.map((n, k) => ((cpuSeconds(servers[n]!.pid!) - cpuBefore[k]! - idleRate[k]! * elapsed) / callers[k]!.calls()) * 1e6);
        callers.forEach((c) => c.close());
        const tag = `${op}, ${inFlight} in flight`;
        record({ section: "dynamodb", figure: `${tag}: throughput vs bare HTTP`, value: d.opsPerSec, unit: "ops/s", baseline: b.opsPerSec, goal: "≥ 0.8×", met: d.opsPerSec / b.opsPerSec >= 0.8 });
        record({ section: "dynamodb", figure: `${tag}: p50 vs bare HTTP`, value: d.p50, unit: "ms", baseline: b.p50, goal: "≤ 1.2×", met: d.p50 / b.p50 <= 1.2 });
        record({ section: "dynamodb", figure: `${tag}: server CPU per call vs bare HTTP`, value: cpuUs[1]!, unit: "µs", baseline: cpuUs[0]! });
        record({ section: "dynamodb", figure: `${tag}: throughput vs dynalite`, value: d.opsPerSec, unit: "ops/s", baseline: dl.opsPerSec, goal: "> 1×", met: d.opsPerSec > dl.opsPerSec });
        record({ section: "dynamodb", figure: `${tag}: p50 vs dynalite`, value: d.p50, unit: "ms", baseline: dl.p50, goal: "< 1×", met: d.p50 < dl.p50 });
        record({ section: "dynamodb", figure: `${tag}: server CPU per call vs dynalite`, value: cpuUs[1]!, unit: "µs", baseline: cpuUs[2]! });
        if (before) {
          record({ section: "dynamodb", figure: `${tag}: throughput vs ${options.compare}`, value: d.opsPerSec, unit: "ops/s", baseline: before.opsPerSec });
          record({ section: "dynamodb", figure: `${tag}: p50 vs ${options.compare}`, value: d.p50, unit: "ms", baseline: before.p50 });
          record({ section: "dynamodb", figure: `${tag}: server CPU per call vs ${options.compare}`, value: cpuUs[1]!, unit: "µs", baseline: cpuUs[3]! });
        }
      }
    }
  } finally {
    await Promise.all(names.map((n) => servers[n]!.stop()));
  }
}

/**
 * Instructions per call on a server's main thread, counted by valgrind's callgrind: a figure the
 * machine's load barely moves (timings on these shared 2-core machines swing by ±30 %). The
 * server runs under callgrind, is warmed up until its hot code is optimized, then counted over
 * `calls` sequential calls, less its idle rate (timers, heartbeats) over the same wall time.
 */
async function instructionsPerCall(name: string, args: string[], env: Record<string, string>, port: number, op: "GetItem" | "PutItem", warm: number, calls: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "decant-cg-"));
  const proc = spawn("valgrind", ["--tool=callgrind", "--separate-threads=yes", `--callgrind-out-file=${dir}/cg.%p`, process.execPath, ...args], { env: { ...process.env, ...env }, stdio: "ignore" });
  const control = (flag: string) => new Promise<void>((r) => spawn("callgrind_control", [flag, String(proc.pid)], { stdio: "ignore" }).once("exit", () => r()));
  let dumps = 0;
  /** Main-thread instructions since the last zeroing. */
  const dump = async (): Promise<number> => {
    await control("-d");
    const file = join(dir, `cg.${proc.pid}.${++dumps}-01`);
    for (let t = 0; t < 100 && !existsSync(file); t++) await sleep(100);
    return Number(/^(?:summary|totals): (\d+)/m.exec(readFileSync(file, "utf8"))?.[1]);
  };
  try {
    const deadline = Date.now() + 180_000;
    while (!(await accepts(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start under valgrind`);
      await sleep(200);
    }
    const c = dynamoCaller(`http://127.0.0.1:${port}`, 1);
    if (name !== "bare") await c.call("CreateTable", create);
    for (let i = 0; i < 1000; i++) await c.call("PutItem", put(i));
    for (let i = 0; i < warm; i++) await c.call(op, op === "GetItem" ? get(i) : put(i));
    await control("-z");
    let t = performance.now();
    await sleep(3000);
    const idlePerMs = (await dump()) / (performance.now() - t);
    await control("-z");
    t = performance.now();
    for (let i = 0; i < calls; i++) await c.call(op, op === "GetItem" ? get(i) : put(i));
    const busy = await dump();
    c.close();
    return (busy - idlePerMs * (performance.now() - t)) / calls;
  } finally {
    proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** --instructions: Decant's front, the bare node:http server and a bare server on node:net (the lean path's floor), counted by callgrind. */
async function instructionsBench(warm: number, calls: number): Promise<void> {
  const main = await buildOnce();
  for (const op of ["PutItem", "GetItem"] as const) {
    const count = async (name: string, args: (port: number) => string[], env: (port: number) => Record<string, string>) => {
      const port = await freePort();
      return instructionsPerCall(name, args(port), env(port), port, op, warm, calls);
    };
    const decant = await count("decant", () => [...shippedNodeFlags(), main, "serve"], (port) => ({ DECANT_CURRENT: "memory:", DECANT_LISTEN: "127.0.0.1:0", DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_DYNAMODB_LISTEN: `127.0.0.1:${port}`, DECANT_LOG_LEVEL: "error" }));
    const bare = await count("bare", () => ["--input-type=module", "-e", BARE_SERVER], (port) => ({ PORT: String(port) }));
    const net = await count("bare", () => ["--input-type=module", "-e", BARE_NET_SERVER], (port) => ({ PORT: String(port) }));
    record({ section: "dynamodb", figure: `${op}: main-thread instructions per call vs bare node:http server (callgrind)`, value: Math.round(decant), unit: "instr", baseline: Math.round(bare) });
    record({ section: "dynamodb", figure: `${op}: main-thread instructions per call vs bare node:net server (callgrind)`, value: Math.round(decant), unit: "instr", baseline: Math.round(net) });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, seconds: { type: "string" }, profile: { type: "string" }, compare: { type: "string" }, instructions: { type: "boolean" } } });
  if (values.instructions) {
    console.log(`decant front bench — ${new Date().toISOString()} — main-thread instructions per call under callgrind`);
    await instructionsBench(values.quick ? 2000 : 8000, values.quick ? 500 : 3000);
    process.exit(0);
  }
  const seconds = values.seconds ? Number(values.seconds) : values.quick ? 1 : 12;
  console.log(`decant front bench — ${new Date().toISOString()} — ${fmt(seconds)} s per operation and in-flight level, 3 servers alternating`);
  await frontBench({ ms: seconds * 1000, profileDir: values.profile, compare: values.compare });
  process.exit(0);
}
