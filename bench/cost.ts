// npm run bench -- --only cost: what Decant itself costs (issue 17), each figure beside its
// baselines measured in the same run.
//  (i)   Decant's own work per request = p50 through the sidecar − p50 of the bare grpc-js hop −
//        p50 of the same driver call alone; Get and Put on postgres, mysql, redis; 1 and 16 in
//        flight. Goal ≤ 0.1 ms. Beside it: the hop over a Unix socket vs TCP loopback.
//        DECANT_BENCH_COMPARE=MAIN_JS: a sidecar of that build joins the alternating slices too,
//        for a same-run A/B of the sidecar's CPU per call.
//  (ii)  Sidecar CPU ms per backfilled item and per Put into DynamoDB (dynalite), with the lean
//        data-path client (the default) and with client=sdk (the AWS SDK, as before it), next to
//        each client alone and to @aws-lite doing the same calls. Goal ≤ 0.4 ms CPU per item.
//        DECANT_BENCH_PROFILE=DIR: the lean Put sidecars run with --cpu-prof into DIR.
//        DECANT_BENCH_COMPARE=MAIN_JS: the lean Put figure A/B against another build's compiled
//        src/cli/main.js, the two sidecars alternating in one run.
//  (iii) Peak RSS during a 200k × 1 KiB backfill (postgres → postgres). Goal ≤ 100 MB.
// Run as a script with --bare-server ADDRESS, this file is the bare grpc-js server (its own
// process, like the sidecar, so both hops cross the same process boundary).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { itemAttrs } from "../src/backends/dynamodb.js";
import { DecantClient } from "../src/client/client.js";
import { alternating, bareForwarderServer, bareStoreServer, forgetControl, record, shippedNodeFlags, type LoadResult } from "./lib.js";

interface Direct {
  get(key: string): Promise<unknown>;
  put(key: string, value: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

interface SidecarProc {
  client: DecantClient;
  cpuSeconds(): number;
  rssMb(field?: string): number;
  anonSplitMb(): { heap: number; otherAnon: number };
  stop(): Promise<void>;
}

/** What run.ts lends this section (its helpers for stores, drivers and sidecar processes). */
export interface CostContext {
  quick: boolean;
  runMs: number;
  backends: string[];
  storeUrl(backend: string, tag: string): Promise<string>;
  directDriver(backend: string, url: string): Promise<Direct>;
  sidecarProcess(env: Record<string, string>): Promise<SidecarProc>;
  dynamoEndpoint(): Promise<string>;
  preloadPostgres(url: string, n: number, valueBytes: number): Promise<void>;
  dropPg(url: string): Promise<void>;
}

const ROOT = new URL("../", import.meta.url).pathname;

/** utime + stime of a process, from /proc (USER_HZ = 100). */
function procCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
const value100 = Buffer.alloc(100, 7);
/** A module name in a variable: the plugin ships no type declarations. */
const LITE_DYNAMODB = "@aws-lite/dynamodb";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the bare grpc-js server, in its own process ----------------------------------------------

function serveBare(address: string): void {
  const server = bareStoreServer();
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`${port}\n`);
  });
}

if (process.argv[2] === "--bare-server") serveBare(process.argv[3]!);

/** The bare forwarder: the bare server, answering from the database through the driver alone. */
async function serveForwarder(backend: string, url: string, address: string): Promise<void> {
  const server = await bareForwarderServer(backend, url);
  process.once("SIGTERM", () => process.exit(0)); // an orderly exit, so --cpu-prof writes its profile
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.stdout.write(`${port}\n`);
  });
}

if (process.argv[2] === "--bare-forwarder") void serveForwarder(process.argv[3]!, process.argv[4]!, process.argv[5]!);

/** Starts a child process: the bare server, or `decant serve`; resolves once a client call works. */
async function child(args: string[], env: Record<string, string>, address: (out: string) => string, nodeFlags: string[] = [], tsx = true): Promise<{ proc: ChildProcess; client: DecantClient; stop(): Promise<void> }> {
  // A compiled build runs without tsx, as run.ts starts the sidecar (tsx's hooks add a thread).
  const proc = spawn(process.execPath, [...nodeFlags, ...(tsx ? ["--import", "tsx"] : []), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const deadline = Date.now() + 60_000;
  let client: DecantClient | undefined;
  for (;;) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`${args.join(" ")} did not start: ${err}`);
    const addr = address(out);
    if (addr) {
      client ??= new DecantClient(addr);
      if (await client.call("store", "Get", { namespace: "bench", key: "x" }, 1000).then(() => true, () => false)) break;
    }
    await sleep(200);
  }
  return {
    proc,
    client,
    stop: async () => {
      client!.close();
      proc.kill("SIGTERM");
      if (proc.exitCode === null) await new Promise((r) => proc.once("exit", r));
    },
  };
}

