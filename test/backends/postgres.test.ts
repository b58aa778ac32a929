import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { expect } from "chai";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import { signalCaller } from "../../src/protocol/call.js";
import type { DecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import { conformance } from "../conformance/suite.js";
import { buf, freshNamespace } from "../support/names.js";
import { CLOSED_PORT, postgresAvailable, TEST_URLS } from "../support/servers.js";
import { waitFor } from "../support/migration.js";
import { failure } from "../support/errors.js";
import { startPausableProxy } from "../support/proxy.js";

const ok = await postgresAvailable();

/** Random table/schema names per run, so runs never interfere; all dropped at the end. */
const tag = randomBytes(4).toString("hex");
const table = `decant_test_${tag}`;
const schema = `decant_test_schema_${tag}`;
const appName = `decant_test_${tag}`;

/** The test server's URL with extra query options. */
function pgUrl(options: Record<string, string>, base = TEST_URLS.postgres): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(options)) url.searchParams.set(k, v);
  return url.href;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_URLS.postgres });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

if (ok) {
  after(async function () {
    await admin(async (c) => {
      const tables = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [`${table}%`]);
      for (const { t } of tables.rows) await c.query(`DROP TABLE IF EXISTS public.${t}`);
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.query(`DROP SCHEMA IF EXISTS "${schema}_fence" CASCADE`);
      if ((await c.query("SELECT to_regclass('public.decant_fence') IS NOT NULL AS found")).rows[0].found) await c.query("DELETE FROM public.decant_fence WHERE tbl LIKE $1", [`${table}%`]);
    });
  });

  conformance("postgres", {
    open: () => openStore(pgUrl({ table, application_name: appName })),
    serverUrl: (host, port, password, timeoutMs) => `postgres://postgres:${password}@${host}:${port}/decant_test?timeout_ms=${timeoutMs}`,
  });

  describe("postgres specifics", function () {
    let store: Store;
    let ns: string;
    before(async function () {
      store = await openStore(pgUrl({ table, application_name: appName }));
    });
    after(async function () {
      await store?.close();
    });
    beforeEach(function () {
      ns = freshNamespace();
    });

    it("reports a server that is down as unavailable, quickly", async function () {
      const down = await openStore(`postgres://postgres@127.0.0.1:${CLOSED_PORT}/decant_test?timeout_ms=1000`);
      const started = Date.now();
      const err = await failure(down.get("ns", "k"));
      const elapsed = Date.now() - started;
      expect(err.kind).to.equal("unavailable");
      expect(elapsed).to.be.below(3000);
      const err2 = await failure(down.put("ns", "k", buf("v")));
      expect(err2.kind).to.equal("unavailable");
      await down.close();
    });

    it("opening does not connect", async function () {
      const lazy = await openStore(`postgresql://postgres@192.0.2.1:5432/none?timeout_ms=300`);
      expect(lazy.kind).to.equal("postgres");
      await lazy.close();
    });

    it("bounds a server that accepts but never answers by timeout_ms (deadline_exceeded)", async function () {
      const sockets: Socket[] = [];
      const silent = createServer((socket) => void sockets.push(socket));
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
      const port = (silent.address() as AddressInfo).port;
      const black = await openStore(`postgres://postgres@127.0.0.1:${port}/none?timeout_ms=400`);
      try {
        const started = Date.now();
        const err = await failure(black.get("ns", "k"));
        expect(err.kind).to.equal("deadline_exceeded");
        expect(Date.now() - started).to.be.below(1500);
      } finally {
        await black.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((r) => silent.close(r));
      }
    });

    it("reports a statement that waits too long as deadline_exceeded within timeout_ms", async function () {
      const quick = await openStore(pgUrl({ table, timeout_ms: "500" }));
      await quick.put(ns, "locked", buf("v"));
      const holder = new pg.Client({ connectionString: TEST_URLS.postgres });
      await holder.connect();
      try {
        await holder.query("BEGIN");
        await holder.query(`SELECT 1 FROM public.${table} WHERE ns = $1 AND key = 'locked' FOR UPDATE`, [ns]);
        const started = Date.now();
        const err = await failure(quick.put(ns, "locked", buf("w")));
        expect(err.kind).to.equal("deadline_exceeded");
        expect(Date.now() - started).to.be.below(2000);
      } finally {
        await holder.query("ROLLBACK");
        await holder.end();
      }
      expect((await quick.get(ns, "locked"))!.version).to.equal(1n);
      await quick.close();
    });

    it("gives up a connection whose server stopped answering a second past timeout_ms, so a pool of one serves again", async function () {
      const server = new URL(TEST_URLS.postgres);
      const proxy = await startPausableProxy({ host: server.hostname, port: Number(server.port || 5432) });
      const url = new URL(pgUrl({ table, timeout_ms: "300", pool_max: "1" }));
      url.host = proxy.address;
      const one = await openStore(url.href);
      try {
        await one.put(ns, "stalled", buf("v"));
        const connections = await proxy.settled();
        proxy.pause();
        expect((await failure(one.get(ns, "stalled"))).kind).to.equal("deadline_exceeded");
        await new Promise((r) => setTimeout(r, 1500)); // the backstop: timeout_ms + 1 s after the statement
        proxy.resume();
        // The stalled connection was dropped: the next call opens another (kept, it would have been reused once answered).
        expect((await one.get(ns, "stalled"))!.value).to.deep.equal(buf("v"));
        expect(await proxy.settled()).to.equal(connections + 1);
      } finally {
        proxy.resume();
        await one.close();
        await proxy.close();
      }
    });

    it("keeps versions above 2^53 exact", async function () {
      const big = 2n ** 60n + 1n;
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("a"), version: big }])).to.deep.equal([true]);
      expect((await store.getRaw(ns, "k"))!.version).to.equal(big);
      expect(await store.put(ns, "k", buf("b"))).to.equal(2n ** 60n + 2n);
      expect(await store.put(ns, "k", buf("c"), { kind: "expected_version", version: 2n ** 60n + 2n })).to.equal(2n ** 60n + 3n);
      expect(await store.delete(ns, "k")).to.deep.equal({ deleted: true, version: 2n ** 60n + 4n });
      const page = await store.scanRaw(ns, { limit: 10 });
      expect(page.items[0]!.version).to.equal(2n ** 60n + 4n);
    });

    it("refuses versions a BIGINT cannot hold and writes nothing", async function () {
      const err = await failure(store.applyIfNewer(ns, [{ key: "k", value: buf("a"), version: 2n ** 63n }]));
      expect(err.kind).to.equal("invalid_argument");
      expect(await store.getRaw(ns, "k")).to.equal(null);
      await store.put(ns, "k", buf("a"));
      const mismatch = (await failure(store.put(ns, "k", buf("b"), { kind: "expected_version", version: 2n ** 64n - 1n }))) as { kind?: string; currentVersion?: bigint };
      expect(mismatch.kind).to.equal("version_mismatch");
      expect(mismatch.currentVersion).to.equal(1n);
    });

    it("applyIfNewer with one key several times in a batch keeps the highest version", async function () {
      const applied = await store.applyIfNewer(ns, [
        { key: "k", value: buf("three"), version: 3n },
        { key: "k", value: buf("five"), version: 5n },
        { key: "other", value: buf("o"), version: 1n },
        { key: "k", value: null, version: 4n },
      ]);
      expect(applied).to.deep.equal([false, true, true, false]);
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: buf("five"), version: 5n });
    });

    it("applyIfNewer splits a batch of large values into several statements", async function () {
      const value = Buffer.alloc(3 * 1024 * 1024, 9);
      const items = Array.from({ length: 4 }, (_, i) => ({ key: `big${i}`, value, version: BigInt(i + 1) })); // 12 MiB: two statements
      expect(await store.applyIfNewer(ns, items)).to.deep.equal(items.map(() => true));
      const got = await store.batchGet(ns, items.map((i) => i.key));
      expect(got.length).to.equal(4);
      for (const item of got) expect(item.value.equals(value)).to.equal(true);
    });

    for (const prepared of ["true", "false"]) {
      it(`applyIfNewer of a batch above one statement (1024 and 13 rows) applies each newer item once (prepared=${prepared})`, async function () {
        const s = await openStore(pgUrl({ table, prepared }));
        try {
          const n = 1037;
          // Every third key already holds a newer version: those items must be skipped.
          await s.applyIfNewer(ns, Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 === 0).map((i) => ({ key: `k${i}`, value: buf("newer"), version: 10n })));
          const items = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: i % 7 === 0 ? null : buf(`v${i}`), version: BigInt(1 + (i % 5)) }));
          expect(await s.applyIfNewer(ns, items)).to.deep.equal(items.map((_, i) => i % 3 !== 0));
          expect(await s.applyIfNewer(ns, items)).to.deep.equal(items.map(() => false)); // repeating changes nothing
          const { items: stored } = await s.scanRaw(ns, { limit: 2000 });
          expect(stored.length).to.equal(n);
          const byKey = new Map(stored.map((i) => [i.key, i]));
          for (const [i, item] of items.entries()) expect(byKey.get(item.key), item.key).to.deep.equal(i % 3 === 0 ? { key: item.key, value: buf("newer"), version: 10n } : item);
        } finally {
          await s.close();
        }
      });
    }

    it("segments of scanRaw are disjoint and a cursor stays in its segment", async function () {
      const keys = Array.from({ length: 50 }, (_, i) => `s${i}`);
      await store.applyIfNewer(ns, keys.map((key, i) => ({ key, value: i % 5 === 0 ? null : buf(key), version: 1n })));
      const seen: string[] = [];
      let foreign: string | undefined;
      for (let s = 0; s < 3; s++) {
        let cursor: string | undefined;
        do {
          const p = await store.scanRaw(ns, { limit: 4, cursor, segment: s, totalSegments: 3 });
          seen.push(...p.items.map((i) => i.key));
          cursor = p.cursor;
          if (s === 0 && cursor) foreign = cursor;
        } while (cursor);
      }
      expect(seen.length).to.equal(keys.length);
      expect([...seen].sort()).to.deep.equal([...keys].sort());
      expect((await failure(store.scanRaw(ns, { limit: 4, cursor: foreign, segment: 1, totalSegments: 3 }))).kind).to.equal("invalid_argument");
      expect((await failure(store.scanRaw(ns, { limit: 4, segment: 3, totalSegments: 3 }))).kind).to.equal("invalid_argument");
    });

    it("scanRaw (binary COPY, quoted literals) returns awkward keys, namespaces and values exactly", async function () {
      // scanRaw builds its COPY statement with quoted literals: quotes and backslashes in the
      // namespace and in the cursor key must stay data.
      const awkwardNs = `${ns}'\\ns`;
      const items = [
        { key: "'; DROP TABLE x; --", value: buf("q"), version: 2n ** 62n },
        { key: "back\\slash\\", value: Buffer.alloc(0), version: 1n },
        { key: "it's", value: null, version: 7n },
        { key: "ü", value: randomBytes(70_000), version: 3n },
        { key: "😀 e'\\x41'", value: Buffer.from([0, 255, 0, 92, 39]), version: 4n },
      ];
      await store.applyIfNewer(awkwardNs, items);
      await store.put(`${ns}'`, "other", buf("not in the scanned namespace"));
      const seen = [];
      let cursor: string | undefined;
      do {
        const p = await store.scanRaw(awkwardNs, { limit: 1, cursor });
        seen.push(...p.items);
        cursor = p.cursor;
      } while (cursor);
      const sorted = [...items].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
      expect(seen.map((i) => i.key)).to.deep.equal(sorted.map((i) => i.key));
      for (const [i, item] of seen.entries()) {
        expect(item.version).to.equal(sorted[i]!.version);
        expect(item.value === null ? null : Buffer.from(item.value).toString("hex")).to.equal(sorted[i]!.value === null ? null : sorted[i]!.value!.toString("hex"));
      }
      const count = await admin((c) => c.query(`SELECT count(*)::int AS n FROM ${table}`));
      expect(count.rows[0].n).to.be.greaterThan(0); // the table is still there
    });

    it("applyIfNewer says per item what it wrote across statements, and scanRaw reads rows that cross socket chunks", async function () {
      const big = randomBytes(3 * 1024 * 1024);
      const spread = freshNamespace("spread");
      // Four 3 MB values: the call takes several statements (8 MB each); tombstones, empty values.
      const items = Array.from({ length: 600 }, (_, i) => ({
        key: `x${String(i).padStart(4, "0")}`,
        value: i % 97 === 0 ? null : i % 150 === 1 ? big.subarray(i) : randomBytes(i % 7 === 0 ? 0 : 900 + i),
        version: BigInt(i + 1),
      }));
      expect(await store.applyIfNewer(spread, items)).to.deep.equal(items.map(() => true));
      const again = items.map((item, i) => ({ ...item, version: item.version + BigInt(i % 2) }));
      expect(await store.applyIfNewer(spread, again)).to.deep.equal(again.map((_, i) => i % 2 === 1));
      const { items: read } = await store.scanRaw(spread, { limit: 1000 });
      expect(read.map((i) => [i.key, i.version, i.value === null ? null : Buffer.from(i.value).toString("base64")])).to.deep.equal(
        again.map((i) => [i.key, i.version, i.value === null ? null : i.value.toString("base64")]),
      );
    });

    for (const fenced of [false, true]) {
      it(`applyIfNewer agrees with a model: only strictly newer wins, duplicates, unsorted, multi-byte keys, empty values vs tombstones, across statements (fenced=${fenced})`, async function () {
        // A table of its own: other tests raise the shared table's fence.
        const store = await openStore(pgUrl({ table: `${table}_model${fenced}` }));
        const space = freshNamespace(`model${fenced}`);
        // Keys whose UTF-16 order differs from their byte order (an astral character sorts
        // before U+FFxx in JS, after it in bytes), 1-4 byte characters, an empty-string-like key.
        const keys = ["a", "é", "\u{1F600}x", "\uFF5Ez", "ü✓ñ", "z", "\u4E2D\u6587", "k 0"];
        const rng = (() => {
          let x = 12345;
          return () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
        })();
        const valueOf = (i: number) => (i % 5 === 0 ? null : i % 5 === 1 ? Buffer.alloc(0) : i % 17 === 0 ? randomBytes(5 * 1024 * 1024) : randomBytes(1 + (i % 300))); // two 5 MiB values: two statements
        const model = new Map<string, { value: Buffer | null; version: bigint }>();
        await store.applyIfNewer(space, keys.slice(0, 4).map((key, i) => ({ key, value: buf(`old${i}`), version: 10n })), fenced ? 0 : undefined);
        for (const key of keys.slice(0, 4)) model.set(key, { value: null, version: 10n });
        keys.slice(0, 4).forEach((key, i) => (model.get(key)!.value = buf(`old${i}`)));
        for (let round = 0; round < 4; round++) {
          let batch = Array.from({ length: 40 }, (_, i) => ({ key: keys[Math.floor(rng() * keys.length)]!, value: valueOf(round * 40 + i), version: BigInt(8 + Math.floor(rng() * 6)) }));
          // The last round is sorted and unique, as a backfill's page (the path without a winner map).
          if (round === 3) batch = [...keys].sort().map((key, i) => ({ key, value: valueOf(i), version: BigInt(11 + (i % 4)) }));
          // The model: per key the first item of the highest version wins, if above what is stored.
          const expected = batch.map(() => false);
          const best = new Map<string, number>();
          batch.forEach((item, i) => {
            const b = best.get(item.key);
            if (b === undefined || item.version > batch[b]!.version) best.set(item.key, i);
          });
          for (const [key, i] of best) {
            const stored = model.get(key);
            if (stored === undefined || stored.version < batch[i]!.version) {
              expected[i] = true;
              model.set(key, { value: batch[i]!.value, version: batch[i]!.version });
            }
          }
          expect(await store.applyIfNewer(space, batch, fenced ? 0 : undefined), `round ${round}`).to.deep.equal(expected);
          const { items: read } = await store.scanRaw(space, { limit: 100 });
          const plain = (v: Buffer | null) => (v === null ? null : Buffer.from(v).toString("hex"));
          expect(new Map(read.map((i) => [i.key, [plain(i.value), i.version]]))).to.deep.equal(new Map([...model].map(([k, v]) => [k, [plain(v.value), v.version]])));
        }
        await store.close();
      });
    }

    it("a raw scan (COPY) leaves no timer behind", async function () {
      await store.put(ns, "k", buf("v"));
      await store.scanRaw(ns, { limit: 1 });
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      const before = timers();
      for (let i = 0; i < 5; i++) await store.scanRaw(ns, { limit: 1 });
      expect(timers()).to.equal(before);
    });

    it("counts a namespace, including tombstones, and purges only tombstones", async function () {
      await store.batchWrite(ns, ["a", "b", "c", "d"].map((key) => ({ type: "put" as const, key, value: buf("v") })));
      await store.delete(ns, "b");
      await store.delete(ns, "d");
      expect(await store.estimateCount(ns)).to.equal(4);
      expect(await store.purgeTombstones(ns)).to.equal(2);
      expect(await store.estimateCount(ns)).to.equal(2);
      expect(await store.purgeTombstones(ns)).to.equal(0);
    });

    it("drops a namespace larger than one delete chunk and leaves others alone", async function () {
      const other = freshNamespace();
      await store.put(other, "keep", buf("v"));
      const items = Array.from({ length: 12_000 }, (_, i) => ({ key: `k${i}`, value: i % 3 === 0 ? null : buf("v"), version: 1n }));
      for (let i = 0; i < items.length; i += 1000) await store.applyIfNewer(ns, items.slice(i, i + 1000));
      expect(await store.estimateCount(ns)).to.equal(12_000);
      await store.dropNamespace(ns);
      expect(await store.estimateCount(ns)).to.equal(0);
      expect(await store.namespaces()).to.not.include(ns);
      expect(await store.namespaces()).to.include(other);
    });

    it("delete with must_not_exist or a stale version writes nothing", async function () {
      expect(await store.delete(ns, "none", { kind: "must_not_exist" })).to.deep.equal({ deleted: false, version: 0n });
      await store.put(ns, "k", buf("v"));
      expect((await failure(store.delete(ns, "k", { kind: "must_not_exist" }))).kind).to.equal("version_mismatch");
      expect((await failure(store.delete(ns, "none", { kind: "expected_version", version: 1n }))).kind).to.equal("version_mismatch");
      expect((await store.getRaw(ns, "k"))!.version).to.equal(1n);
    });

    it("uses the table and schema options, creating the schema if missing", async function () {
      const custom = await openStore(pgUrl({ schema, table: "Items_X" }));
      await custom.put(ns, "k", buf("v"));
      const rows = await admin((c) => c.query(`SELECT key, version FROM "${schema}"."Items_X" WHERE ns = $1`, [ns]));
      expect(rows.rows).to.deep.equal([{ key: "k", version: "1" }]);
      expect(await store.get(ns, "k")).to.equal(null); // another table, so not visible here
      const collation = await admin((c) =>
        c.query(`SELECT collation_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'Items_X' AND column_name = 'key'`, [schema]),
      );
      expect(collation.rows[0].collation_name).to.equal("C");
      await custom.close();
    });

    it("several stores creating one new table at once all succeed", async function () {
      // Several rounds: the catalog collision comes in more than one form (CI once met 42710).
      for (let round = 0; round < 8; round++) {
        const url = pgUrl({ table: `${table}_race${round}` });
        const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(url)));
        await Promise.all(stores.map((s, i) => s.put(ns, `k${i}`, buf("v"))));
        expect((await stores[0]!.scan(ns, { limit: 10 })).items.length).to.equal(6);
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it("recovers when the server drops its connections (reads are retried)", async function () {
      await store.put(ns, "k", buf("v"));
      await admin((c) => c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", [appName]));
      // Terminating is asynchronous: wait until the backends are gone, so the reads below meet dead connections.
      const left = () => admin(async (c) => Number((await c.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [appName])).rows[0].n));
      await waitFor(async () => (await left()) === 0, "the store's connections to be terminated", 5000);
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("v");
      expect((await store.scanRaw(ns, { limit: 5 })).items.length).to.equal(1);
    });

    it("refuses bad options, naming them", async function () {
      for (const [opt, value] of [["table", "bad-name"], ["table", "decant_fence"], ["schema", "x;drop"], ["pool_max", "0"], ["timeout_ms", "soon"], ["prepared", "yes"]] as const) {
        const err = await failure(openStore(pgUrl({ [opt]: value })));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.message).to.include(opt);
      }
    });

    it("raiseFence waits for a fenced write in flight to commit, and fenced writes sent meanwhile queue behind it", async function () {
      const app = `${appName}_fence`;
      const fencer = await openStore(pgUrl({ table, application_name: app }));
      const writer = await openStore(pgUrl({ table, application_name: `${app}_w` }));
      const base = await fencer.raiseFence!(0); // the fence table and this table's row exist from here
      const holder = new pg.Client({ connectionString: TEST_URLS.postgres });
      await holder.connect();
      const waitingOnLock = (name: string) => async () =>
        (await admin((c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [name]))).rows[0]!.n === 1;
      try {
        // What a fenced write does, held open as if its commit were slow.
        await holder.query("BEGIN");
        await holder.query("SELECT epoch FROM public.decant_fence WHERE tbl = $1 FOR SHARE", [table]);
        await holder.query(`INSERT INTO public.${table} (ns, key, value, version) VALUES ($1, 'inflight', 'x', 1)`, [ns]);
        let returned = false;
        const raising = fencer.raiseFence!(base + 1).then((fence) => ((returned = true), fence));
        await waitFor(waitingOnLock(app), "raiseFence to wait for the fenced write", 5000);
        // A fenced write sent now must not slip past the waiting raiseFence (PostgreSQL would let
        // a second FOR SHARE past a waiting row update): it waits, and is then refused.
        const late = writer.put(ns, "late", buf("v"), undefined, base).then(
          () => "written",
          (err: DecantError) => err.kind,
        );
        await waitFor(waitingOnLock(`${app}_w`), "the late fenced write to queue behind raiseFence", 5000);
        expect(returned).to.equal(false);
        await holder.query("COMMIT");
        expect(await raising).to.equal(base + 1);
        expect(await fencer.getRaw(ns, "inflight")).to.not.equal(null);
        expect(await late).to.equal("fenced");
        expect(await fencer.getRaw(ns, "late")).to.equal(null);
      } finally {
        await holder.end();
        await fencer.close();
        await writer.close();
      }
    });

    it("keeps one fence per table, and creates the fence table safely from many stores at once", async function () {
      const fenceSchema = `${schema}_fence`;
      const stores = await Promise.all([1, 2, 3, 4].map((i) => openStore(pgUrl({ table: `${table}_f${i}`, schema: fenceSchema }))));
      try {
        expect(await Promise.all(stores.map((s, i) => s.raiseFence!(10 * (i + 1))))).to.deep.equal([10, 20, 30, 40]);
        expect(await stores[0]!.put(ns, "k", buf("v"), undefined, 10)).to.equal(1n);
        expect((await failure(stores[1]!.put(ns, "k", buf("v"), undefined, 10))).kind).to.equal("fenced");
        const rows = await admin((c) => c.query(`SELECT tbl, epoch::int FROM "${fenceSchema}".decant_fence ORDER BY tbl`));
        expect(rows.rows).to.deep.equal([1, 2, 3, 4].map((i) => ({ tbl: `${table}_f${i}`, epoch: 10 * i })));
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it("a call waiting for a pooled connection stops when its caller goes (cancelled, nothing written); one already sent is not cancelled", async function () {
      const one = await openStore(pgUrl({ table, pool_max: "1", application_name: `${appName}_cancel` }));
      await one.put(ns, "locked", buf("v1"));
      const holder = new pg.Client({ connectionString: TEST_URLS.postgres });
      await holder.connect();
      try {
        await holder.query("BEGIN");
        await holder.query(`SELECT 1 FROM public.${table} WHERE ns = $1 AND key = 'locked' FOR UPDATE`, [ns]);
        // Sent: waits on the row lock, holding the pool's only connection.
        const sentCaller = new AbortController();
        const sent = one.put(ns, "locked", buf("v2"), undefined, undefined, signalCaller(sentCaller.signal));
        await waitFor(async () => (await admin((c) => c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [`${appName}_cancel`]))).rows[0]!.n === 1, "the put to wait on the row lock", 5000);
        // Not sent: waits for the pool.
        const waitingCaller = new AbortController();
        const waiting = one.put(ns, "other", buf("x"), undefined, undefined, signalCaller(waitingCaller.signal)).then(
          () => "written",
          (err: DecantError) => err.kind,
        );
        sentCaller.abort();
        waitingCaller.abort();
        await holder.query("ROLLBACK");
        expect(await sent).to.equal(2n); // its outcome is the store's
        expect(await waiting).to.equal("cancelled");
        expect(await one.getRaw(ns, "other")).to.equal(null);
      } finally {
        await holder.end();
        await one.close();
      }
    });

    it("never shows the password", async function () {
      const secretStore = await openStore(`postgres://postgres:s3cret-pw@127.0.0.1:${CLOSED_PORT}/decant_test?timeout_ms=500`);
      expect(secretStore.description).to.not.include("s3cret-pw");
      const err = await failure(secretStore.get("ns", "k"));
      expect(err.message).to.not.include("s3cret-pw");
      await secretStore.close();
    });
  });
}
