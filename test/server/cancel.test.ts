// A caller who has gone stops the store work not yet started: each gRPC call has a caller
// (src/protocol/call.ts) whose signal aborts on the client's cancel and on its deadline, passed
// down to the store operations it reaches (their last argument). The sidecar's own stores are wrapped here in recording proxies
// (every call still reaches the real store), in the style of test/support/faulty-store.ts.
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { startDynamoFront, type DynamoFront } from "../../src/fronts/dynamodb/server.js";
import { silentLogger } from "../../src/log.js";
import type { Caller } from "../../src/protocol/call.js";
import type { Store } from "../../src/protocol/store.js";
import { waitFor } from "../support/migration.js";
import { freshNamespace } from "../support/names.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;

const aborted = (signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!signal) return reject(new Error("the store operation ran without a call signal"));
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });

/** Where each intercepted operation takes its `call` (Store: the last parameter). */
const CALL_ARG = { get: 2, put: 5, applyIfNewer: 3 } as const;

/**
 * Wraps one operation of a store: `before` runs first with the call's signal (it may wait),
 * then the real operation runs; what the signal said when the real operation started is kept.
 */
function intercept<K extends "get" | "put" | "applyIfNewer">(store: Store, op: K, before: (signal: AbortSignal | undefined, args: Parameters<Store[K]>) => Promise<void> | void) {
  const seen: { signal: AbortSignal | undefined; abortedAtStart: boolean | undefined; args: Parameters<Store[K]> }[] = [];
  const real = store[op].bind(store) as (...args: Parameters<Store[K]>) => ReturnType<Store[K]>;
  (store as unknown as Record<string, unknown>)[op] = async (...args: Parameters<Store[K]>) => {
    const signal = (args[CALL_ARG[op]] as Caller | undefined)?.signal;
    await before(signal, args);
    seen.push({ signal, abortedAtStart: signal?.aborted, args });
    return real(...args);
  };
  return { seen, restore: () => ((store as unknown as Record<string, unknown>)[op] = real) };
}