const printedPort = (out: string) => (/^(\d+)$/m.test(out) ? `127.0.0.1:${/^(\d+)$/m.exec(out)![1]}` : "");
const bareServer = (address: string) => child(["bench/cost.ts", "--bare-server", address], {}, (out) => (address.startsWith("unix:") ? (out ? address : "") : printedPort(out)));
/** With the sidecar's V8 flag (run.ts sidecarProcess), so the two differ only in what runs per call. */
const bareForwarder = (backend: string, url: string) => child(["bench/cost.ts", "--bare-forwarder", backend, url, "127.0.0.1:0"], {}, printedPort, shippedNodeFlags());

// ---- (i) Decant's own work per request --------------------------------------------------------

async function ownWork(ctx: CostContext, scratch: string): Promise<void> {
  const compareMain = process.env.DECANT_BENCH_COMPARE;
  const bare = await bareServer("127.0.0.1:0");
  try {
    for (let i = 0; i < 200; i++) await bare.client.put("bench", `k${i}`, value100);
    for (const backend of ["postgres", "mysql", "redis"].filter((b) => ctx.backends.includes(b))) {
      let url: string;
      let decant: SidecarProc | undefined;
      let direct: Direct | undefined;
      let forwarder: Awaited<ReturnType<typeof bareForwarder>> | undefined;
      let before: SidecarProc | undefined;
      try {
        url = await ctx.storeUrl(backend, "cost");
        decant = await ctx.sidecarProcess({ DECANT_CURRENT: url, DECANT_CONTROL: `sqlite:${join(scratch, `control-cost-${backend}.db`)}` });
        // The same control store: a store is coordinated by one control store (its binding), so the two are replicas of one deployment.
        if (compareMain) before = await ctx.sidecarProcess({ DECANT_CURRENT: url, DECANT_CONTROL: `sqlite:${join(scratch, `control-cost-${backend}.db`)}`, DECANT_BENCH_MAIN: compareMain });
        direct = await ctx.directDriver(backend, url);
        for (let i = 0; i < 200; i++) await decant.client.put("bench", `k${i}`, value100); // the sidecar made the table
        forwarder = await bareForwarder(backend, url);
      } catch (err) {
        record({ section: "cost", figure: `${backend}: not measured`, value: NaN, unit: "", note: (err as Error).message.slice(0, 80) });
        await decant?.stop();
        await before?.stop();
        await direct?.close();
        await forwarder?.stop();
        continue;
      }
      try {
        for (let i = 0; i < 200; i++) await direct.put(`k${i}`, value100);
        // Work the sidecar does with no request (heartbeat, control-store reads, metrics): not per call.
        const idle0 = decant.cpuSeconds();
        await sleep(3000);
        record({ section: "cost", figure: `${backend}: sidecar CPU with no requests (heartbeat, control store)`, value: ((decant.cpuSeconds() - idle0) * 1000) / 3, unit: "ms/s", note: "DECANT_HEARTBEAT_MS=200 in the bench (default 1000)" });
        for (const [op, inFlight] of [["Get", 1], ["Put", 1], ["Get", 16], ["Put", 16]] as const) {
          const via = (c: DecantClient) => (i: number) => (op === "Get" ? c.get("bench", `k${i % 200}`) : c.put("bench", `k${i % 200}`, value100));
          const viaDriver = (i: number) => (op === "Get" ? direct!.get(`k${i % 200}`) : direct!.put(`k${i % 200}`, value100));
          const fwdPid = forwarder.proc.pid!;
          // CPU per call of each server process over its own slices: a load-proof measure next to
          // the p50s, which include waiting for a core on a busy machine.
          const cpu = [() => procCpuSeconds(bare.proc.pid!), () => 0, () => procCpuSeconds(fwdPid), () => decant!.cpuSeconds(), ...(before ? [() => before!.cpuSeconds()] : [])];
          const targets = [via(bare.client), viaDriver, via(forwarder.client), via(decant.client), ...(before ? [via(before.client)] : [])];
          const [h, drv, f, d, b] = (await alternating(targets, inFlight, targets.length * ctx.runMs, 4, cpu)) as [LoadResult, LoadResult, LoadResult, LoadResult, LoadResult?];
          if (b) record({ section: "cost", figure: `${backend} ${op}, ${inFlight} in flight: server CPU per call, this build vs ${compareMain}`, value: d.cpuUsPerCall!, unit: "µs", baseline: b.cpuUsPerCall!, note: `the two sidecars alternating in one run (DECANT_BENCH_COMPARE); p50 ${d.p50.toFixed(3)} vs ${b.p50.toFixed(3)} ms; load average ${loadavg()[0]!.toFixed(1)}` });
          const [bareCpuUs, fwdCpuUs, sidecarCpuUs] = [h.cpuUsPerCall!, f.cpuUsPerCall!, d.cpuUsPerCall!];
          const own = d.p50 - h.p50 - drv.p50;
          // The same process structure with no Decant code in it: what is left is Decant's own.
          const ownVsForwarder = d.p50 - f.p50;
          record({
            section: "cost",
            figure: `${backend} ${op}, ${inFlight} in flight: Decant's own work (sidecar − bare forwarder, p50)`,
            value: ownVsForwarder,
            unit: "ms",
            goal: "≤ 0.1 ms",
            met: ownVsForwarder <= 0.1,
            note: `sidecar ${d.p50.toFixed(3)}, bare forwarder ${f.p50.toFixed(3)} ms (a grpc-js server in its own process calling the same driver with the same statements)`,
          });
          record({ section: "cost", figure: `${backend} ${op}, ${inFlight} in flight: server CPU per call, sidecar vs bare forwarder`, value: sidecarCpuUs, unit: "µs", baseline: fwdCpuUs, note: `Decant's own CPU ${(sidecarCpuUs - fwdCpuUs).toFixed(0)} µs/call; from /proc, 10 ms ticks` });
          record({
            section: "cost",
            figure: `${backend} ${op}, ${inFlight} in flight: Decant's own work (sidecar − hop − driver, p50)`,
            value: own,
            unit: "ms",
            goal: "≤ 0.1 ms",
            met: own <= 0.1,
            note: `sidecar ${d.p50.toFixed(3)}, bare hop ${h.p50.toFixed(3)}, driver ${drv.p50.toFixed(3)} ms`,
          });
          record({ section: "cost", figure: `${backend} ${op}, ${inFlight} in flight: server CPU per call, sidecar vs bare grpc-js`, value: sidecarCpuUs, unit: "µs", baseline: bareCpuUs, note: "from /proc, 10 ms ticks; the sidecar's includes its driver's work" });
        }
      } finally {
        await direct.close();
        await forwarder.stop();
        await decant.stop();
        await before?.stop();
      }
    }
  } finally {
    await bare.stop();
  }
}

