import { randomBytes } from "node:crypto";
import { expect } from "chai";
import mysql from "mysql2/promise";
import { openStore } from "../../src/backends/index.js";
import type { DecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import { conformance } from "../conformance/suite.js";
import { buf, freshNamespace } from "../support/names.js";
import { failure } from "../support/errors.js";
import { CLOSED_PORT, TEST_URLS, serverAvailable } from "../support/servers.js";
import { waitFor } from "../support/migration.js";
import { startPausableProxy } from "../support/proxy.js";

// Every run uses its own tables, dropped at the end, so runs never interfere.
const run = randomBytes(4).toString("hex");
const tables = { conformance: `decant_t_${run}`, specifics: `decant_s_${run}`, other: `decant_o_${run}`, race: `decant_r_${run}`, fenced: `decant_f_${run}` };

/** The test server's URL with options set (keeps whatever the URL already carries). */
function urlWith(options: Record<string, string>, base = TEST_URLS.mysql): string {
  const url = new URL(base);
  for (const [k, v] of Object.entries(options)) url.searchParams.set(k, v);
  return url.toString();
}

/** A direct connection for checks and cleanup behind the adapter's back. */
const direct = () => mysql.createConnection({ uri: TEST_URLS.mysql, connectTimeout: 2000 });


const ok = await serverAvailable("mysql", async () => (await direct()).end());

/** Drops this run's tables as soon as their suite ends (not at the end of a long full run, which may be cut short). */
async function dropTables(...names: string[]): Promise<void> {
  const conn = await direct();
  for (const t of names) await conn.query(`DROP TABLE IF EXISTS \`${t}\``);
  // Their rows in the fence table too (which stays: other stores use it).
  await conn.query("DELETE FROM decant_fence WHERE tbl IN (?)", [names]).catch((err: { code?: string }) => {
    if (err.code !== "ER_NO_SUCH_TABLE") throw err;
  });
  await conn.end();
}

/**
 * Waits until no other connection to the test database is running a statement or holds an open
 * transaction: work a timed-out call abandoned has then finished, and its effect (if any) shows.
 */
async function abandonedWorkDone(): Promise<void> {
  const conn = await direct();
  try {
    await waitFor(async () => {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        `SELECT COUNT(*) AS busy FROM information_schema.PROCESSLIST p
          WHERE p.DB = DATABASE() AND p.ID <> CONNECTION_ID()
            AND (p.COMMAND = 'Query' OR p.ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX))`,
      );
      return Number(rows[0]!.busy) === 0;
    }, "the abandoned attempt to finish", 10_000);
  } finally {
    await conn.end();
  }
}

