import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { expect } from "chai";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../src/backends/index.js";
import { bucketOf, createDynamoStore, DYNAMO_BUCKETS, itemAttrs } from "../../src/backends/dynamodb.js";
import { DynamoHttp, PostSigner, Sha256 } from "../../src/backends/dynamodb-http.js";
import { startDynamoFront, type DynamoFront } from "../../src/fronts/dynamodb/server.js";
import { silentLogger } from "../../src/log.js";
import type { Store } from "../../src/protocol/store.js";
import { CONTROL_NAMESPACE } from "../../src/protocol/types.js";
import { conformance } from "../conformance/suite.js";
import { startDynalite, startReadCounter, startResettingProxy, writeItems, createLegacyDynamoTable, type Dynalite, type ReadCounter } from "../support/dynalite.js";
import { waitFor } from "../support/migration.js";
import { startTestSidecar } from "../support/sidecar.js";
import { buf, freshNamespace } from "../support/names.js";
import { failure } from "../support/errors.js";
import { CLOSED_PORT, serverAvailable } from "../support/servers.js";

let server: Dynalite | undefined;
const sdk = () => new DynamoDBClient({ region: "us-east-1", endpoint: server!.endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" }, maxAttempts: 1 });
const ok = await serverAvailable("dynamodb (dynalite)", async () => {
  server = await startDynalite();
  const client = sdk();
  try {
    await client.send(new ListTablesCommand({})); // also proves this SDK works on this Node
  } finally {
    client.destroy();
  }
});
after(async () => server?.stop());

const freshTable = () => `decant_test_${randomBytes(5).toString("hex")}`;
const urlFor = (table: string, extra = "", endpoint = server!.endpoint) => `dynamodb://${table}?region=us-east-1&endpoint=${endpoint}${extra}`;


/** Writes n items of ns straight into a table: seeding through the store would take minutes. */
async function seed(table: string, ns: string, n: number, layout: "buckets" | "legacy" = "buckets"): Promise<void> {
  const items = Array.from({ length: n }, (_, i) => itemAttrs(layout, ns, { key: `key_${String(i).padStart(6, "0")}`, value: Buffer.alloc(100, 1), version: 1n }));
  await writeItems(server!.endpoint, table, items);
}


if (ok) {
  // A DynamoDB URL carries no password (credentials come from the environment).
  const serverUrl = (host: string, port: number, _password: string, timeoutMs: number) => urlFor("decant_faults", `&timeout_ms=${timeoutMs}`, `http://${host}:${port}`);
  const reopen = (store: Store) => openStore(store.description);
  conformance("dynamodb", { open: () => openStore(urlFor(freshTable())), serverUrl, reopen });
  // client=sdk, the documented fallback data path, keeps the same contract.
  conformance("dynamodb (client=sdk)", {
    open: () => openStore(urlFor(freshTable(), "&client=sdk")),
    serverUrl: (host, port, password, timeoutMs) => `${serverUrl(host, port, password, timeoutMs)}&client=sdk`,
    reopen,
  });
  // Tables created by earlier versions keep working, with the old costs.
  conformance("dynamodb (legacy layout)", {
    open: async () => {
      const table = freshTable();
      await createLegacyDynamoTable(server!.endpoint, table);
      return openStore(urlFor(table, "&create=false"));
    },
    reopen,
  });

  describe("dynamodb specifics", function () {
    const table = freshTable();
    let store: Store;
    let client: DynamoDBClient;
    before(async function () {
      store = await openStore(urlFor(table));
      client = sdk();
    });
    after(async function () {
      await store?.close();
      client?.destroy();
    });

    it("reports a closed port as unavailable, quickly", async function () {
      const down = await openStore(`dynamodb://decant_down?region=us-east-1&endpoint=http://127.0.0.1:${CLOSED_PORT}&timeout_ms=1000`);
      const began = Date.now();
      const err = await failure(down.get("ns", "k"));
      expect(err.kind).to.equal("unavailable");
      expect(Date.now() - began).to.be.below(3000);
      await down.close();
    });

    it("reports a server that accepts but never answers as deadline_exceeded, within timeout_ms", async function () {
      const sockets: Socket[] = [];
      const silent = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
      const { port } = silent.address() as AddressInfo;
      const s = await openStore(`dynamodb://decant_silent?region=us-east-1&endpoint=http://127.0.0.1:${port}&timeout_ms=500`);
      const began = Date.now();
      const err = await failure(s.get("ns", "k"));
      expect(err.kind).to.equal("deadline_exceeded");
      expect(Date.now() - began).to.be.below(1500);
      await s.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    });

    it("keeps versions above 2^53 exact", async function () {
      const ns = freshNamespace();
      const big = 2n ** 60n + 1n;
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("a"), version: big }])).to.deep.equal([true]);
      expect(await store.put(ns, "k", buf("b"))).to.equal(big + 1n);
      expect((await store.getRaw(ns, "k"))!.version).to.equal(big + 1n);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("c"), version: big + 1n }])).to.deep.equal([false]);
      expect(await store.delete(ns, "k")).to.deep.equal({ deleted: true, version: big + 2n });
    });

    it("stores one item per key under pk = <ns>#<bucket>, sk = <key>, with ver and val attributes", async function () {
      const ns = freshNamespace();
      await store.put(ns, "a#b", buf("v"));
      await store.delete(ns, "a#b");
      await store.put(ns, "live", buf("x"));
      const at = (key: string) => ({ pk: { S: `${ns}#${bucketOf(ns, key)}` }, sk: { S: key } });
      const tomb = (await client.send(new GetItemCommand({ TableName: table, Key: at("a#b") }))).Item!;
      expect(Object.keys(tomb).sort()).to.deep.equal(["pk", "sk", "tomb", "ver"]);
      expect(tomb.ver!.N).to.equal("2");
      expect(tomb.tomb!.BOOL).to.equal(true);
      const live = (await client.send(new GetItemCommand({ TableName: table, Key: at("live") }))).Item!;
      expect(Object.keys(live).sort()).to.deep.equal(["pk", "sk", "val", "ver"]);
      expect(Buffer.from(live.val!.B!).toString()).to.equal("x");
      // Keys spread over every bucket; the control namespace is one bucket.
      const buckets = new Set(Array.from({ length: 400 }, (_, i) => bucketOf(ns, `k${i}`)));
      expect(buckets.size).to.equal(DYNAMO_BUCKETS);
      expect(bucketOf(CONTROL_NAMESPACE, "replica/a")).to.equal(0);
    });

    it("serves a table written by an earlier version (pk = <ns>#<key>) in place", async function () {
      const name = freshTable();
      await createLegacyDynamoTable(server!.endpoint, name);
      await seed(name, "old", 3, "legacy");
      await client.send(new PutItemCommand({ TableName: name, Item: { pk: { S: "#namespaces" }, names: { SS: ["old"] } } }));
      const s = await openStore(urlFor(name, "&create=false"));
      expect((await s.get("old", "key_000001"))!.version).to.equal(1n);
      expect((await s.scan("old", { limit: 10 })).items.map((i) => i.key).sort()).to.deep.equal(["key_000000", "key_000001", "key_000002"]);
      expect(await s.put("old", "key_000001", buf("new"))).to.equal(2n);
      const raw = (await client.send(new GetItemCommand({ TableName: name, Key: { pk: { S: "old#key_000001" } } }))).Item!;
      expect(raw.k!.S).to.equal("key_000001"); // still written the old way
      expect(await s.namespaces()).to.deep.equal(["old"]);
      await s.close();
    });

    it("lists namespaces from its registry and never shows the registry item", async function () {
      const [a, b] = [freshNamespace(), freshNamespace()];
      await store.put(a, "k", buf("1"));
      await store.applyIfNewer(b, [{ key: "gone", value: null, version: 3n }]); // only a tombstone
      const all = await store.namespaces();
      expect(all).to.include.members([a, b]);
      for (const ns of all) expect(ns).to.match(/^[a-z_][a-z0-9_]*$/);
      const raw = await store.scanRaw(b, { limit: 10 });
      expect(raw.items).to.deep.equal([{ key: "gone", value: null, version: 3n }]);
      await store.dropNamespace(a);
      expect(await store.namespaces()).to.not.include(a);
      await store.put(a, "again", buf("2")); // a dropped namespace is registered again on its next write
      expect(await store.namespaces()).to.include(a);
    });

    it("fills scan pages from a sparse namespace in a busy table", async function () {
      const [busy, sparse] = [freshNamespace(), freshNamespace()];
      await store.applyIfNewer(busy, Array.from({ length: 200 }, (_, i) => ({ key: `b${i}`, value: buf("v"), version: 1n })));
      await store.batchWrite(sparse, ["x1", "x2", "x3", "y1"].map((key) => ({ type: "put" as const, key, value: buf(key) })));
      const first = await store.scan(sparse, { limit: 2, prefix: "x" });
      expect(first.items.length).to.equal(2);
      const second = await store.scan(sparse, { limit: 2, prefix: "x", cursor: first.cursor });
      const keys = [...first.items, ...second.items].map((i) => i.key);
      let cursor = second.cursor;
      while (cursor !== undefined) {
        const page = await store.scan(sparse, { limit: 2, prefix: "x", cursor });
        keys.push(...page.items.map((i) => i.key));
        cursor = page.cursor;
      }
      expect(keys.sort()).to.deep.equal(["x1", "x2", "x3"]);
      expect(await store.estimateCount(busy)).to.equal(200); // a small table is counted exactly
    });

    it("bumps the version atomically under concurrent unconditional puts", async function () {
      const ns = freshNamespace();
      const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(ns, "k", buf(String(i)))));
      expect([...versions].sort((x, y) => Number(x - y))).to.deep.equal(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
    });

    it("holds exactly maxValueBytes for the longest namespace and key, and refuses one byte more before any call", async function () {
      const ns = "n".repeat(63);
      const key = "k".repeat(1024); // ASCII, so dynalite (which counts UTF-16 units) measures it as DynamoDB does
      const max = store.capabilities.maxValueBytes(key);
      expect(max).to.be.above(400 * 1024 - 2500);
      expect(store.capabilities.maxValueBytes("é".repeat(512))).to.equal(max); // counted in UTF-8 bytes
      await store.put(ns, key, Buffer.alloc(max, 1));
      expect((await store.get(ns, key))!.value.length).to.equal(max);
      // The largest version (20 digits) still fits.
      const other = key.slice(1) + "x";
      expect(await store.applyIfNewer(ns, [{ key: other, value: Buffer.alloc(max, 2), version: 2n ** 64n - 1n }])).to.deep.equal([true]);
      expect((await store.getRaw(ns, other))!.version).to.equal(2n ** 64n - 1n);
      // Against a closed port: the size check answers before anything is sent.
      const down = await openStore(`dynamodb://decant_down?region=us-east-1&endpoint=http://127.0.0.1:${CLOSED_PORT}`);
      expect((await failure(down.put(ns, key, Buffer.alloc(max + 1)))).kind).to.equal("invalid_argument");
      expect((await failure(down.applyIfNewer(ns, [{ key, value: Buffer.alloc(max + 1), version: 1n }]))).kind).to.equal("invalid_argument");
      await down.close();
    });

    it("creates a missing table (on-demand) on first use, and not before", async function () {
      const name = freshTable();
      const s = await openStore(urlFor(name));
      const before = await client.send(new ListTablesCommand({}));
      expect(before.TableNames).to.not.include(name);
      await s.put("ns", "k", buf("v"));
      const t = (await client.send(new DescribeTableCommand({ TableName: name }))).Table!;
      expect(t.TableStatus).to.equal("ACTIVE");
      expect(t.BillingModeSummary?.BillingMode).to.equal("PAY_PER_REQUEST");
      await s.close();
    });

    it("with create=false, refuses a missing table clearly and uses an existing one", async function () {
      const name = freshTable();
      const missing = await openStore(urlFor(name, "&create=false"));
      const err = await failure(missing.get("ns", "k"));
      expect(err.kind).to.equal("failed_precondition");
      expect(err.message).to.include(name).and.include("create=false");
      const existing = await openStore(urlFor(table, "&create=false"));
      await existing.put("ns", "k", buf("v"));
      expect((await existing.get("ns", "k"))!.value.toString()).to.equal("v");
      await Promise.all([missing.close(), existing.close()]);
    });

    it("refuses a table with another key schema", async function () {
      const name = freshTable();
      await client.send(
        new CreateTableCommand({
          TableName: name,
          BillingMode: "PAY_PER_REQUEST",
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        }),
      );
      const s = await openStore(urlFor(name, "&create=false"));
      const err = await failure(s.get("ns", "k"));
      expect(err.kind).to.equal("failed_precondition");
      expect(err.message).to.include("key schema").and.include(name);
      await s.close();
    });

    it("reports a connection reset (socket hang up) as unavailable with its cause, not as a timeout", async function () {
      const proxy = await startResettingProxy(server!.endpoint);
      const s = await openStore(urlFor(freshTable(), "&timeout_ms=5000", proxy.endpoint));
      try {
        await s.put("ns", "k", buf("v")); // the table exists: only the link fails below
        proxy.resetting = true;
        const began = Date.now();
        const err = await failure(s.get("ns", "k"));
        expect(err.kind).to.equal("unavailable");
        expect(err.message).to.include("socket hang up");
        expect(Date.now() - began).to.be.below(2500);
        expect((await failure(s.put("ns", "k", buf("w")))).kind).to.equal("unavailable");
      } finally {
        await s.close();
        await proxy.stop();
      }
    });

    it("refuses a cursor from another segment", async function () {
      const ns = freshNamespace();
      await store.batchWrite(ns, Array.from({ length: 30 }, (_, i) => ({ type: "put" as const, key: `s${i}`, value: buf("v") })));
      const page = await store.scanRaw(ns, { limit: 1, segment: 0, totalSegments: 4 });
      if (page.cursor === undefined) this.skip(); // segment 0 held at most one key
      expect((await failure(store.scanRaw(ns, { limit: 1, segment: 3, totalSegments: 4, cursor: page.cursor }))).kind).to.equal("invalid_argument");
      expect((await failure(store.scanRaw(ns, { limit: 1, segment: 4, totalSegments: 4 }))).kind).to.equal("invalid_argument");
    });

    it("validates its URL without connecting, naming the option at fault", async function () {
      const bad = async (url: string, word: string) => {
        const err = await failure(openStore(url));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.message).to.include(word);
      };
      await bad("dynamodb://ab", "table name");
      await bad("dynamodb://table_x?create=maybe", "create");
      await bad("dynamodb://table_x?timeout_ms=-1", "timeout_ms");
      await bad("dynamodb://table_x?endpoint=localhost:8000", "endpoint");
      await bad("dynamodb://table_x?regoin=us-east-1", "regoin");
      const s = await openStore(`dynamodb://table_x?region=eu-west-1&endpoint=http://127.0.0.1:${CLOSED_PORT}`);
      expect(s.kind).to.equal("dynamodb");
      expect(s.description).to.equal(`dynamodb://table_x?region=eu-west-1&endpoint=http://127.0.0.1:${CLOSED_PORT}`);
      await s.close();
    });
  });

  // Issue 18: a namespace costs reads in proportion to its own size, never the table's. A proxy in
  // front of dynalite adds up what DynamoDB read (ScannedCount of Scans and Queries, items of Gets).
  describe("dynamodb read costs in a table shared with 20,000 items of another namespace", function () {
    const BULK = 20_000;
    let counter: ReadCounter;
    const empty = freshTable();
    const busy = freshTable();
    before(async function () {
      this.timeout(120_000);
      counter = await startReadCounter(server!.endpoint);
      for (const name of [empty, busy]) {
        const s = await openStore(urlFor(name));
        await s.put("warm", "k", buf("v")); // creates the table
        await s.close();
      }
      await seed(busy, "bulk", BULK);
    });
    after(async () => counter?.stop());

    /** Items DynamoDB read while `run` ran. */
    const readsOf = async (run: () => Promise<unknown>): Promise<number> => {
      counter.reset();
      await run();
      expect(counter.requests.Scan ?? 0, "table Scans").to.equal(0);
      return counter.items;
    };

    it("reads O(10) items to scan, count, purge and drop a 10-item namespace", async function () {
      const s = await openStore(urlFor(busy, "", counter.endpoint));
      try {
        const ns = freshNamespace();
        await s.batchWrite(ns, Array.from({ length: 10 }, (_, i) => ({ type: "put" as const, key: `${i % 2 ? "x" : "y"}${i}`, value: Buffer.alloc(i * 100, 1) })));
        await s.delete(ns, "x1"); // a tombstone: scanRaw and purge see it, scan skips it
        const all = async (page: (cursor?: string) => Promise<{ items: unknown[]; cursor?: string }>) => {
          let n = 0;
          let cursor: string | undefined;
          do {
            const p = await page(cursor);
            n += p.items.length;
            cursor = p.cursor;
          } while (cursor !== undefined);
          return n;
        };
        const costs: Record<string, number> = {
          scan: await readsOf(async () => expect(await all((cursor) => s.scan(ns, { limit: 3, cursor }))).to.equal(9)),
          "scan with prefix": await readsOf(async () => expect(await all((cursor) => s.scan(ns, { limit: 100, prefix: "x", cursor }))).to.equal(4)),
          scanRaw: await readsOf(async () => expect(await all((cursor) => s.scanRaw(ns, { limit: 100, cursor }))).to.equal(10)),
          "scanRaw, 4 segments": await readsOf(async () => {
            let n = 0;
            for (let segment = 0; segment < 4; segment++) n += await all((cursor) => s.scanRaw(ns, { limit: 100, cursor, segment, totalSegments: 4 }));
            expect(n).to.equal(10);
          }),
          largeValues: await readsOf(async () => expect(await all((cursor) => s.largeValues(ns, { minBytes: 700, limit: 100, cursor }))).to.equal(2)),
          estimateCount: await readsOf(async () => expect(await s.estimateCount(ns)).to.equal(10)),
          namespaces: await readsOf(async () => expect(await s.namespaces()).to.include(ns)),
          purgeTombstones: await readsOf(async () => expect(await s.purgeTombstones(ns)).to.equal(1)),
          dropNamespace: await readsOf(() => s.dropNamespace(ns)),
        };
        for (const [op, items] of Object.entries(costs)) expect(items, op).to.be.at.most(20);
        expect(await s.estimateCount("bulk")).to.be.within(BULK * 0.9, BULK * 1.1); // sampled: a few buckets, scaled up
      } finally {
        await s.close();
      }
    });

    /** Three sidecars on one DynamoDB control store, heartbeating every 100 ms for 10 s: the items read, and per read request. */
    async function heartbeatReads(table: string): Promise<{ items: number; perRequest: number }> {
      const env = (id: string) => ({ DECANT_CURRENT: urlFor(table, "", counter.endpoint), DECANT_REPLICA_ID: id, DECANT_HEARTBEAT_MS: "100" });
      const sidecars = await Promise.all(["a", "b", "c"].map((id) => startTestSidecar(env(`${table}-${id}`))));
      try {
        await waitFor(async () => (await sidecars[0]!.client.call<{ replicas: unknown[] }>("migration", "GetStatus", {})).replicas.length === 3, "every replica's first heartbeat");
        counter.reset();
        await new Promise((r) => setTimeout(r, 10_000)); // the measurement window itself
        const { Scan = 0, Query = 0, GetItem = 0, BatchGetItem = 0 } = counter.requests;
        expect(Scan, "table Scans").to.equal(0);
        expect(Query, "Queries").to.be.above(0);
        return { items: counter.items, perRequest: counter.items / (Query + GetItem + BatchGetItem) };
      } finally {
        await Promise.all(sidecars.map((s) => s.stop()));
      }
    }

    it("three sidecars heartbeating for 10 s read as many items with 20,000 unrelated items as with none", async function () {
      this.timeout(90_000);
      const none = await heartbeatReads(empty);
      const many = await heartbeatReads(busy);
      console.log(`      items read by 3 sidecars in 10 s: ${none.items} (empty table), ${many.items} (${BULK} unrelated items); per read request ${none.perRequest.toFixed(2)}, ${many.perRequest.toFixed(2)}`);
      // Per request, so a loaded machine's slower heartbeats do not count: the phase record, three heartbeats, the journal.
      expect(many.perRequest).to.be.at.most(Math.min(5, none.perRequest * 1.5 + 0.5));
      expect(many.items).to.be.below(3 * 100 * 10); // under 10 items per sidecar per heartbeat, against 20,000 per listing before
    });
  });
}