/** The hop over a Unix domain socket vs TCP loopback: Decant (memory) and the bare server, each both ways. */
async function socketHop(ctx: CostContext, scratch: string): Promise<void> {
  const sock = (name: string) => (mkdirSync(join(scratch, name), { recursive: true }), `unix:${join(scratch, name, "s.sock")}`);
  const decantOn = (listen: string) =>
    child(["src/cli/main.ts", "serve"], { DECANT_CURRENT: "memory:", DECANT_LISTEN: listen, DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_LOG_LEVEL: "error" }, () => (listen.endsWith(":0") ? "" : listen));
  const tcpPort = await freeTcpPort();
  const procs = await Promise.all([bareServer("127.0.0.1:0"), bareServer(sock("bare")), decantOn(`127.0.0.1:${tcpPort}`), decantOn(sock("decant"))]);
  try {
    const [bareTcp, bareUds, decTcp, decUds] = procs.map((p) => p.client);
    for (const c of [bareTcp!, bareUds!, decTcp!, decUds!]) for (let i = 0; i < 200; i++) await c.put("bench", `k${i}`, value100);
    for (const op of ["Get", "Put"] as const) {
      const via = (c: DecantClient) => (i: number) => (op === "Get" ? c.get("bench", `k${i % 200}`) : c.put("bench", `k${i % 200}`, value100));
      const [bt, bu, dt, du] = (await alternating([via(bareTcp!), via(bareUds!), via(decTcp!), via(decUds!)], 1, 4 * ctx.runMs)) as LoadResult[];
      record({ section: "cost", figure: `hop: ${op} p50 over a Unix socket vs TCP loopback (Decant, memory)`, value: du!.p50, unit: "ms", baseline: dt!.p50 });
      record({ section: "cost", figure: `hop: ${op} p50 over a Unix socket vs TCP loopback (bare grpc-js)`, value: bu!.p50, unit: "ms", baseline: bt!.p50 });
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

async function freeTcpPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

// ---- (ii) CPU per item into DynamoDB ----------------------------------------------------------

/** CPU ms of this process per call of `fn`: `n` calls with 16 in flight, after n/4 unmeasured ones (JIT warm-up). */
async function cpuPerCall(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const calls = async (from: number, to: number) => {
    let next = from;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < to; i = next++) await fn(i);
      }),
    );
  };
  await calls(n, n + Math.ceil(n / 4));
  const before = process.cpuUsage();
  await calls(0, n);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / n;
}

