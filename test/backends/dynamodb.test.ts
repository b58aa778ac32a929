import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { expect } from "chai";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, GetItemCommand, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../src/backends/index.js";
import type { Store } from "../../src/protocol/store.js";
import { conformance } from "../conformance/suite.js";
import { startDynalite, type Dynalite } from "../support/dynalite.js";
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
const urlFor = (table: string, extra = "") => `dynamodb://${table}?region=us-east-1&endpoint=${server!.endpoint}${extra}`;


if (ok) {
  conformance("dynamodb", { open: () => openStore(urlFor(freshTable())) });

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

    it("stores one item per key under pk = <ns>#<key>, with ns, k, ver, val attributes", async function () {
      const ns = freshNamespace();
      await store.put(ns, "a#b", buf("v"));
      await store.delete(ns, "a#b");
      await store.put(ns, "live", buf("x"));
      const tomb = (await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: `${ns}#a#b` } } }))).Item!;
      expect(tomb.ns!.S).to.equal(ns);
      expect(tomb.k!.S).to.equal("a#b");
      expect(tomb.ver!.N).to.equal("2");
      expect(tomb.val).to.equal(undefined);
      expect(tomb.tomb!.BOOL).to.equal(true);
      const live = (await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: `${ns}#live` } } }))).Item!;
      expect(Buffer.from(live.val!.B!).toString()).to.equal("x");
      expect(live.tomb).to.equal(undefined);
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
}
