// CopyOutRows and WrittenParam against the real PostgreSQL: what pg and the server really do.
import { expect } from "chai";
import pg from "pg";
import { CopyOutRows } from "../../src/backends/postgres-copy.js";
import { WrittenParam } from "../../src/backends/postgres.js";
import type { RawItem } from "../../src/protocol/types.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";

const ok = await postgresAvailable();

const copy = (client: pg.ClientBase, sql: string) =>
  new Promise<RawItem[]>((resolve, reject) => void client.query(new CopyOutRows(sql, (err, rows) => (err ? reject(err) : resolve(rows!))) as unknown as pg.Submittable));
/** The error a copy failed with (undefined if it did not fail). */
const failure = (client: pg.ClientBase, sql: string): Promise<unknown> => copy(client, sql).then(() => undefined, (err: unknown) => err);

/** Rows of 200 KB values: each is cut across socket chunks. */
const bigRows = (n: number, where = "true") =>
  `SELECT 'k' || i, decode(repeat(lpad(to_hex(i % 256), 2, '0'), 200000), 'hex'), i::int8 FROM generate_series(1, ${n}) i WHERE ${where}`;

async function withClient<T>(options: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_URLS.postgres, ...options });
  const errors: Error[] = [];
  client.on("error", (err) => errors.push(err));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function expectClean(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ n: number; b: Buffer }>("SELECT 41 + 1 AS n, $1::bytea AS b", [Buffer.from("ok")]);
  expect(rows[0]!.n).to.equal(42);
  expect(rows[0]!.b.toString()).to.equal("ok");
}

if (ok) {
  describe("postgres COPY rows and written parameters (live)", function () {
    this.timeout(30_000);

    it("several WrittenParams in one statement each reach the server with their own bytes (pg maps then copies each in turn)", async function () {
      // All of them share one scratch buffer: if pg mapped every value before copying any, all
      // would carry the last one's bytes.
      await withClient({}, async (client) => {
        const params = ["first", "second value", "", "fourth, the longest of them all"].map(
          (text) => new WrittenParam(Buffer.byteLength(text), (into) => void into.write(text, 0, "utf8")),
        );
        for (let round = 0; round < 2; round++) {
          const { rows } = await client.query<Record<string, Buffer>>("SELECT $1::bytea AS a, $2::bytea AS b, $3::bytea AS c, $4::bytea AS d", params);
          expect([rows[0]!.a, rows[0]!.b, rows[0]!.c, rows[0]!.d].map((b) => b!.toString())).to.deep.equal(["first", "second value", "", "fourth, the longest of them all"]);
        }
      });
    });

    it("reads an empty result, then the client runs its next query", async function () {
      await withClient({}, async (client) => {
        expect(await copy(client, "SELECT 'k'::text, NULL::bytea, 1::int8 WHERE false")).to.deep.equal([]);
        await expectClean(client);
      });
    });

    it("reads rows cut across socket chunks (tombstones, empty values, multi-byte keys), then the client is clean", async function () {
      await withClient({}, async (client) => {
        const rows = await copy(client, `${bigRows(20)} UNION ALL SELECT 'ünï ✓', NULL, 7 UNION ALL SELECT 'e', ''::bytea, 9223372036854775807`);
        expect(rows).to.have.length(22);
        rows.slice(0, 20).forEach((r, i) => {
          expect(r.key).to.equal(`k${i + 1}`);
          expect(r.value!.length).to.equal(200000);
          expect(r.value!.every((b) => b === (i + 1) % 256)).to.equal(true);
          expect(r.version).to.equal(BigInt(i + 1));
        });
        expect(rows.slice(20)).to.deep.equal([
          { key: "ünï ✓", value: null, version: 7n },
          { key: "e", value: Buffer.alloc(0), version: 2n ** 63n - 1n },
        ]);
        await expectClean(client);
      });
    });

    it("an error in the middle of the rows fails the copy, and the client runs its next query", async function () {
      await withClient({}, async (client) => {
        const err = await failure(client, bigRows(30, "1 / (15 - i) IS NOT NULL"));
        expect((err as { code?: string }).code).to.equal("22012");
        await expectClean(client);
      });
    });

    it("statement_timeout in the middle of the rows fails the copy, and the client runs its next query", async function () {
      await withClient({ statement_timeout: 500 }, async (client) => {
        const err = await failure(client, bigRows(30, "i < 5 OR pg_sleep(2) IS NOT NULL"));
        expect((err as { code?: string }).code).to.equal("57014");
        await expectClean(client);
      });
    });

    it("pg's query_timeout in the middle of a row: pg gets the rest of the stream and the client runs its next query", async function () {
      // The server sends row 1 but keeps its last bytes buffered while it sleeps before row 2:
      // the timeout hits with part of a message read. pg waits out the copy before the next query.
      await withClient({ query_timeout: 500 }, async (client) => {
        const err = await failure(client, bigRows(3, "i = 1 OR pg_sleep(1.5) IS NOT NULL"));
        expect((err as Error).message).to.match(/timeout/);
        await new Promise((r) => setTimeout(r, 3500)); // the server ends the copy meanwhile
        await expectClean(client);
      });
    });

    it("a connection killed in the middle of the rows fails the copy", async function () {
      await withClient({}, async (client) => {
        const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
        const pending = copy(client, bigRows(30, "i < 3 OR pg_sleep(0.3) IS NOT NULL")).then(() => undefined, (e: unknown) => e);
        await new Promise((r) => setTimeout(r, 400));
        await withClient({}, (other) => other.query("SELECT pg_terminate_backend($1)", [pid]));
        expect(await pending).to.be.instanceOf(Error);
      });
    });

    it("leaves no timer of pg's query_timeout behind", async function () {
      await withClient({ query_timeout: 60_000 }, async (client) => {
        const before = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
        await copy(client, bigRows(2));
        expect(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length).to.equal(before);
      });
    });
  });
}