type PutTarget = { client: DecantClient; cpuSeconds(): number };

/**
 * Sidecar CPU ms per 1 KiB Put: `n` Puts at `inFlight`, after n/4 unmeasured ones (JIT warm-up,
 * as cpuPerCall gives the clients alone), CPU from /proc (10 ms ticks). With several sidecars
 * (an A/B of two builds) each gets `n` Puts in `rounds` slices, alternating, so load drifts
 * fall on both alike. The note says the sidecar's CPU with no requests (heartbeat, control
 * store: not per Put, but in the figure) measured over a second before.
 */
async function sidecarPutCpu(targets: PutTarget[], n: number, inFlight: number, key: (i: number) => string, rounds = 1): Promise<{ ms: number[]; note: string }> {
  const errors: string[] = [];
  const puts = async (p: PutTarget, from: number, to: number) => {
    let next = from;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        for (let i = next++; i < to; i = next++) await p.client.put("bench", key(i), Buffer.alloc(1024, 0xab)).catch((e: Error) => errors.push(e.message));
      }),
    );
  };
  // Each target its own keys: target t writes keys t·2n… (its own table or store anyway).
  for (const [t, p] of targets.entries()) await puts(p, 2 * n * t + n, 2 * n * t + n + Math.ceil(n / 4));
  const idle = targets.map((p) => p.cpuSeconds());
  await sleep(1000);
  const idleMsPerS = targets.map((p, t) => (p.cpuSeconds() - idle[t]!) * 1000);
  const cpu = targets.map(() => 0);
  let seconds = 0;
  const slice = Math.ceil(n / rounds);
  for (let r = 0; r < rounds; r++) {
    for (const t of r % 2 ? [...targets.keys()].reverse() : targets.keys()) {
      const p = targets[t]!;
      const [before, began] = [p.cpuSeconds(), performance.now()];
      await puts(p, 2 * n * t + r * slice, 2 * n * t + Math.min(n, (r + 1) * slice));
      cpu[t]! += p.cpuSeconds() - before;
      if (t === 0) seconds += (performance.now() - began) / 1000;
    }
  }
  const ms = cpu.map((c) => (c * 1000) / n);
  const failed = errors.length ? `; ${errors.length} Puts failed, e.g. ${errors[0]!.slice(0, 100)}` : "";
  const idleShare = (idleMsPerS[0]! * seconds) / n;
  return {
    ms,
    note: `${n} Puts after ${Math.ceil(n / 4)} unmeasured${rounds > 1 ? `, in ${rounds} alternating slices` : ""}; with no requests the sidecar used ${idleMsPerS[0]!.toFixed(0)} ms/s, ~${idleShare.toFixed(3)} ms of each Put's figure; load average ${loadavg()[0]!.toFixed(1)}${failed}`,
  };
}

/**
 * DECANT_BENCH_COMPARE=MAIN_JS: another build's compiled src/cli/main.js (tsc -p tsconfig.build.json
 * of another checkout), started as run.ts starts this one, for the same-run A/B of the Put figure.
 */
async function compareSidecar(main: string, env: Record<string, string>, nodeFlags: string[]): Promise<PutTarget & { stop(): Promise<void> }> {
  const port = await freeTcpPort();
  const c = await child([main, "serve"], { DECANT_LISTEN: `127.0.0.1:${port}`, DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_LOG_FORMAT: "json", DECANT_HEARTBEAT_MS: "200", ...env }, () => `127.0.0.1:${port}`, nodeFlags, false);
  return { client: c.client, cpuSeconds: () => procCpuSeconds(c.proc.pid!), stop: c.stop };
}

const VALUE_B64 = Buffer.alloc(1024, 0xab).toString("base64");

/** The conditional PutItem the backfill's applyIfNewer sends, in the adapter's item layout. */
const conditionalPut = (TableName: string, i: number) => ({
  TableName,
  Item: itemAttrs("buckets", "bench", { key: `key${i}`, value: Buffer.alloc(1024, 0xab), version: BigInt(1 + (i % 5)) }),
  ConditionExpression: "attribute_not_exists(#pk) OR #ver < :v",
  ExpressionAttributeNames: { "#pk": "pk", "#ver": "ver" },
  ExpressionAttributeValues: { ":v": { N: String(1 + (i % 5)) } },
});