describe("a call's cancellation reaches the store operations", function () {
  let s: Running;
  let ns: string;
  before(async () => {
    s = await startTestSidecar();
  });
  after(async () => {
    await s?.stop();
  });
  beforeEach(() => {
    ns = freshNamespace();
  });

  it("a deadline that passes while a read waits: the next store operation sees the signal aborted", async function () {
    let waiting = false;
    const get = intercept(s.sidecar.controller.current, "get", async (signal, [n]) => {
      if (n !== ns) return;
      waiting = true;
      await aborted(signal);
    });
    try {
      const err = await s.client.request("store", "Get", { namespace: ns, key: "k" }, 300).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(waiting, "the read reached the store").to.equal(true);
      expect(err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
      await waitFor(async () => get.seen.some((x) => x.args[0] === ns), "the read to go on after the deadline", 10_000);
      expect(get.seen.find((x) => x.args[0] === ns)!.abortedAtStart).to.equal(true);
    } finally {
      get.restore();
    }
  });

  it("a client that cancels while a write waits: the next store operation sees the signal aborted", async function () {
    let reached!: () => void;
    const atStore = new Promise<void>((resolve) => (reached = resolve));
    const put = intercept(s.sidecar.controller.current, "put", async (signal, [n]) => {
      if (n !== ns) return;
      reached();
      await aborted(signal);
    });
    try {
      const store = s.client.store as unknown as { Put(req: object, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall };
      let call!: grpc.ClientUnaryCall;
      const outcome = new Promise<grpc.ServiceError | null>((resolve) => (call = store.Put({ namespace: ns, key: "k", value: Buffer.from("v") }, resolve)));
      await atStore;
      call.cancel();
      expect((await outcome)?.code).to.equal(grpc.status.CANCELLED);
      await waitFor(async () => put.seen.some((x) => x.args[0] === ns), "the write to go on after the cancel", 10_000);
      expect(put.seen.find((x) => x.args[0] === ns)!.abortedAtStart).to.equal(true);
    } finally {
      put.restore();
    }
  });

  it("a call that completed leaves its signal unaborted (work it started, like a backfill, goes on)", async function () {
    const put = intercept(s.sidecar.controller.current, "put", () => undefined);
    try {
      await s.client.put(ns, "k", Buffer.from("v"));
      const { signal } = put.seen.find((x) => x.args[0] === ns)!;
      expect(signal, "the write ran with the call's signal").to.not.equal(undefined);
      // grpc-js reports every finished call as "cancelled" once its status is sent; by now that has run.
      await new Promise((r) => setImmediate(r));
      expect(signal!.aborted).to.equal(false);
    } finally {
      put.restore();
    }
  });
});

describe("a DynamoDB-front client that closes its connection before the answer", function () {
  let s: Running;
  let front: DynamoFront;
  before(async () => {
    s = await startTestSidecar();
    // Started here rather than by the sidecar, on the sidecar's store: the test needs the front's port.
    front = await startDynamoFront({ listen: "127.0.0.1:0", store: s.sidecar.store, logger: silentLogger(), maxValueBytes: 400_000 });
  });
  after(async () => {
    await front?.close(0);
    await s?.stop();
  });

  /** One DynamoDB call (its HTTP status), on a new connection or on `agent`'s. */
  const ddb = (target: string, input: object, agent?: Agent) =>
    new Promise<number>((resolve, reject) => {
      const r = httpRequest({ host: "127.0.0.1", port: front.port, method: "POST", path: "/", agent, headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `DynamoDB_20120810.${target}` } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      r.on("error", reject);
      r.end(JSON.stringify(input));
    });
  const createTable = async (table: string) =>
    expect(await ddb("CreateTable", { TableName: table, KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], BillingMode: "PAY_PER_REQUEST" })).to.equal(200);

  it("cancels the store work not yet started, like a gRPC call", async function () {
    const table = `t${Date.now()}`;
    await createTable(table);
    let reached!: () => void;
    const atStore = new Promise<void>((resolve) => (reached = resolve));
    // GetItem's read of the item (the table's catalog entry is cached by now, and catalog reads
    // take no caller): held there until the request's signal aborts.
    const get = intercept(s.sidecar.controller.current, "get", async (signal, [n]) => {
      if (!n.startsWith("_ddb_t_")) return; // the table's own namespace
      reached();
      await aborted(signal);
    });
    try {
      const body = JSON.stringify({ TableName: table, Key: { id: { S: "k" } } });
      const req = httpRequest({ host: "127.0.0.1", port: front.port, method: "POST", path: "/", headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.GetItem" } });
      req.on("error", () => undefined); // the test closes it
      req.end(body);
      await atStore;
      req.destroy();
      await waitFor(async () => get.seen.some((x) => x.args[0].startsWith("_ddb_t_")), "the item read to go on after the close", 10_000);
      expect(get.seen.find((x) => x.args[0].startsWith("_ddb_t_"))!.abortedAtStart).to.equal(true);
    } finally {
      get.restore();
    }
  });

  it("a connection that closes cancels only its own requests: another keep-alive connection's requests, before and after, run with a live caller", async function () {
    const table = `c${Date.now()}`;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 }); // connection B: every request on one socket
    await createTable(table);
    let reached!: () => void;
    const atStore = new Promise<void>((resolve) => (reached = resolve));
    let held = false;
    // The first item read (connection A's) is held until its caller goes; the others pass.
    const get = intercept(s.sidecar.controller.current, "get", async (signal, [n]) => {
      if (!n.startsWith("_ddb_t_") || held) return;
      held = true;
      reached();
      await aborted(signal);
    });
    try {
      const a = httpRequest({ host: "127.0.0.1", port: front.port, method: "POST", path: "/", headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.GetItem" } });
      a.on("error", () => undefined); // the test closes it
      a.end(JSON.stringify({ TableName: table, Key: { id: { S: "a" } } }));
      await atStore;
      const item = (id: string) => ({ TableName: table, Key: { id: { S: id } } });
      expect(await ddb("PutItem", { TableName: table, Item: { id: { S: "b" } } }, keepAlive)).to.equal(200);
      expect(await ddb("GetItem", item("b"), keepAlive)).to.equal(200);
      a.destroy(); // connection A goes
      // (The held read is recorded once it is let go, so after B's first one.)
      await waitFor(async () => get.seen.some((x) => x.abortedAtStart === true), "A's read to go on with its caller gone", 10_000);
      // Connection B, still open, goes on: its reads and writes are not cancelled by A's close.
      expect(await ddb("PutItem", { TableName: table, Item: { id: { S: "b" }, v: { S: "2" } } }, keepAlive)).to.equal(200);
      expect(await ddb("GetItem", item("b"), keepAlive)).to.equal(200);
      const aRead = get.seen.filter((x) => x.abortedAtStart === true);
      const bReads = get.seen.filter((x) => x.abortedAtStart !== true);
      expect(aRead.length, "only A's read saw its caller gone").to.equal(1);
      expect(bReads.length, "B's two reads").to.equal(2);
      for (const r of bReads) {
        expect(r.signal, "B's read carries B's caller").to.not.equal(undefined);
        expect(r.signal, "B's caller is not A's").to.not.equal(aRead[0]!.signal);
        expect(r.abortedAtStart, "B's read ran with a live caller").to.equal(false);
      }
      expect(new Set(bReads.map((r) => r.signal)).size, "one caller for connection B").to.equal(1);
    } finally {
      get.restore();
      keepAlive.destroy();
    }
  });
});

describe("a migrating write whose caller has gone still reaches the secondary", function () {
  let s: Running;
  let ns: string;
  const dir = mkdtempSync(join(tmpdir(), "decant-cancel-"));
  before(async () => {
    s = await startTestSidecar(
      { DECANT_TARGET: `sqlite:${join(dir, "target.db")}`, DECANT_HEARTBEAT_MS: "50" },
      // Holds the write after the primary has it until its caller's deadline has passed.
      { hooks: { migration: { beforeSecondary: async (w) => (w.ns === ns ? aborted(w.call?.signal) : undefined) } } },
    );
    await s.client.request("migration", "SetPhase", { phase: "DUAL_WRITE" });
    await waitFor(async () => (await s.client.status()).active, "DUAL_WRITE active", 10_000);
  });
  after(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("the secondary write and the intent's removal are not given the call's caller (DUAL_WRITE)", async function () {
    ns = freshNamespace();
    const target = s.sidecar.controller.target!;
    const apply = intercept(target, "applyIfNewer", () => undefined);
    try {
      const err = await s.client.request("store", "Put", { namespace: ns, key: "k", value: Buffer.from("v") }, 300).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
      await waitFor(async () => apply.seen.some((x) => x.args[0] === ns), "the secondary write", 10_000);
      expect(apply.seen.find((x) => x.args[0] === ns)!.signal, "the secondary write carries no caller's signal").to.equal(undefined);
      await waitFor(async () => (await target.getRaw(ns, "k"))?.version === 1n, "the target to hold the write", 10_000);
      await waitFor(async () => Number((await s.client.status()).repair_journal_depth) === 0, "the intent to be removed", 10_000);
    } finally {
      apply.restore();
    }
  });
});