// A pod whose clock is off: DynamoDB refuses signatures more than 5 minutes from its time, with
// the time in its answer's Date header. Decant's own front refuses as DynamoDB does, so it stands
// in for it (with the credentials the backend signs with on a local endpoint).
describe("dynamodb (lean client) with this machine's clock off by 10 minutes", function () {
  const SKEW_MS = 10 * 60_000;
  let front: DynamoFront;
  let counter: ReadCounter;
  before(async () => {
    front = await startDynamoFront({ listen: "127.0.0.1:0", store: await openStore("memory:"), logger: silentLogger(), maxValueBytes: 400 * 1024, credentials: { accessKeyId: "decant-local", secretAccessKey: "decant-local" } });
    counter = await startReadCounter(`http://127.0.0.1:${front.port}`);
  });
  after(async () => {
    await counter?.stop();
    await front?.close();
  });

  for (const [name, skew] of [
    ["behind", -SKEW_MS],
    ["ahead", SKEW_MS],
  ] as const) {
    it(`${name}: the first refusal corrects the clock, that call is retried once at once, later calls are signed at the server's time`, async () => {
      const table = `decant_skew_${randomBytes(4).toString("hex")}`;
      const raw = `dynamodb://${table}?region=us-east-1&endpoint=${counter.endpoint}`;
      const store = createDynamoStore(new URL(raw), raw, { clock: () => Date.now() + skew });
      try {
        counter.reset();
        const ns = freshNamespace();
        for (let i = 0; i < 5; i++) await store.put(ns, `k${i}`, buf(`v${i}`));
        expect((await store.get(ns, "k3"))?.value).to.deep.equal(buf("v3"));
        // Table administration is the SDK's, on the right clock; the data path is the lean client's.
        const data = counter.answers.filter((a) => a.op !== "DescribeTable" && a.op !== "CreateTable");
        const signedAt = (a: { amzDate: string }) => Date.parse(a.amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"));
        expect(data.map((a) => a.status), JSON.stringify(data)).to.deep.equal([400, ...Array<number>(data.length - 1).fill(200)]);
        expect(signedAt(data[0]!) - Date.now()).to.be.closeTo(skew, 60_000);
        for (const a of data.slice(1)) expect(Math.abs(signedAt(a) - Date.now()), a.amzDate).to.be.below(60_000);
        expect(data.length).to.be.at.least(7); // 5 puts, a get, and the refused attempt
      } finally {
        await store.close();
      }
    });
  }

  it("a refusal for another reason (a wrong secret, the clocks agreeing) is not retried and keeps its error", async () => {
    const sdkClient = new DynamoDBClient({ region: "us-east-1", endpoint: counter.endpoint, credentials: { accessKeyId: "decant-local", secretAccessKey: "wrong" } });
    const lean = new DynamoHttp({ sdk: sdkClient, endpoint: counter.endpoint, maxSockets: 2 });
    try {
      counter.reset();
      const err = (await lean.call("GetItem", { TableName: "t", Key: { k: { S: "a" } } }, {}).then(
        () => expect.fail("accepted"),
        (e: unknown) => e,
      )) as { name: string; $metadata?: { httpStatusCode: number } };
      expect([err.name, err.$metadata?.httpStatusCode]).to.deep.equal(["InvalidSignatureException", 400]);
      expect(counter.answers.map((a) => a.status)).to.deep.equal([400]);
    } finally {
      lean.destroy();
      sdkClient.destroy();
    }
  });
});

describe("dynamodb lean client", () => {
  it("ends the request of an abandoned call (its deadline expired) within a second or so, freeing its socket", async () => {
    const held: Socket[] = [];
    let closed = 0;
    const silent = createServer((s) => {
      held.push(s); // reads, never answers
      s.resume().on("close", () => closed++);
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const sdkClient = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const lean = new DynamoHttp({ sdk: sdkClient, endpoint, maxSockets: 2 });
    try {
      const deadline = { expired: false };
      const call = lean.call("GetItem", { TableName: "t", Key: { k: { S: "a" } } }, deadline).then(
        () => expect.fail("answered"),
        (e: Error) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      const expiredAt = Date.now();
      deadline.expired = true;
      expect((await call).name).to.equal("AbortError");
      expect(Date.now() - expiredAt).to.be.below(2500);
      await waitFor(async () => held.length === 1 && closed === 1, "the abandoned request's socket to close", 5000);
    } finally {
      lean.destroy();
      sdkClient.destroy();
      for (const s of held) s.destroy();
      silent.close();
    }
  });
});

describe("dynamodb lean client signing", () => {
  it("signs as @smithy/signature-v4 does, with and without a session token", async () => {
    const { SignatureV4 } = await import("@smithy/signature-v4");
    const host = "dynamodb.eu-west-1.amazonaws.com";
    const body = '{"TableName":"t","Key":{"k":{"S":"ü"}}}';
    for (const at of [new Date("2026-12-06T14:30:05.123Z"), new Date("2026-12-07T00:00:00.000Z")]) {
      for (const creds of [{ accessKeyId: "AK", secretAccessKey: "sec" }, { accessKeyId: "AK", secretAccessKey: "sec2", sessionToken: "tok/en+=" }]) {
        const theirs = await new SignatureV4({ service: "dynamodb", region: "eu-west-1", credentials: creds, sha256: Sha256 as never, applyChecksum: false }).sign(
          { method: "POST", protocol: "https:", hostname: host, path: "/", query: {}, headers: { host, "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.GetItem" }, body },
          { signingDate: at, signingRegion: "eu-west-1" },
        );
        const ours = await new PostSigner(async () => creds).sign(host, "eu-west-1", "DynamoDB_20120810.GetItem", body, at);
        expect(ours).to.deep.equal(theirs.headers);
      }
    }
  });

  it("asks the credentials provider again for credentials that expire within minutes, and only then", async () => {
    const cases = [
      { expiration: undefined, asked: 1 }, // static, env, a profile: never refreshed
      { expiration: new Date(Date.now() + 3600_000), asked: 1 },
      { expiration: new Date(Date.now() + 120_000), asked: 3 }, // the SDK's provider would refresh these: ask it every time
    ];
    for (const { expiration, asked } of cases) {
      let calls = 0;
      const signer = new PostSigner(async () => (calls++, { accessKeyId: `AK${calls}`, secretAccessKey: "sec", expiration }));
      const auth: string[] = [];
      for (let i = 0; i < 3; i++) auth.push((await signer.sign("h", "eu-west-1", "DynamoDB_20120810.GetItem", "{}", Date.now())).authorization!);
      expect(calls, String(expiration)).to.equal(asked);
      expect(auth[2]).to.include(`Credential=AK${asked}/`);
    }
  });
});