export async function dynamoCpu(ctx: CostContext): Promise<void> {
  const endpoint = await ctx.dynamoEndpoint();
  const n = ctx.quick ? 100 : 4000;
  const sdk = await import("@aws-sdk/client-dynamodb");
  const credentials = { accessKeyId: "x", secretAccessKey: "x" };
  const TableName = `bench_cost_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new sdk.DynamoDBClient({ region: "us-east-1", endpoint, credentials });
  await admin.send(
    new sdk.CreateTableCommand({
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
  await sdk.waitUntilTableExists({ client: admin, maxWaitTime: 30 }, { TableName });
  const notNewer = (e: unknown) => {
    if ((e as Error).name !== "ConditionalCheckFailedException") throw e;
  };
  try {
    // The SDK as a plain client is built, and as Decant's adapter builds it (src/backends/dynamodb.ts).
    const plain = new sdk.DynamoDBClient({ region: "us-east-1", endpoint, credentials, maxAttempts: 1 });
    const sdkPlain = await cpuPerCall(n, (i) => plain.send(new sdk.PutItemCommand(conditionalPut(TableName, i))).catch(notNewer));
    plain.destroy();
    const { dynamoClientConfig } = await import("../src/backends/dynamodb.js");
    const tuned = new sdk.DynamoDBClient({ ...dynamoClientConfig({ region: "us-east-1", endpoint, timeoutMs: 5000 }), credentials });
    const sdkTuned = await cpuPerCall(n, (i) => tuned.send(new sdk.PutItemCommand(conditionalPut(TableName, 2 * n + i))).catch(notNewer));
    tuned.destroy();
    // @aws-lite: plain JS items, marshalled by its DynamoDB plugin; the same conditional write,
    // the value as a base64 string (its marshaller sends a Buffer as a JSON array of bytes, which
    // DynamoDB refuses: SerializationException).
    const awsLite = (await import("@aws-lite/client")).default;
    const lite = await awsLite({ region: "us-east-1", endpoint, accessKeyId: "x", secretAccessKey: "x", keepAlive: true, plugins: [import(LITE_DYNAMODB)], autoloadPlugins: false } as never);
    const liteDb = (lite as unknown as { DynamoDB: { PutItem(p: object): Promise<unknown> } }).DynamoDB;
    const litePer = await cpuPerCall(n, (i) =>
      liteDb
        .PutItem({
          TableName,
          Item: { pk: `bench#${i % 16}`, sk: `key${4 * n + i}`, val: VALUE_B64, ver: 1 + (i % 5) },
          ConditionExpression: "attribute_not_exists(#pk) OR #ver < :v",
          ExpressionAttributeNames: { "#pk": "pk", "#ver": "ver" },
          ExpressionAttributeValues: { ":v": 1 + (i % 5) },
        })
        .catch((e: { name?: string; message?: string }) => {
          if (!/ConditionalCheckFailed/.test(`${e.name} ${e.message}`)) throw e;
        }),
    );
    // The adapter's lean data-path client (src/backends/dynamodb-http.ts), alone.
    const { DynamoHttp } = await import("../src/backends/dynamodb-http.js");
    const leanSdk = new sdk.DynamoDBClient({ region: "us-east-1", endpoint, credentials });
    const lean = new DynamoHttp({ sdk: leanSdk, endpoint, maxSockets: 64 });
    const leanPer = await cpuPerCall(n, (i) => lean.call("PutItem", conditionalPut(TableName, 6 * n + i), {}).catch(notNewer));
    lean.destroy();
    leanSdk.destroy();
    record({ section: "cost", figure: "CPU per conditional PutItem: AWS SDK alone, default client", value: sdkPlain, unit: "ms", note: `${n} calls, 16 in flight` });
    record({ section: "cost", figure: "CPU per conditional PutItem: AWS SDK alone, Decant's client config", value: sdkTuned, unit: "ms", baseline: sdkPlain });
    record({ section: "cost", figure: "CPU per conditional PutItem: @aws-lite/client + dynamodb plugin", value: litePer, unit: "ms", baseline: sdkPlain, note: "value as a base64 S attribute" });
    record({ section: "cost", figure: "CPU per conditional PutItem: Decant's lean client alone (dynamodb-http.ts)", value: leanPer, unit: "ms", baseline: sdkTuned, note: "baseline: the AWS SDK, Decant's client config" });

    // Through the sidecar, with each data-path client: Puts into a DynamoDB current store, and a
    // backfill postgres → DynamoDB. client=sdk is the sidecar as it was before the lean client.
    // Beside them the same sidecar on the memory store: at 16 in flight its Puts arrive and leave
    // in batches (a read carries ~14 requests, one write answers them), which Puts waiting on
    // DynamoDB, answered one by one, never get; at 1 in flight it pays the hop unbatched.
    const perPut: Record<string, number> = {};
    const memoryControl = `sqlite:${join(tmpdir(), `decant-cost-control-${Math.random().toString(36).slice(2)}.db`)}`;
    const mem = await ctx.sidecarProcess({ DECANT_CURRENT: "memory:", DECANT_CONTROL: memoryControl });
    try {
      for (const inFlight of [16, 1]) {
        const r = await sidecarPutCpu([mem], n, inFlight, (i) => `k${i % 1000}`);
        perPut[`memory${inFlight}`] = r.ms[0]!;
        record({ section: "cost", figure: `sidecar CPU per Put on the memory store, ${inFlight} in flight`, value: r.ms[0]!, unit: "ms", note: `the hop and Decant's own work${inFlight === 16 ? ", batched" : ", unbatched"}; ${r.note}` });
      }
    } finally {
      await mem.stop();
    }
    // DECANT_BENCH_PROFILE=DIR: the lean Put sidecars run with --cpu-prof (profiles land in DIR as they exit).
    const profileDir = process.env.DECANT_BENCH_PROFILE;
    const compareMain = process.env.DECANT_BENCH_COMPARE;
    // A directory each: a fixed --cpu-prof-name would let a worker thread's profile overwrite the main one.
    const profileFlags = (name: string) => (profileDir ? ["--cpu-prof", `--cpu-prof-dir=${join(profileDir, name)}`] : []);
    for (const client of ["sdk", "lean"]) {
      const url = `${await ctx.storeUrl("dynamodb", `costput${client}`)}&client=${client}`;
      const control = () => `sqlite:${join(tmpdir(), `decant-cost-control-${Math.random().toString(36).slice(2)}.db`)}`;
      const flags = [...shippedNodeFlags(), ...(client === "lean" ? profileFlags("put-lean") : [])];
      const p = await ctx.sidecarProcess({ DECANT_CURRENT: url, DECANT_CONTROL: control(), DECANT_BENCH_NODE_FLAGS: flags.join(" ") });
      const other = client === "lean" && compareMain ? await compareSidecar(compareMain, { DECANT_CURRENT: `${await ctx.storeUrl("dynamodb", "costputcmp")}&client=lean`, DECANT_CONTROL: control() }, [...shippedNodeFlags(), ...profileFlags("put-lean-compare")]).catch(async (e) => (await p.stop(), Promise.reject(e))) : undefined;
      try {
        const r = await sidecarPutCpu(other ? [p, other] : [p], n, 16, (i) => `k${i}`, other ? 8 : 1);
        const v = (perPut[client] = r.ms[0]!);
        if (client === "sdk") record({ section: "cost", figure: "sidecar CPU per Put into DynamoDB (dynalite), 16 in flight, client=sdk (before)", value: v, unit: "ms", baseline: sdkTuned, note: `baseline: the AWS SDK alone, Decant's client config; ${r.note}` });
        else {
          const parts = `memory store 1 in flight ${perPut.memory1!.toFixed(3)} + lean client alone ${leanPer.toFixed(3)} = ${(perPut.memory1! + leanPer).toFixed(3)} ms`;
          record({ section: "cost", figure: "sidecar CPU per Put into DynamoDB (dynalite), 16 in flight, lean client", value: v, unit: "ms", baseline: perPut.sdk, goal: "≤ 0.4 ms", met: v <= 0.4, note: `baseline: the same sidecar with client=sdk; ${parts}; ${r.note}` });
          if (other) record({ section: "cost", figure: `sidecar CPU per Put into DynamoDB (dynalite), 16 in flight, lean client: this build vs ${compareMain}`, value: v, unit: "ms", baseline: r.ms[1], note: "the two sidecars alternating in one run (DECANT_BENCH_COMPARE)" });
        }
      } finally {
        await p.stop();
        await other?.stop();
      }
    }
    const m = ctx.quick ? 500 : 10_000;
    const perItem: Record<string, number> = {};
    for (const client of ["sdk", "lean"]) {
      const src = await ctx.storeUrl("postgres", `costbf${client}`);
      await ctx.preloadPostgres(src, m, 1024);
      const bf = await backfill(ctx, src, `${await ctx.storeUrl("dynamodb", `costbf${client}`)}&client=${client}`, m);
      const v = (perItem[client] = bf.cpuMsPerItem);
      const figure = `sidecar CPU per backfilled item, postgres → DynamoDB (dynalite), ${m} × 1 KiB`;
      if (client === "sdk") record({ section: "cost", figure: `${figure}, client=sdk (before)`, value: v, unit: "ms", baseline: sdkTuned, note: `${bf.rate.toFixed(0)} items/s; baseline: the AWS SDK alone` });
      else record({ section: "cost", figure: `${figure}, lean client`, value: v, unit: "ms", baseline: perItem.sdk, goal: "≤ 0.4 ms", met: v <= 0.4, note: `${bf.rate.toFixed(0)} items/s; baseline: the same sidecar with client=sdk` });
      await ctx.dropPg(src);
    }
  } finally {
    await admin.send(new sdk.DeleteTableCommand({ TableName })).catch(() => undefined);
    admin.destroy();
  }
}