if (ok) {
  conformance("mysql", {
    open: () => openStore(urlWith({ table: tables.conformance })),
    serverUrl: (host, port, password, timeoutMs) => `mysql://root:${password}@${host}:${port}/decant_test?timeout_ms=${timeoutMs}`,
    approximateCount: true, // the optimizer's row estimate
    close: async (store) => {
      await store.close();
      await dropTables(tables.conformance);
    },
  });

  describe("mysql specifics", function () {
    let store: Store;
    let ns: string;
    before(async function () {
      store = await openStore(urlWith({ table: tables.specifics }));
    });
    after(async function () {
      await store?.close();
      await dropTables(tables.specifics, tables.other, tables.race, tables.fenced);
    });
    beforeEach(function () {
      ns = freshNamespace();
    });

    it("reports a server that is down as unavailable, quickly", async function () {
      const down = await openStore(`mysql://root:secret@127.0.0.1:${CLOSED_PORT}/decant_test?timeout_ms=1000`);
      const started = Date.now();
      const err = await failure(down.get("ns", "k"));
      const elapsed = Date.now() - started;
      expect(err.kind).to.equal("unavailable");
      expect(elapsed).to.be.below(3000);
      expect(err.message).to.not.include("secret");
      await down.close();
    });

    it("reports bad credentials as unavailable at once, without the password", async function () {
      const url = new URL(TEST_URLS.mysql);
      url.username = "decant_nobody";
      url.password = "wrong-pw";
      const denied = await openStore(url.toString());
      const started = Date.now();
      const err = await failure(denied.get("ns", "k"));
      expect(err.kind).to.equal("unavailable");
      expect(err.message).to.include("Access denied");
      expect(err.message).to.not.include("wrong-pw");
      expect(Date.now() - started).to.be.below(1000);
      await denied.close();
    });

    it("opens no connection until the first call", async function () {
      // The server behind a proxy that counts the connections it accepts.
      const server = new URL(TEST_URLS.mysql);
      const proxy = await startPausableProxy({ host: server.hostname, port: Number(server.port || 3306) });
      try {
        const lazy = await openStore(urlWith({ table: tables.specifics }, TEST_URLS.mysql.replace(server.host, proxy.address)));
        // settled(): a connection the factory started without awaiting it is counted too.
        expect(await proxy.settled(), "connections opened by openStore").to.equal(0);
        await lazy.get(ns, "k");
        expect(proxy.accepted).to.be.above(0);
        await lazy.close();
      } finally {
        await proxy.close();
      }
    });

    it("times out a call stuck behind a row lock as deadline_exceeded and writes nothing", async function () {
      const fast = await openStore(urlWith({ table: tables.specifics, timeout_ms: "1000" }));
      await fast.put(ns, "locked", buf("before"));
      const conn = await direct();
      try {
        await conn.beginTransaction();
        await conn.query(`SELECT version FROM \`${tables.specifics}\` WHERE ns = ? AND k = ? FOR UPDATE`, [Buffer.from(ns), Buffer.from("locked")]);
        const started = Date.now();
        const err = await failure(fast.put(ns, "locked", buf("after")));
        expect(err.kind).to.equal("deadline_exceeded");
        expect(Date.now() - started).to.be.below(2500);
      } finally {
        await conn.rollback();
        await conn.end();
      }
      await abandonedWorkDone();
      expect(await fast.getRaw(ns, "locked")).to.deep.include({ version: 1n });
      expect((await fast.get(ns, "locked"))!.value.toString()).to.equal("before");
      expect(await fast.put(ns, "locked", buf("later"))).to.equal(2n);
      await fast.close();
    });

    it("keeps versions above 2^53 exact", async function () {
      const big = 2n ** 60n + 1n;
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("v"), version: big }])).to.deep.equal([true]);
      expect(await store.put(ns, "k", buf("w"))).to.equal(2n ** 60n + 2n);
      expect((await store.get(ns, "k"))!.version).to.equal(2n ** 60n + 2n);
      // Neighbours that a double could not tell apart are still ordered exactly.
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("x"), version: 2n ** 60n + 1n }])).to.deep.equal([false]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("y"), version: 2n ** 60n + 3n }])).to.deep.equal([true]);
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: buf("y"), version: 2n ** 60n + 3n });
      const max = 2n ** 64n - 1n;
      await store.applyIfNewer(ns, [{ key: "top", value: buf("t"), version: max }]);
      expect((await store.getRaw(ns, "top"))!.version).to.equal(max);
      // A put reads the new version back from a signed field: above 2^63 it must still be right.
      await store.applyIfNewer(ns, [{ key: "high", value: buf("h"), version: 2n ** 63n + 5n }]);
      expect(await store.put(ns, "high", buf("i"))).to.equal(2n ** 63n + 6n);
      // No version above the top: refused as the version's problem, and nothing written.
      for (const condition of [undefined, { kind: "expected_version" as const, version: max }]) {
        const err = await failure(store.put(ns, "top", buf("u"), condition));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.message).to.include("version");
        expect(await store.getRaw(ns, "top")).to.deep.equal({ key: "top", value: buf("t"), version: max });
      }
    });

    it("applyIfNewer replaces value and version together, or neither (assignment order)", async function () {
      await store.applyIfNewer(ns, [{ key: "k", value: buf("five"), version: 5n }]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("six"), version: 6n }])).to.deep.equal([true]);
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: buf("six"), version: 6n });
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("four"), version: 4n }])).to.deep.equal([false]);
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: buf("six"), version: 6n });
      expect(await store.applyIfNewer(ns, [{ key: "k", value: null, version: 9n }])).to.deep.equal([true]);
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: null, version: 9n });
    });

    it("the guarded upsert never lowers a version, and only -FOUND_ROWS tells a no-op from an update", async function () {
      await store.applyIfNewer(ns, [{ key: "g", value: buf("new"), version: 10n }]);
      const t = `\`${tables.specifics}\``;
      const sql = `INSERT INTO ${t} (ns, k, value, version) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE value = IF(version < VALUES(version), VALUES(value), value), version = IF(version < VALUES(version), VALUES(version), version)`;
      const stale = [Buffer.from(ns), Buffer.from("g"), buf("old"), 3n];
      const plain = await direct();
      const noFoundRows = await mysql.createConnection({ uri: TEST_URLS.mysql, flags: ["-FOUND_ROWS"] });
      try {
        const [withFlag] = await plain.query<mysql.ResultSetHeader>(sql, stale);
        expect(withFlag.affectedRows).to.equal(1); // mysql2's default FOUND_ROWS counts the matched row, like an update
        const [without] = await noFoundRows.query<mysql.ResultSetHeader>(sql, stale);
        expect(without.affectedRows).to.equal(0);
        const [rows] = await plain.query<mysql.RowDataPacket[]>(`SELECT value, CAST(version AS CHAR) AS v FROM ${t} WHERE ns = ? AND k = ?`, [Buffer.from(ns), Buffer.from("g")]);
        expect(rows[0]!.value.toString()).to.equal("new");
        expect(rows[0]!.v).to.equal("10");
      } finally {
        await plain.end();
        await noFoundRows.end();
      }
    });

    it("applyIfNewer answers per item within one batch, duplicates of a key included", async function () {
      const applied = await store.applyIfNewer(ns, [
        { key: "d", value: buf("5"), version: 5n },
        { key: "d", value: buf("3"), version: 3n },
        { key: "d", value: buf("7"), version: 7n },
        { key: "d", value: buf("7 again"), version: 7n },
        { key: "e", value: null, version: 2n },
      ]);
      expect(applied).to.deep.equal([true, false, true, false, true]);
      expect(await store.getRaw(ns, "d")).to.deep.equal({ key: "d", value: buf("7"), version: 7n });
      expect(await store.getRaw(ns, "e")).to.deep.equal({ key: "e", value: null, version: 2n });
    });

    it("applyIfNewer handles a batch of 1000 items in one call", async function () {
      const items = Array.from({ length: 1000 }, (_, i) => ({ key: `bulk/${i}`, value: buf(`v${i}`), version: BigInt(i + 1) }));
      expect((await store.applyIfNewer(ns, items)).every(Boolean)).to.equal(true);
      expect((await store.applyIfNewer(ns, items)).some(Boolean)).to.equal(false);
      expect(await store.getRaw(ns, "bulk/999")).to.deep.equal({ key: "bulk/999", value: buf("v999"), version: 1000n });
    });

    it("keeps keys that differ only in trailing spaces apart (binary, not PAD SPACE)", async function () {
      await store.put(ns, "a", buf("plain"));
      await store.put(ns, "a ", buf("space"));
      await store.put(ns, "a\u0000", buf("nul"));
      expect((await store.get(ns, "a"))!.value.toString()).to.equal("plain");
      expect((await store.get(ns, "a "))!.value.toString()).to.equal("space");
      expect((await store.get(ns, "a\u0000"))!.value.toString()).to.equal("nul");
      expect((await store.scan(ns, { limit: 10 })).items.map((i) => i.key)).to.deep.equal(["a", "a\u0000", "a "]);
    });

    it("treats keys case-sensitively", async function () {
      await store.put(ns, "Key", buf("upper"));
      await store.put(ns, "key", buf("lower"));
      expect((await store.get(ns, "Key"))!.value.toString()).to.equal("upper");
      expect((await store.get(ns, "key"))!.value.toString()).to.equal("lower");
    });

    it("lets exactly one of many racing must_not_exist writers create a key", async function () {
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put(ns, "race", buf(String(i)), { kind: "must_not_exist" })));
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won.length).to.equal(1);
      for (const r of results) if (r.status === "rejected") expect((r.reason as DecantError).kind).to.equal("version_mismatch");
      expect((await store.get(ns, "race"))!.version).to.equal(1n);
    });

    it("holds a value of max_value_bytes and refuses one byte more", async function () {
      const small = await openStore(urlWith({ table: tables.specifics, max_value_bytes: "1048576" }));
      expect(small.capabilities.maxValueBytes("k")).to.equal(1048576);
      const value = randomBytes(1048576);
      await small.put(ns, "max", value);
      expect((await small.get(ns, "max"))!.value.equals(value)).to.equal(true);
      expect((await failure(small.put(ns, "max", Buffer.alloc(1048577)))).kind).to.equal("invalid_argument");
      await small.close();
    });

    it("refuses max_value_bytes that the server's max_allowed_packet cannot carry, naming the option", async function () {
      const huge = await openStore(urlWith({ table: tables.specifics, max_value_bytes: String(512 * 1024 * 1024) }));
      const err = await failure(huge.get(ns, "k"));
      expect(err.message).to.include("max_value_bytes");
      expect(err.message).to.include("max_allowed_packet");
      await huge.close();
    });

    it("scans raw in segments that together see every key once", async function () {
      const keys = Array.from({ length: 50 }, (_, i) => `seg${i}`);
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      await store.delete(ns, "seg7");
      const seen: string[] = [];
      for (let s = 0; s < 3; s++) {
        let cursor: string | undefined;
        do {
          const page = await store.scanRaw(ns, { limit: 4, cursor, segment: s, totalSegments: 3 });
          seen.push(...page.items.map((i) => i.key));
          cursor = page.cursor;
        } while (cursor);
      }
      expect(seen.sort()).to.deep.equal([...keys].sort());
      expect((await failure(store.scanRaw(ns, { limit: 4, segment: 3, totalSegments: 3 }))).kind).to.equal("invalid_argument");
    });

    it("uses the table the URL names, created on first use", async function () {
      const other = await openStore(urlWith({ table: tables.other }));
      await other.put(ns, "k", buf("other table"));
      expect(await store.get(ns, "k")).to.equal(null);
      expect((await other.get(ns, "k"))!.value.toString()).to.equal("other table");
      const conn = await direct();
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?", [tables.other]);
      await conn.end();
      expect(Number(rows[0]!.n)).to.equal(1);
      await other.close();
    });

    it("several stores creating one new table at once all succeed", async function () {
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore(urlWith({ table: tables.race }))));
      const versions = await Promise.all(stores.map((s, i) => s.put(ns, `k${i}`, buf("v"))));
      expect(versions).to.deep.equal([1n, 1n, 1n, 1n]);
      await Promise.all(stores.map((s) => s.close()));
    });

    it("recreates its table if it is dropped while running", async function () {
      const other = await openStore(urlWith({ table: tables.other }));
      await other.put(ns, "k", buf("v"));
      const conn = await direct();
      await conn.query(`DROP TABLE \`${tables.other}\``);
      await conn.end();
      expect(await other.get(ns, "k")).to.equal(null);
      expect(await other.put(ns, "k", buf("again"))).to.equal(1n);
      await other.close();
    });

    it("estimates a namespace's size and deletes in chunks", async function () {
      await store.applyIfNewer(ns, Array.from({ length: 300 }, (_, i) => ({ key: `n${i}`, value: i % 3 === 0 ? null : buf("v"), version: 1n })));
      const estimate = await store.estimateCount(ns);
      expect(estimate).to.be.above(100).and.below(1000);
      expect(await store.purgeTombstones(ns)).to.equal(100);
      await store.dropNamespace(ns);
      expect(await store.namespaces()).to.not.include(ns);
    });

    it("accepts mariadb: URLs and keeps the password out of the description", async function () {
      const url = urlWith({ table: tables.specifics }, TEST_URLS.mysql.replace(/^mysql:/, "mariadb:"));
      const m = await openStore(url);
      expect(m.kind).to.equal("mysql");
      await m.put(ns, "k", buf("v"));
      await m.close();
      const withPw = await openStore("mysql://app:s3cret@db.example:3306/decant?table=t1");
      expect(withPw.description).to.not.include("s3cret");
      expect(withPw.description).to.include("db.example");
      await withPw.close();
    });

    it("raiseFence waits for a fenced write in flight to commit, fenced writes sent meanwhile queue behind it, and each table has its own fence", async function () {
      const base = await store.raiseFence!(0); // the fence table and this table's row exist from here
      const writer = await openStore(urlWith({ table: tables.specifics }));
      const other = await openStore(urlWith({ table: tables.fenced }));
      const holder = await direct();
      const watcher = await direct();
      const lockWaits = (n: number) => async () => {
        const [rows] = await watcher.query<mysql.RowDataPacket[]>(
          "SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND STATE LIKE 'Waiting for table metadata lock%'",
        );
        return Number(rows[0]!.n) === n;
      };
      try {
        // What a fenced write does, held open as if its commit were slow.
        await holder.query("START TRANSACTION");
        await holder.query("SELECT epoch FROM decant_fence WHERE tbl = ? LOCK IN SHARE MODE", [tables.specifics]);
        await holder.query(`INSERT INTO \`${tables.specifics}\` (ns, k, value, version) VALUES (?, 'inflight', 'x', 1)`, [ns]);
        let returned = false;
        const raising = store.raiseFence!(base + 1).then((fence) => ((returned = true), fence));
        await waitFor(lockWaits(1), "raiseFence to wait for the fenced write", 5000);
        // A fenced write sent now must not slip past the waiting raiseFence: it waits, and is then refused.
        const late = writer.put(ns, "late", buf("v"), undefined, base).then(
          () => "written",
          (err: DecantError) => err.kind,
        );
        await waitFor(lockWaits(2), "the late fenced write to queue behind raiseFence", 5000);
        expect(returned).to.equal(false);
        await holder.query("COMMIT");
        expect(await raising).to.equal(base + 1);
        expect(await store.getRaw(ns, "inflight")).to.not.equal(null);
        expect(await late).to.equal("fenced");
        expect(await store.getRaw(ns, "late")).to.equal(null);
        // Another table in the same database has a fence of its own.
        expect(await other.put(ns, "k", buf("v"), undefined, 0)).to.equal(1n);
      } finally {
        await holder.end();
        await watcher.end();
        await writer.close();
        await other.close();
      }
    });

    it("a fenced put whose store's fence row was deleted by hand counts it as 0 (as before it existed) and makes it again", async function () {
      const s = await openStore(urlWith({ table: tables.fenced }));
      const conn = await direct();
      try {
        expect(await s.put(ns, "gone", buf("1"), undefined, 0)).to.equal(1n); // makes the fence row
        await conn.query("DELETE FROM decant_fence WHERE tbl = ?", [tables.fenced]);
        expect(await s.put(ns, "gone", buf("2"), undefined, 0)).to.equal(2n);
        const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT epoch FROM decant_fence WHERE tbl = ?", [tables.fenced]);
        expect(rows.map((r) => Number(r.epoch))).to.deep.equal([0]);
        await s.raiseFence!(3);
        expect(await failure(s.put(ns, "gone", buf("3"), undefined, 2))).to.have.property("kind", "fenced");
      } finally {
        await conn.end();
        await s.close();
      }
    });

    it("refuses bad options, naming them", async function () {
      const cases: Array<[string, string]> = [
        ["mysql://root@127.0.0.1/decant?pool_max=0", "pool_max"],
        ["mysql://root@127.0.0.1/decant?timeout_ms=soon", "timeout_ms"],
        ["mysql://root@127.0.0.1/decant?table=bad-name", "table"],
        ["mysql://root@127.0.0.1/decant?table=decant_fence", "table"],
        ["mysql://root@127.0.0.1/decant?max_value_bytes=-1", "max_value_bytes"],
        ["mysql://root@127.0.0.1/decant?ssl=maybe", "ssl"],
        ["mysql://root@127.0.0.1/decant?tabel=x", "tabel"],
        ["mysql://root@127.0.0.1/", "database"],
      ];
      for (const [url, name] of cases) {
        const err = await failure(openStore(url));
        expect(err.kind, url).to.equal("invalid_argument");
        expect(err.message, url).to.include(name);
      }
    });
  });
}
