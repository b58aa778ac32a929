// An HTTP proxy in front of dynalite that answers as a real, busy DynamoDB sometimes does, so the
// adapter's retry and condition paths run in tests: dynalite itself never throttles, never
// leaves items unprocessed, and never returns the old item on a failed condition.
//
// Faults are scripted per operation (the X-Amz-Target suffix: "PutItem", "BatchGetItem", …) and
// taken in order: inject("GetItem", throttle(), 2) fails the next two GetItems, then they pass.
import { Agent, createServer, request, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { crc32 } from "node:zlib";

export type Fault =
  /** Answer with a DynamoDB error without forwarding: nothing is applied. */
  | { kind: "error"; status: number; type: string }
  /** BatchWriteItem / BatchGetItem: forward only the first `keep` requests; the rest come back unprocessed. */
  | { kind: "unprocessed"; keep: number }
  /** Hold the request for `ms`, then forward it (it applies even if the caller gave up). */
  | { kind: "delay"; ms: number }
  /** Reset the connection: before forwarding (nothing applied) or after dynalite answered (applied, answer lost). */
  | { kind: "reset"; when: "before" | "after" }
  /** Forward it (it applies), then damage a byte of the answer on the way: its x-amz-crc32 no longer matches. */
  | { kind: "damage" };

export const throttle = (): Fault => ({ kind: "error", status: 400, type: "ProvisionedThroughputExceededException" });
export const throttling = (): Fault => ({ kind: "error", status: 400, type: "ThrottlingException" });
export const internalError = (): Fault => ({ kind: "error", status: 500, type: "InternalServerError" });
export const serviceUnavailable = (): Fault => ({ kind: "error", status: 503, type: "ServiceUnavailable" });

export interface FaultProxy {
  /** http://127.0.0.1:PORT, for the endpoint= option of a dynamodb: URL. */
  endpoint: string;
  /** Requests per operation since the last clear(), faulted ones included. */
  requests: Record<string, number>;
  /** Requests per operation that reached dynalite since the last clear(). */
  forwarded: Record<string, number>;
  /** As AWS does: a ConditionalCheckFailedException carries the item when the request asked ALL_OLD. */
  returnOldOnConditionFailure: boolean;
  /** The next `times` requests of `op` meet `fault` (Infinity: until clear()). */
  inject(op: string, fault: Fault, times?: number): void;
  /** Drops every scripted fault and zeroes the counts. */
  clear(): void;
  stop(): Promise<void>;
}

const PREFIX = "com.amazonaws.dynamodb.v20120810#";
type Json = Record<string, any>; // DynamoDB JSON, read loosely

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port } = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const script: { op: string; fault: Fault; left: number }[] = [];
  const sockets = new Set<Socket>();

  /** One request to dynalite; resolves with its status, headers and body. */
  const forward = (path: string, headers: IncomingHttpHeaders, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const up = request({ host: hostname, port: Number(port), method: "POST", path, headers: { ...headers, "content-length": String(body.length) }, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      up.on("error", reject);
      up.end(body);
    });

  /** Answers as DynamoDB does, with the CRC32 of the body (which a fault may have rewritten); `damage` then flips a byte of it. */
  const reply = (res: ServerResponse, status: number, headers: IncomingHttpHeaders, body: Buffer, damage = false) => {
    const out: IncomingHttpHeaders = { ...headers, "content-length": String(body.length), "x-amz-crc32": String(crc32(body)) };
    if (damage) {
      body = Buffer.from(body);
      body[body.length >> 1] = body[body.length >> 1]! ^ 0x01;
    }
    delete out["transfer-encoding"];
    res.writeHead(status, out);
    res.end(body);
  };

  const takeFault = (op: string): Fault | undefined => {
    const entry = script.find((s) => s.op === op && s.left > 0);
    if (!entry) return undefined;
    entry.left--;
    return entry.fault;
  };

  /** Splits a batch request: the first `keep` requests go on, the rest are returned unprocessed. */
  const split = (op: string, req: Json, keep: number): { forwarded: Json; unprocessed: Json } => {
    const forwarded: Json = {};
    const unprocessed: Json = {};
    let budget = keep;
    for (const [table, spec] of Object.entries<any>(req.RequestItems ?? {})) {
      if (op === "BatchWriteItem") {
        const list = spec as unknown[];
        if (budget > 0) forwarded[table] = list.slice(0, budget);
        if (list.length > budget) unprocessed[table] = list.slice(Math.max(0, budget));
        budget -= list.length;
      } else {
        const keys = spec.Keys as unknown[];
        if (budget > 0) forwarded[table] = { ...spec, Keys: keys.slice(0, budget) };
        if (keys.length > budget) unprocessed[table] = { ...spec, Keys: keys.slice(Math.max(0, budget)) };
        budget -= keys.length;
      }
    }
    return { forwarded: { ...req, RequestItems: forwarded }, unprocessed };
  };

  /** A ConditionalCheckFailedException gains the stored item, read back from dynalite. */
  const withOldItem = async (op: string, path: string, headers: IncomingHttpHeaders, req: Json, answer: { status: number; headers: IncomingHttpHeaders; body: Buffer }) => {
    if (!proxy.returnOldOnConditionFailure || req.ReturnValuesOnConditionCheckFailure !== "ALL_OLD") return answer;
    const err = JSON.parse(answer.body.toString("utf8")) as Json;
    if (!String(err.__type ?? "").endsWith("#ConditionalCheckFailedException")) return answer;
    const key: Json = op === "PutItem" ? { pk: req.Item.pk, ...(req.Item.sk ? { sk: req.Item.sk } : {}) } : req.Key;
    const read = await forward(path, { ...headers, "x-amz-target": "DynamoDB_20120810.GetItem" }, Buffer.from(JSON.stringify({ TableName: req.TableName, Key: key, ConsistentRead: true })));
    const item = (JSON.parse(read.body.toString("utf8")) as Json).Item;
    return item ? { ...answer, body: Buffer.from(JSON.stringify({ ...err, Item: item })) } : answer;
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const op = String(req.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
        proxy.requests[op] = (proxy.requests[op] ?? 0) + 1;
        let body = Buffer.concat(chunks);
        const json = JSON.parse(body.toString("utf8") || "{}") as Json;
        const fault = takeFault(op);
        if (fault?.kind === "error") {
          return reply(res, fault.status, { "content-type": "application/x-amz-json-1.0" }, Buffer.from(JSON.stringify({ __type: PREFIX + fault.type, message: `injected ${fault.type}` })));
        }
        if (fault?.kind === "reset" && fault.when === "before") return void req.socket.destroy();
        if (fault?.kind === "delay") await new Promise((r) => setTimeout(r, fault.ms));
        let unprocessed: Json | undefined;
        if (fault?.kind === "unprocessed") {
          const parts = split(op, json, fault.keep);
          unprocessed = parts.unprocessed;
          if (Object.keys(parts.forwarded.RequestItems).length === 0) {
            // Nothing left to forward (DynamoDB refuses an empty batch): all of it is unprocessed.
            const field = op === "BatchWriteItem" ? "UnprocessedItems" : "UnprocessedKeys";
            const none = op === "BatchWriteItem" ? {} : { Responses: {} };
            return reply(res, 200, { "content-type": "application/x-amz-json-1.0" }, Buffer.from(JSON.stringify({ ...none, [field]: unprocessed })));
          }
          body = Buffer.from(JSON.stringify(parts.forwarded));
        }
        proxy.forwarded[op] = (proxy.forwarded[op] ?? 0) + 1;
        let answer = await forward(req.url ?? "/", req.headers, body);
        if (fault?.kind === "reset") return void req.socket.destroy(); // "after": dynalite has applied it
        if (unprocessed && answer.status === 200) {
          const out = JSON.parse(answer.body.toString("utf8")) as Json;
          const field = op === "BatchWriteItem" ? "UnprocessedItems" : "UnprocessedKeys";
          out[field] = { ...(out[field] ?? {}), ...unprocessed };
          answer = { ...answer, body: Buffer.from(JSON.stringify(out)) };
        }
        if (answer.status === 400) answer = await withOldItem(op, req.url ?? "/", req.headers, json, answer);
        reply(res, answer.status, answer.headers, answer.body, fault?.kind === "damage");
      })().catch(() => res.destroy());
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));

  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: {},
    forwarded: {},
    returnOldOnConditionFailure: true,
    inject(op, fault, times = 1) {
      script.push({ op, fault, left: times });
    },
    clear() {
      script.length = 0;
      proxy.requests = {};
      proxy.forwarded = {};
    },
    async stop() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  return proxy;
}