/** A whole backfill in a sidecar process: rate, sidecar CPU per item, peak RSS and its file-backed part. */
async function backfill(ctx: CostContext, currentUrl: string, targetUrl: string, n: number, env: Record<string, string> = {}) {
  const control = `sqlite:${join(tmpdir(), `decant-cost-control-${Math.random().toString(36).slice(2)}.db`)}`;
  const p = await ctx.sidecarProcess({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_CONTROL: control, ...env });
  try {
    await p.client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: true });
    for (let i = 0; i < 100 && !(await p.client.call("migration", "GetStatus", {})).active; i++) await sleep(100);
    let peak = 0;
    let fileMb = 0;
    let anonMb = 0;
    let split = { heap: 0, otherAnon: 0 };
    const sample = () => {
      const rss = p.rssMb();
      if (rss > peak) [peak, fileMb, anonMb, split] = [rss, p.rssMb("RssFile"), p.rssMb("RssAnon"), p.anonSplitMb()];
    };
    const cpu = p.cpuSeconds();
    const t = performance.now();
    await p.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 4 });
    for (;;) {
      sample();
      const s = await p.client.call("migration", "GetStatus", {});
      if (s.backfill.state === "done") break;
      if (s.backfill.state === "failed") throw new Error(`backfill failed: ${s.backfill.error}`);
      await sleep(100);
    }
    return { rate: n / ((performance.now() - t) / 1000), cpuMsPerItem: ((p.cpuSeconds() - cpu) * 1000) / n, peak: Math.max(peak, p.rssMb("VmHWM")), fileMb, anonMb, ...split };
  } finally {
    await p.stop();
  }
}

