// A local DynamoDB for tests: dynalite (an in-memory DynamoDB implementation) run as a child
// process on a free loopback port, so tests need no AWS account and no Docker. Set
// DECANT_TEST_DYNAMODB_ENDPOINT to use a server you run yourself (DynamoDB Local, say) instead.
import { spawn, type ChildProcess } from "node:child_process";
import { BatchWriteItemCommand, CreateTableCommand, DescribeTableCommand, DynamoDBClient, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { createRequire } from "node:module";
import { Agent, createServer as createHttpServer, request } from "node:http";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { freePort } from "./ports.js";

export interface Dynalite {
  /** http://127.0.0.1:PORT, for the endpoint= option of a dynamodb: URL. */
  endpoint: string;
  /** The child's pid (undefined for an external server). */
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface DynaliteOptions {
  /** How long a new table stays CREATING (dynalite's default is 500 ms). */
  createTableMs?: number;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
}

export { freePort };

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

export async function startDynalite(options: DynaliteOptions = {}): Promise<Dynalite> {
  const external = process.env.DECANT_TEST_DYNAMODB_ENDPOINT;
  if (external) return { endpoint: external, pid: undefined, stop: async () => undefined };

  const cli = createRequire(import.meta.url).resolve("dynalite/cli.js");
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, "--host", "127.0.0.1", "--port", String(port), "--createTableMs", String(options.createTableMs ?? 50), "--deleteTableMs", "50", "--updateTableMs", "50"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  // Never leave an orphan behind, even if a test run forgets stop() or mocha exits hard.
  const killOnExit = () => {
    if (!exited && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  };
  process.once("exit", killOnExit);
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();

  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (exited || child.pid === undefined) return;
    process.kill(child.pid, "SIGTERM");
    const hard = setTimeout(() => !exited && child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 2000);
    await exit;
    clearTimeout(hard);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`dynalite did not start on port ${port}${exited ? " (it exited)" : ""}: ${stderr.trim() || "no output"}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { endpoint: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}

/** A TCP proxy in front of a server that can be told to reset every connection, as a dropped link does. */
export interface ResettingProxy {
  endpoint: string;
  /** While on, every connection (open or new) is destroyed as soon as it carries data. */
  resetting: boolean;
  stop(): Promise<void>;
}

export async function startResettingProxy(target: string): Promise<ResettingProxy> {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  const proxy: ResettingProxy = { endpoint: "", resetting: false, stop: async () => undefined };
  const server = createServer((client) => {
    const upstream = connect({ host: hostname, port: Number(port) });
    for (const s of [client, upstream]) {
      open.add(s);
      s.once("close", () => open.delete(s));
      s.on("error", () => undefined);
    }
    client.on("data", (chunk) => {
      if (proxy.resetting) {
        client.destroy();
        upstream.destroy();
      } else upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return proxy;
}

/**
 * An HTTP proxy in front of a DynamoDB endpoint that adds up the items DynamoDB read to answer:
 * ScannedCount of every Scan and Query, the items a GetItem or BatchGetItem returned.
 */
export interface ReadCounter {
  endpoint: string;
  /** Items read since the last reset. */
  items: number;
  /** Requests per operation (Query, Scan, GetItem, …) since the last reset. */
  requests: Record<string, number>;
  /** Every answer since the last reset: operation, HTTP status, and the X-Amz-Date the request was signed with. */
  answers: { op: string; status: number; amzDate: string }[];
  reset(): void;
  stop(): Promise<void>;
}

export async function startReadCounter(target: string): Promise<ReadCounter> {
  const { hostname, port } = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const counter: ReadCounter = {
    endpoint: "",
    items: 0,
    requests: {},
    answers: [],
    reset() {
      counter.items = 0;
      counter.requests = {};
      counter.answers = [];
    },
    stop: async () => undefined,
  };
  const count = (op: string, body: Buffer) => {
    counter.requests[op] = (counter.requests[op] ?? 0) + 1;
    let out: { ScannedCount?: number; Item?: unknown; Responses?: Record<string, unknown[]> };
    try {
      out = JSON.parse(body.toString("utf8"));
    } catch {
      return;
    }
    counter.items += (out.ScannedCount ?? 0) + (out.Item ? 1 : 0) + Object.values(out.Responses ?? {}).reduce((n, items) => n + items.length, 0);
  };
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const up = request({ host: hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
        const body: Buffer[] = [];
        upRes.on("data", (c: Buffer) => body.push(c));
        upRes.on("end", () => {
          const all = Buffer.concat(body);
          const op = String(req.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
          count(op, all);
          counter.answers.push({ op, status: upRes.statusCode ?? 0, amzDate: String(req.headers["x-amz-date"] ?? "") });
          res.writeHead(upRes.statusCode ?? 500, upRes.headers);
          res.end(all);
        });
      });
      up.on("error", () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  counter.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  counter.stop = async () => {
    server.closeAllConnections();
    agent.destroy();
    await new Promise((r) => server.close(r));
  };
  return counter;
}

/** Writes whole items straight into a table, BatchWriteItem 25 at a time, `concurrency` in flight: fast bulk seeding. */
export async function writeItems(endpoint: string, table: string, items: Record<string, AttributeValue>[], concurrency = 16): Promise<void> {
  const client = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" }, maxAttempts: 3 });
  try {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        let requests = items.slice(next, (next += 25)).map((Item) => ({ PutRequest: { Item } }));
        while (requests.length > 0) {
          const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
          requests = (out.UnprocessedItems?.[table] ?? []) as typeof requests;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.destroy();
  }
}

/** A table as versions before the bucketed layout created it: partition key pk alone. */
export async function createLegacyDynamoTable(endpoint: string, name: string): Promise<void> {
  const client = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" } });
  try {
    await client.send(
      new CreateTableCommand({ TableName: name, BillingMode: "PAY_PER_REQUEST", AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }], KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }] }),
    );
    while ((await client.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus !== "ACTIVE") await new Promise((r) => setTimeout(r, 20));
  } finally {
    client.destroy();
  }
}