// ---- (iii) peak RSS during a backfill ---------------------------------------------------------

/** The NODE_OPTIONS k8s/base/deployment.yaml gives the sidecar (it replaces the image's). */
function k8sNodeOptions(): string {
  const yaml = readFileSync(new URL("../k8s/base/deployment.yaml", import.meta.url), "utf8");
  const value = /- name: NODE_OPTIONS\s+value: (.*)$/m.exec(yaml)?.[1];
  if (value === undefined) throw new Error("k8s/base/deployment.yaml sets no NODE_OPTIONS: say here which flags it starts the sidecar with");
  return value.trim();
}

/**
 * The same backfill under each way the sidecar is started: as `make run` and the image start it
 * (the figure with the goal), with a fixed glibc mmap threshold alone, with V8's old generation
 * grown by 50 % between full GCs (like a cap, without one: the best RSS for the CPU found), as k8s/base/deployment.yaml does
 * (its NODE_OPTIONS add an old-space cap), the smallest peak found by start-up settings, and the
 * image with one backfill segment at a time instead of two (docs/PERFORMANCE.md, "Peak memory of
 * a backfill"). In one run, so the RSS and CPU ratios hold on a loaded machine.
 */
const IMAGE = shippedNodeFlags().join(" ");
const K8S = k8sNodeOptions();
const RSS_VARIANTS: { name: string; env: Record<string, string> }[] = [
  { name: `as the image and make run start it (${IMAGE})`, env: { DECANT_BENCH_NODE_FLAGS: IMAGE } },
  { name: "image + MALLOC_MMAP_THRESHOLD_=131072 alone", env: { DECANT_BENCH_NODE_FLAGS: IMAGE, MALLOC_MMAP_THRESHOLD_: "131072" } },
  { name: "image + --heap-growing-percent=50", env: { DECANT_BENCH_NODE_FLAGS: `${IMAGE} --heap-growing-percent=50` } },
  { name: `as k8s/base starts it (${K8S})`, env: { DECANT_BENCH_NODE_FLAGS: K8S } },
  { name: "smallest found (--max-semi-space-size=2 --max-old-space-size=256, MALLOC_MMAP_THRESHOLD_=131072)", env: { DECANT_BENCH_NODE_FLAGS: "--max-old-space-size=256 --max-semi-space-size=2", MALLOC_MMAP_THRESHOLD_: "131072" } },
  // Two segments at a time (the default) used to cost ~7 MB more than one (PERFORMANCE.md).
  { name: "image + backfill.segments_per_replica: 1 (one segment at a time, its writes still 4 in flight)", env: { DECANT_BENCH_NODE_FLAGS: IMAGE, DECANT_BACKFILL_SEGMENTS_PER_REPLICA: "1" } },
];

/**
 * DECANT_BENCH_RSS_BEFORE=path/to/main.js (another checkout's build, e.g. tsc -p tsconfig.build.json
 * --outDir .tmp/base-dist) adds that build under the image's flags, first, as the baseline of
 * every row; DECANT_BENCH_RSS=0,2 runs only those variants (indices into RSS_VARIANTS), and
 * DECANT_BENCH_RSS_FLAGS adds rows of other node flags (and NAME=value environment variables).
 */
function rssVariants(): { name: string; env: Record<string, string> }[] {
  const only = process.env.DECANT_BENCH_RSS?.split(",").map(Number);
  // DECANT_BENCH_RSS_FLAGS="--a --b;--c": more rows, one per ;-separated set of node flags.
  const more = (process.env.DECANT_BENCH_RSS_FLAGS ?? "").split(";").filter((f) => f.trim() !== "");
  // A NAME=value word in a set is an environment variable of that row (say MALLOC_MMAP_THRESHOLD_=131072).
  const row = (set: string) => {
    const words = set.trim().split(/\s+/);
    const vars = Object.fromEntries(words.filter((w) => /^[A-Z_][A-Z0-9_]*=/.test(w)).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]));
    return { name: set.trim(), env: { ...vars, DECANT_BENCH_NODE_FLAGS: words.filter((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w)).join(" ") } };
  };
  const chosen = [...RSS_VARIANTS.filter((_, i) => !only || only.includes(i)), ...more.map(row)];
  const before = process.env.DECANT_BENCH_RSS_BEFORE;
  return before ? [{ name: `BEFORE (${before}), image flags`, env: { ...RSS_VARIANTS[0]!.env, DECANT_BENCH_MAIN: before } }, ...chosen] : chosen;
}

export async function backfillRss(ctx: CostContext): Promise<void> {
  const n = ctx.quick ? 2000 : 200_000;
  const src = await ctx.storeUrl("postgres", "costrss");
  await ctx.preloadPostgres(src, n, 1024);
  let first: { peak: number; cpuMsPerItem: number } | undefined;
  try {
    for (const [i, variant] of rssVariants().entries()) {
      const dst = await ctx.storeUrl("postgres", `costrsst${i}`);
      try {
        const bf = await backfill(ctx, src, dst, n, variant.env);
        first ??= bf;
        const cpuRatio = i === 0 ? "" : `, ${(bf.cpuMsPerItem / first.cpuMsPerItem).toFixed(2)}× the CPU/item of the first`;
        record({
          section: "cost",
          figure: `sidecar peak RSS, backfill postgres → postgres, ${n} × 1 KiB, ${variant.name}`,
          value: bf.peak,
          unit: "MB",
          ...(i === 0 ? {} : { baseline: first.peak }),
          goal: "≤ 100 MB",
          met: bf.peak <= 100,
          note: `${bf.rate.toFixed(0)} items/s, ${bf.cpuMsPerItem.toFixed(3)} ms CPU/item${cpuRatio}; at the peak ${bf.fileMb.toFixed(0)} MB file-backed (node binary, libraries), ${bf.anonMb.toFixed(0)} MB anonymous (${bf.heap.toFixed(0)} MB glibc [heap], ${bf.otherAnon.toFixed(0)} MB other: V8 heap pages, arenas); load average ${loadavg()[0]!.toFixed(1)}`,
        });
      } finally {
        await forgetControl(src); // the next variant's sidecar has a control store of its own
        await ctx.dropPg(dst);
      }
    }
  } finally {
    await ctx.dropPg(src);
  }
}

export async function cost(ctx: CostContext): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "decant-cost-"));
  try {
    // DECANT_BENCH_COST=own (say) runs only those parts: a change is measured in minutes, not an hour.
    const part = (name: string) => (process.env.DECANT_BENCH_COST ?? "own,socket,dynamodb,rss").split(",").includes(name);
    if (part("own")) await ownWork(ctx, scratch);
    if (part("socket")) await socketHop(ctx, scratch);
    if (part("dynamodb") && ctx.backends.includes("dynamodb")) await dynamoCpu(ctx);
    if (part("rss") && ctx.backends.includes("postgres")) await backfillRss(ctx);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
