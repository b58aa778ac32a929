// PostgreSQL through pg (node-postgres), one pg.Pool per store.
//
//   postgres://user:pw@host:5432/db?table=decant_items&schema=public&pool_max=10&timeout_ms=5000
//
//   table       table that holds every namespace (default decant_items); [A-Za-z_][A-Za-z0-9_]{0,62}
//   schema      schema of that table (default public), created if missing; same pattern
//   pool_max    most connections the pool opens (default 10)
//   timeout_ms  bound on each statement, pool wait and connect included (default 5000)
//   prepared    true (default): statements are prepared once per connection; false for a
//               connection pooler that cannot keep them (PgBouncer before 1.21 in transaction mode)
//
// pg's own connection options (application_name, sslmode, sslrootcert, …: PG_OPTIONS below) go to
// pg unchanged; any other option is refused. The password may come from the URL or from
// PGPASSWORD; it is never shown (description uses redactUrl).
//
// Layout: ONE table keyed by (ns, key), not a table per namespace. Namespaces come and go
// (freshly migrated services, cleared targets), and DDL per namespace would need CREATE
// privileges at run time, take locks that block other sessions and race with itself;
// namespaces() and dropNamespace() are plain index reads/deletes on the primary key.
// key is TEXT COLLATE "C", so its order is UTF-8 byte order and scans are ordered by the index.
//
// Write fence (raiseFence): one row per store in "schema"."decant_fence", keyed by the items
// table's name (two stores may share a schema), created on the first fenced call, not with the
// items table (a DML-only role that never fences keeps working). A fenced write is its usual
// statement inside a CTE that first locks the store's fence row FOR SHARE and writes only if the
// epoch is not below it; raiseFence locks the fence table EXCLUSIVE, which waits for every such
// write to commit, then raises the row, so when it returns, every fenced write that passed the
// old fence has committed and none can pass any more.
import type pg from "pg";
import { escapeLiteral, Pool } from "./pg-driver.js";
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { DecantError, deadlineExceeded, invalidArgument, isDecantError, unavailable } from "../protocol/errors.js";
import { keyAfter, pageOf, prefixEnd, type Segment } from "../protocol/paging.js";
import { conditionalWrite, normalizeCondition, notDeleted, refuseIfFenced, type Attempt } from "../protocol/semantics.js";
import type { Capabilities } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize } from "../protocol/types.js";
import { chunkBy, codeOf, Envelope, isNetworkError, lazy, option, parseOptions, redactUrl, retry, type Deadline } from "./kit.js";
import { CopyOutRows } from "./postgres-copy.js";
import { KitStore, type Driver } from "./store.js";

/** Versions are BIGINT (signed): the largest one PostgreSQL can hold. */
const MAX_VERSION = 2n ** 63n - 1n;
const MAX_VALUE_BYTES = 64 * 1024 * 1024;
/** applyIfNewer writes at most this much per statement, so each one stays well within timeout_ms. */
const APPLY_BATCH = { items: 1024, bytes: 8 * 1024 * 1024 };
/** Rows per DELETE in dropNamespace/purgeTombstones, so each statement stays within timeout_ms. */
const DELETE_CHUNK = 5000;
/** estimateCount counts exactly up to here, then asks the planner. */
const EXACT_COUNT_CAP = 250_000;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** The fence table, next to the items table in its schema (so `table` may not take this name). */
const FENCE_TABLE = "decant_fence";
/** pg's own connection options, handed to pg as they are. */
const PG_OPTIONS = ["application_name", "options", "client_encoding", "ssl", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslnegotiation", "host", "port"] as const;

interface Row {
  key: string;
  value: string | null; // base64: see COLUMNS
  version: string; // int8 arrives as text; BigInt() it, never Number()
}

/**
 * What the statement reads select (scanRaw reads through COPY instead). pg returns bytea as hex
 * text; base64 is a third shorter and Node decodes it faster (measured: 19% less CPU per
 * item). PostgreSQL's line breaks in it are skipped by Node's decoder.
 */
const COLUMNS = "key, encode(value, 'base64') AS value, version";

export interface PostgresOptions {
  /** The URL pg connects with (our options removed). */
  connectionString: string;
  description: string;
  schema: string;
  table: string;
  poolMax: number;
  timeoutMs: number;
  prepared: boolean;
}

/** Up to this size, a WrittenParam is written into one reused buffer. */
const SCRATCH_BYTES = 2 * 1024 * 1024;
let scratch = Buffer.alloc(0);

/**
 * A statement parameter written only when pg serializes it: pg calls toPostgres while it writes
 * the Bind message and copies the result into it at once (one synchronous step), so every such
 * parameter is written into one reused buffer instead of a new one each. A retried statement
 * writes it again.
 */
export class WrittenParam {
  constructor(
    private readonly bytes: number,
    private readonly write: (into: Buffer) => void,
  ) {}

  toPostgres(): Buffer {
    if (this.bytes > SCRATCH_BYTES) {
      const own = Buffer.allocUnsafeSlow(this.bytes);
      this.write(own);
      return own;
    }
    if (this.bytes > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_BYTES, Math.max(this.bytes, 2 * scratch.length)));
    const into = scratch.subarray(0, this.bytes);
    this.write(into);
    return into;
  }
}

const INT4 = 23;
const INT8 = 20;

/** A one-dimensional array without NULLs in PostgreSQL's binary format (array_recv): pg sends a Buffer parameter as binary. */
function binaryArray(length: number, elementType: number, elementBytes: number, writeElements: (into: Buffer, at: number) => void): WrittenParam {
  return new WrittenParam(20 + length * (4 + elementBytes), (into) => {
    let at = into.writeInt32BE(1, 0); // dimensions
    at = into.writeInt32BE(0, at); // no NULLs
    at = into.writeInt32BE(elementType, at);
    at = into.writeInt32BE(length, at);
    writeElements(into, into.writeInt32BE(1, at)); // lower bound
  });
}

/** Writes an int8, without BigInt arithmetic for the usual versions (below 2^53). */
function writeInt8(into: Buffer, value: bigint, at: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) return into.writeBigInt64BE(value, at);
  return into.writeUInt32BE(n >>> 0, into.writeUInt32BE(Math.floor(n / 2 ** 32), at));
}

/** Each row's key bytes and value bytes (-1: a tombstone), and their sum: what applyStatement writes. */
function statementBytes(rows: RawItem[]): [keyBytes: number[], valueBytes: number[], bytes: number] {
  const keyBytes = new Array<number>(rows.length);
  const valueBytes = new Array<number>(rows.length);
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    bytes += keyBytes[i] = Buffer.byteLength(r.key);
    bytes += Math.max(0, (valueBytes[i] = r.value === null ? -1 : r.value.length));
  }
  return [keyBytes, valueBytes, bytes];
}

/** What an applyIfNewer statement returns: rows written, and their keys only when that is not all. */
interface ApplyRow {
  n: number;
  keys: string[] | null;
}

const toRaw = (r: Row): RawItem => ({ key: r.key, value: r.value === null ? null : Buffer.from(r.value, "base64"), version: BigInt(r.version) });

/** What the postgres store can do (see Capabilities). */
const CAPABILITIES: Capabilities = {
  orderedScan: true,
  segmentedScan: true,
  maxValueBytes: () => MAX_VALUE_BYTES,
  durable: true,
  maxVersion: MAX_VERSION, // a signed 64-bit column
  fencing: true,
  applyBatch: APPLY_BATCH,
};

class PostgresDriver implements Driver {
  readonly kind = "postgres";
  readonly description: string;
  readonly capabilities = CAPABILITIES;
  /** Not atomic by contract; runBatch keeps per-key order and runs keys in parallel. */
  readonly batchConcurrency: number;
  private readonly t: string; // "schema"."table", quoted (names are validated, so quoting is safe)
  private readonly fenceTable: string;
  /** This store's row in the fence table: WHERE tbl = this. */
  private readonly fenceRow: string;
  private pool?: pg.Pool;
  private readonly calls: Envelope;
  /** Creates schema and table once per store, only if missing (so a DML-only role works). */
  private readonly schema = lazy(() => retry(() => this.createSchema(), (err) => isTransient(err) || isCreateRace(err)));
  /**
   * Creates the fence table and this store's row (at 0) once per store, before the first fenced
   * call. The row must exist before any fenced write: FOR SHARE locks a row, not its absence.
   */
  private readonly fence = lazy(() =>
    retry(
      async () => {
        if (!(await this.tableExists(this.fenceTable))) await this.createTable(this.fenceTable, `CREATE TABLE IF NOT EXISTS ${this.fenceTable} (tbl TEXT PRIMARY KEY, epoch BIGINT NOT NULL)`);
        await this.poolQuery(`INSERT INTO ${this.fenceTable} (tbl, epoch) VALUES ($1, 0) ON CONFLICT (tbl) DO NOTHING`, [this.options.table]);
      },
      (err) => isTransient(err) || isCreateRace(err),
    ),
  );
  /**
   * Each named statement's text, built once: pg compares a named statement's text with the one it
   * prepared on every call, and a text rebuilt per call is a new rope it must flatten first.
   */
  private readonly texts = new Map<string, string>();
  /** The fenced form of each write statement: its name and text, built once. */
  private readonly fencedTexts = new Map<string, { name: string; text: string }>();

  constructor(private readonly options: PostgresOptions) {
    this.description = options.description;
    this.batchConcurrency = Math.min(options.poolMax, 8);
    this.t = `"${options.schema}"."${options.table}"`;
    this.fenceTable = `"${options.schema}"."${FENCE_TABLE}"`;
    this.fenceRow = `tbl = ${escapeLiteral(options.table)}`;
    this.calls = new Envelope({ store: this.description, timeoutMs: options.timeoutMs, isTransient, mapError: (op, err) => this.mapError(op, err) });
  }

  // ---- connection, schema, errors -------------------------------------------------------

  private getPool(): pg.Pool {
    if (this.pool) return this.pool;
    const { connectionString, poolMax, timeoutMs } = this.options;
    const pool = new Pool({
      connectionString,
      max: poolMax,
      connectionTimeoutMillis: timeoutMs, // connect and wait for a free client
      // The server stops work nobody waits for any more, a little before the caller's deadline:
      // a write stuck behind a lock is then cancelled by the server rather than applied just
      // after the caller was told deadline_exceeded.
      statement_timeout: Math.max(1, timeoutMs - Math.min(100, Math.floor(timeoutMs / 10))),
      // No query_timeout: every query is sent through send(), which keeps the same backstop itself.
      idleTimeoutMillis: 30_000,
      application_name: "decant",
      allowExitOnIdle: true,
    });
    // An idle client whose server went away emits 'error'; the pool drops it. Without a
    // listener Node would crash the process; the next call reports the outage instead.
    pool.on("error", () => undefined);
    this.pool = pool;
    return pool;
  }

  private async createSchema(): Promise<void> {
    const { schema } = this.options;
    if (await this.tableExists(this.t)) return;
    const ns = await this.poolQuery("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    if (ns.rowCount === 0) await this.poolQuery(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await this.createTable(
      this.t,
      `
      CREATE TABLE IF NOT EXISTS ${this.t} (
        ns      TEXT COLLATE "C" NOT NULL,
        key     TEXT COLLATE "C" NOT NULL,
        value   BYTEA,            -- NULL = tombstone
        version BIGINT NOT NULL,
        PRIMARY KEY (ns, key)
      ) WITH (fillfactor = 90)`, // room for HOT updates: writes never change the key
    );
  }

  private async tableExists(table: string): Promise<boolean> {
    return (await this.poolQuery<{ found: boolean }>("SELECT to_regclass($1::text) IS NOT NULL AS found", [table])).rows[0]?.found === true;
  }

  /**
   * IF NOT EXISTS does not stop concurrent creators colliding in the catalog (23505, 42P07,
   * 42710 "type … already exists"): after such a collision, if the table is there now the
   * other creator won and we are done; if not yet, the caller retries.
   */
  private async createTable(table: string, ddl: string): Promise<void> {
    await this.poolQuery(ddl).catch(async (err) => {
      if (!(isCreateRace(err) && (await this.tableExists(table)))) throw err;
    });
  }

  /**
   * Runs one statement bounded by timeout_ms. `repeatable` statements (reads, applyIfNewer,
   * chunked deletes) are retried on transient failures; others only while getting a
   * connection, since a statement that was never sent cannot have been applied.
   */
  private q<R extends pg.QueryResultRow>(op: string, sql: string, params: unknown[], repeatable: boolean, name?: string, fenced = false, caller?: Caller): Promise<pg.QueryResult<R>> {
    const query = this.query(sql, params, name);
    return this.withClient(op, repeatable, (client) => this.send<R>(client, query), fenced, caller);
  }

  /** The text of the statement called `name`, built by `build` on its first use. */
  private text(name: string, build: () => string): string {
    let text = this.texts.get(name);
    if (text === undefined) this.texts.set(name, (text = build()));
    return text;
  }

  private query(sql: string, params: unknown[], name?: string): pg.QueryConfig {
    // A named statement is parsed and planned once per connection. For the multi-row
    // applyIfNewer that was a third of PostgreSQL's work (backfill 69k → 94k items/s).
    return { text: sql, values: params, name: this.options.prepared ? name : undefined };
  }

  /** The rows (key, value, version) of a read-only query, through COPY … TO STDOUT (FORMAT binary): see postgres-copy.ts. */
  private copyRows(op: string, sql: string, caller?: Caller): Promise<RawItem[]> {
    return this.withClient(
      op,
      true,
      (client) => sent<RawItem[]>(client, this.options.timeoutMs + READ_BACKSTOP_MS, (callback) => client.query(new CopyOutRows(sql, callback) as unknown as pg.Submittable)),
      false,
      caller,
    );
  }

  /**
   * A pooled client for `run`, in the call envelope. `fenced`: the call touches the fence table,
   * so make sure it exists first. `caller`: who it runs for (see Driver), if anyone.
   */
  private withClient<T>(op: string, repeatable: boolean, run: (client: pg.PoolClient) => Promise<T>, fenced = false, caller?: Caller): Promise<T> {
    return this.calls.run(
      op,
      async (deadline: Deadline) => {
        // Once made, the Lazies' awaits are skipped: a microtask each per call, on every request.
        if (!this.schema.done) await this.schema.get();
        if (fenced && !this.fence.done) await this.fence.get();
        const connect = () => this.getPool().connect();
        const client = await (repeatable ? connect() : this.calls.connect(deadline, connect, caller));
        try {
          // The caller already got deadline_exceeded, or has gone: a statement not yet sent must not run.
          deadline.check();
          throwIfCancelled(op, caller);
        } catch (err) {
          client.release();
          throw err;
        }
        return borrowed(client, run);
      },
      repeatable,
      caller,
    );
  }

  /** One statement on a pooled client outside the call envelope (schema and fence set-up). */
  private async poolQuery<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return borrowed(await this.getPool().connect(), (client) => this.send<R>(client, { text, values }));
  }

  /** A statement on `client`, with the read backstop (see sent). */
  private send<R extends pg.QueryResultRow>(client: pg.PoolClient, query: string | pg.QueryConfig): Promise<pg.QueryResult<R>> {
    return sent<pg.QueryResult<R>>(client, this.options.timeoutMs + READ_BACKSTOP_MS, (callback) => client.query<R>(query, callback));
  }

  private mapError(op: string, err: unknown): DecantError {
    if (isDecantError(err)) return err;
    const code = codeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    if ((code === "57014" && /statement timeout/.test(message)) || code === "55P03" || TIMEOUT_MESSAGES.some((m) => message.includes(m))) {
      return deadlineExceeded(this.description, op, this.options.timeoutMs);
    }
    // Bytes text cannot hold (NUL, bad UTF-8) or a key too long for the index: the caller's input.
    if (code === "22021" || code === "22P05" || code === "54000") return invalidArgument("key", `${this.kind} cannot store it: ${message}`);
    if (code === "22003") return invalidArgument("version", `is out of the range ${this.kind} stores: ${message}`);
    return unavailable(this.description, err);
  }

  // ---- client operations ----------------------------------------------------------------

  async readOne(ns: string, key: string, caller?: Caller): Promise<RawItem | null> {
    const sql = this.text("decant_get", () => `SELECT ${COLUMNS} FROM ${this.t} WHERE ns = $1 AND key = $2`);
    const { rows } = await this.q<Row>("get", sql, [ns, key], true, "decant_get", false, caller);
    return rows[0] ? toRaw(rows[0]) : null;
  }

  async readRaw(ns: string, keys: string[], caller?: Caller): Promise<RawItem[]> {
    const sql = this.text("decant_read_many", () => `SELECT ${COLUMNS} FROM ${this.t} WHERE ns = $1 AND key = ANY($2::text[])`);
    return (await this.q<Row>("batchGet", sql, [ns, keys], true, "decant_read_many", false, caller)).rows.map(toRaw);
  }

  async put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<bigint> {
    const cond = normalizeCondition(condition);
    // Fenced, the row to insert comes from a SELECT that yields nothing when the fence is above the epoch.
    const source = (guard?: string) => (guard === undefined ? "VALUES ($1, $2, $3, 1)" : `SELECT $1::text, $2::text, $3::bytea, 1 WHERE ${guard}`);
    const upsert = (guard?: string) => `INSERT INTO ${this.t} AS t (ns, key, value, version) ${source(guard)}
      ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = t.version + 1`;
    // Each statement checks its condition and writes atomically (the row is locked by the
    // upsert/update); the follow-up read only builds the error.
    const attempt = async (): Promise<Attempt<bigint>> => {
      let version: string | undefined;
      if (!cond) version = await this.write("put", fence, (g) => `${upsert(g)} RETURNING version`, [ns, key, value], "decant_put", caller);
      else if (cond.kind === "must_not_exist") version = await this.write("put", fence, (g) => `${upsert(g)} WHERE t.value IS NULL RETURNING version`, [ns, key, value], "decant_put_new", caller);
      else if (cond.version <= MAX_VERSION) {
        const sql = (g?: string) => `UPDATE ${this.t} SET value = $3, version = version + 1 WHERE ns = $1 AND key = $2 AND value IS NOT NULL AND version = $4${and(g)} RETURNING version`;
        version = await this.write("put", fence, sql, [ns, key, value, String(cond.version)], "decant_put_if", caller);
      } else await this.refuseIfFenced("put", fence, caller);
      return version === undefined ? { refused: undefined } : { done: BigInt(version) };
    };
    return conditionalWrite(key, cond, attempt, () => this.readOne(ns, key, caller));
  }

  async delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<DeleteResult> {
    const cond = normalizeCondition(condition);
    const attempt = async (): Promise<Attempt<DeleteResult>> => {
      // must_not_exist on a delete can only succeed when there is nothing to delete.
      if (cond?.kind === "must_not_exist" || (cond && cond.version > MAX_VERSION)) {
        await this.refuseIfFenced("delete", fence, caller);
        return { refused: undefined };
      }
      const check = cond ? " AND version = $3" : "";
      const sql = (g?: string) => `UPDATE ${this.t} SET value = NULL, version = version + 1 WHERE ns = $1 AND key = $2 AND value IS NOT NULL${check}${and(g)} RETURNING version`;
      const version = await this.write("delete", fence, sql, cond ? [ns, key, String(cond.version)] : [ns, key], cond ? "decant_delete_if" : "decant_delete", caller);
      return version === undefined ? { refused: undefined } : { done: { deleted: true, version: BigInt(version) } };
    };
    return conditionalWrite(key, cond, attempt, () => this.readOne(ns, key, caller), notDeleted);
  }

  /**
   * Runs a write statement built by `sql` (RETURNING version; no row = not written) and returns
   * the new version. Unfenced, `sql()` is the plain statement. Fenced, `sql(guard)` runs in a CTE
   * that locks the fence row FOR SHARE until commit, and writes only where the guard (the epoch
   * is not below the fence) holds; a write refused by the guard throws `fenced`.
   */
  private async write(op: string, epoch: number | undefined, sql: (guard?: string) => string, params: unknown[], name: string, caller?: Caller): Promise<string | undefined> {
    if (epoch === undefined) return (await this.q<{ version: string }>(op, this.text(name, sql), params, false, name, false, caller)).rows[0]?.version;
    // A name always has the same number of parameters, so its fenced text is built once.
    let fenced = this.fencedTexts.get(name);
    if (fenced === undefined) {
      const text = `WITH f AS (SELECT epoch FROM ${this.fenceTable} WHERE ${this.fenceRow} FOR SHARE),
        w AS (${sql(`NOT EXISTS (SELECT FROM f WHERE f.epoch > $${params.length + 1}::int8)`)})
      SELECT (SELECT version FROM w) AS version, (SELECT epoch FROM f) AS fence`;
      this.fencedTexts.set(name, (fenced = { name: `${name}_fenced`, text }));
    }
    const { rows } = await this.q<{ version: string | null; fence: string | null }>(op, fenced.text, [...params, String(epoch)], false, fenced.name, true, caller);
    const row = rows[0]!;
    if (row.version === null) refuseIfFenced(this.description, epoch, row.fence === null ? null : BigInt(row.fence));
    return row.version ?? undefined;
  }

  /** For a fenced write that needs no statement (its condition cannot hold): refused all the same if the fence is above it. */
  private async refuseIfFenced(op: string, epoch: number | undefined, caller?: Caller): Promise<void> {
    if (epoch === undefined) return;
    const { rows } = await this.q<{ epoch: string }>(op, `SELECT epoch FROM ${this.fenceTable} WHERE ${this.fenceRow}`, [], true, undefined, true, caller);
    refuseIfFenced(this.description, epoch, rows[0] ? BigInt(rows[0].epoch) : null);
  }

  async raiseFence(epoch: number): Promise<number> {
    const upsert = `INSERT INTO ${this.fenceTable} AS f (tbl, epoch) VALUES ($1, $2::int8)
      ON CONFLICT (tbl) DO UPDATE SET epoch = GREATEST(f.epoch, excluded.epoch) RETURNING epoch`;
    // Safe to repeat. The table lock waits for every fenced write in progress (FOR SHARE holds
    // ROW SHARE on the table until commit) and, while waiting, queues new ones behind it. The
    // row update alone would not: PostgreSQL grants new FOR SHARE lockers past a waiting
    // updater, so under steady fenced writes it could wait until its timeout.
    const fence = await this.withClient(
      "raiseFence",
      true,
      async (client) => {
        await this.send(client, "BEGIN");
        await this.send(client, `LOCK TABLE ${this.fenceTable} IN EXCLUSIVE MODE`);
        const { rows } = await this.send<{ epoch: string }>(client, { text: upsert, values: [this.options.table, String(epoch)] });
        await this.send(client, "COMMIT");
        return rows[0]!.epoch;
      },
      true,
    );
    return Number(fence);
  }

  async scan(ns: string, options: ScanOptions, caller?: Caller): Promise<ScanPage<Item>> {
    const prefix = options.prefix ?? "";
    const end = prefixEnd(prefix);
    const limit = Math.max(1, options.limit);
    const params: unknown[] = [ns, keyAfter(options.cursor), prefix, limit + 1];
    if (end !== null) params.push(end);
    const sql = `SELECT ${COLUMNS} FROM ${this.t}
      WHERE ns = $1 AND key > $2 AND key >= $3${end !== null ? " AND key < $5" : ""} AND value IS NOT NULL
      ORDER BY key LIMIT $4`;
    const { rows } = await this.q<Row>("scan", sql, params, true, end !== null ? "decant_scan_prefix" : "decant_scan", false, caller);
    return pageOf(rows.map(toRaw) as Item[], limit);
  }

  // ---- replication operations -----------------------------------------------------------

  async applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]> {
    // ON CONFLICT cannot touch a row twice in one statement: keep the highest version per key
    // (the others would lose to it anyway). Sorting by key makes concurrent batches lock rows
    // in the same order, so they cannot deadlock.
    // A backfill's page comes sorted and unique already: then it is used as it is.
    let sorted = true;
    for (let i = 1; i < items.length && sorted; i++) sorted = items[i - 1]!.key < items[i]!.key;
    const winner = new Map<string, number>();
    if (!sorted) {
      items.forEach((item, i) => {
        const w = winner.get(item.key);
        if (w === undefined || item.version > items[w]!.version) winner.set(item.key, i);
      });
    }
    const chosen = sorted ? items : [...winner.values()].map((i) => items[i]!).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    // One statement when the batch fits (a backfill's page is sized to): no chunk copies and each
    // key measured once, so a page makes no per-item garbage beyond its result.
    const whole = chosen.length <= APPLY_BATCH.items ? statementBytes(chosen) : undefined;
    const chunks = whole && whole[2] <= APPLY_BATCH.bytes ? [chosen] : chunkBy(chosen, (i) => (i.value?.length ?? 0) + Buffer.byteLength(i.key), APPLY_BATCH.items, APPLY_BATCH.bytes);
    const results = await this.runApply(
      chunks.map((chunk) => this.applyStatement(ns, chunk, ...(chunk === chosen ? whole! : statementBytes(chunk)))),
      fence,
    );
    // Each statement says how many rows it wrote and, only when that is not all, which keys.
    const skipped = new Set<string>();
    results.forEach(({ rows: [row] }, c) => {
      if (row?.keys == null) return;
      const written = new Set(row.keys);
      for (const item of chunks[c]!) if (!written.has(item.key)) skipped.add(item.key);
    });
    return items.map((item, i) => (sorted || winner.get(item.key) === i) && !skipped.has(item.key));
  }

  /**
   * One applyIfNewer statement for `rows`: every key and value in ONE bytea parameter, cut by
   * offsets and lengths, which go with the versions as binary int4[]/int8[] parameters. pg copies
   * each parameter into its Bind message by growing a buffer 1.5x from 256 B, so the
   * many-parameter VALUES form made ~4x its size in Buffer garbage per statement (most of a
   * backfill's garbage, which sets its peak RSS); a few large parameters are copied once.
   */
  private applyStatement(ns: string, rows: RawItem[], keyBytes: number[], valueBytes: number[], bytes: number): pg.QueryConfig {
    // Indexed loops throughout: for…of in code V8 has not optimized yet makes an object per row.
    // Each writer starts from scratch: a retried statement is serialized again.
    const data = new WrittenParam(bytes, (into) => {
      let at = 0;
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        at += into.write(r.key, at, keyBytes[i]!, "utf8");
        if (r.value !== null) at += r.value.copy(into, at);
      }
    });
    const offsets = binaryArray(rows.length, INT4, 4, (into, at) => {
      let offset = 1; // substring counts from 1
      for (let i = 0; i < rows.length; i++) {
        at = into.writeInt32BE(offset, into.writeInt32BE(4, at));
        offset += keyBytes[i]! + Math.max(0, valueBytes[i]!);
      }
    });
    const ints = (values: number[]) =>
      binaryArray(values.length, INT4, 4, (into, at) => {
        for (let i = 0; i < values.length; i++) at = into.writeInt32BE(values[i]!, into.writeInt32BE(4, at));
      });
    const versions = binaryArray(rows.length, INT8, 8, (into, at) => {
      for (let i = 0; i < rows.length; i++) at = writeInt8(into, rows[i]!.version, into.writeInt32BE(8, at));
    });
    // The large parameter last: pg's Bind writer grows its buffer by 1.5x plus what it adds, so
    // with the bytes first the next small array regrew (and copied) the whole message: 2.5x its
    // size in Buffer garbage per statement, now ~1.1x.
    return this.query(this.applySql(), [ns, offsets, ints(keyBytes), ints(valueBytes), versions, data], "decant_apply");
  }

  /**
   * Runs applyIfNewer's statements, one after another. Safe to repeat: a row written by a lost
   * attempt has the same version and is skipped. Fenced, they run in one transaction that first
   * locks the fence row FOR SHARE: the whole call is applied under the fence, or refused.
   */
  private async runApply(statements: pg.QueryConfig[], epoch: number | undefined): Promise<pg.QueryResult<ApplyRow>[]> {
    const results: pg.QueryResult<ApplyRow>[] = [];
    if (epoch === undefined) {
      for (const statement of statements) results.push(await this.withClient("applyIfNewer", true, (client) => this.send<ApplyRow>(client, statement)));
      return results;
    }
    const refusedBy = await this.withClient(
      "applyIfNewer",
      true,
      async (client) => {
        results.length = 0; // a retried attempt starts over
        await this.send(client, "BEGIN");
        const { rows } = await this.send<{ epoch: string }>(client, `SELECT epoch FROM ${this.fenceTable} WHERE ${this.fenceRow} FOR SHARE`);
        const fence = rows[0] ? BigInt(rows[0].epoch) : 0n;
        if (fence > BigInt(epoch)) {
          await this.send(client, "ROLLBACK");
          return fence;
        }
        for (const statement of statements) results.push(await this.send<ApplyRow>(client, statement));
        await this.send(client, "COMMIT");
        return undefined;
      },
      true,
    );
    refuseIfFenced(this.description, epoch, refusedBy ?? null);
    return results;
  }

  /** The applyIfNewer statement (see applyStatement), built once. */
  private applySql(): string {
    return this.text("decant_apply", () => `WITH w AS (
        INSERT INTO ${this.t} AS t (ns, key, value, version)
        SELECT $1, convert_from(substring($6::bytea FROM u.o FOR u.kl), 'UTF8'), CASE WHEN u.vl < 0 THEN NULL ELSE substring($6::bytea FROM u.o + u.kl FOR u.vl) END, u.v
        FROM unnest($2::int4[], $3::int4[], $4::int4[], $5::int8[]) AS u(o, kl, vl, v)
        ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version
        WHERE t.version < excluded.version
        RETURNING t.key)
      SELECT count(*)::int4 AS n, CASE WHEN count(*) < cardinality($2::int4[]) THEN coalesce(array_agg(key), '{}') END AS keys FROM w`);
  }

  /**
   * Segments are hash buckets of the key: stable whatever is written meanwhile, disjoint and
   * covering, with no need to know the key distribution. Each segment still pages by key on
   * the primary key (and skips the other buckets' rows), so a cursor is just the last key.
   */
  async scanRaw(ns: string, options: RawScanOptions, segment: Segment, caller?: Caller): Promise<ScanPage<RawItem>> {
    const after = keyAfter(options.cursor, segment);
    const limit = Math.max(1, options.limit);
    // scanRaw carries the backfill and the verifier, so it reads through binary COPY: values
    // arrive as bytes, not as hex or base64 text that becomes a string on the JS heap and then
    // a Buffer. Measured on 200k × 1 KiB: half the CPU, a tenth of the GC. COPY takes no
    // parameters, so the values are quoted literals (ns and key are text; the rest are checked
    // integers).
    const bucket = segment.total > 1 ? ` AND (hashtext(key) & 2147483647) % ${segment.total} = ${segment.segment}` : "";
    const value = options.keysOnly ? "NULL::bytea" : "value";
    const sql = `SELECT key, ${value}, version FROM ${this.t} WHERE ns = ${escapeLiteral(ns)} AND key > ${escapeLiteral(after)}${bucket} ORDER BY key LIMIT ${limit + 1}`;
    return pageOf(await this.copyRows("scanRaw", sql, caller), limit, segment);
  }

  async largeValues(ns: string, options: LargeValueOptions, caller?: Caller): Promise<ScanPage<ValueSize>> {
    // octet_length of a stored (even TOASTed) bytea comes from its header: the values stay put.
    const sql = `SELECT key, octet_length(value) AS bytes FROM ${this.t}
      WHERE ns = $1 AND key > $2 AND value IS NOT NULL AND octet_length(value) > $3 ORDER BY key LIMIT $4`;
    const { rows } = await this.q<ValueSize>("largeValues", sql, [ns, keyAfter(options.cursor), options.minBytes, options.limit + 1], true, "decant_large_values", false, caller);
    return pageOf(rows, options.limit);
  }

  async namespaces(caller?: Caller): Promise<string[]> {
    // A loose index scan: one primary-key probe per namespace instead of reading every row.
    const sql = `WITH RECURSIVE n AS (
        (SELECT ns FROM ${this.t} ORDER BY ns LIMIT 1)
        UNION ALL
        SELECT (SELECT t.ns FROM ${this.t} t WHERE t.ns > n.ns ORDER BY t.ns LIMIT 1) FROM n WHERE n.ns IS NOT NULL
      ) SELECT ns FROM n WHERE ns IS NOT NULL`;
    return (await this.q<{ ns: string }>("namespaces", sql, [], true, undefined, false, caller)).rows.map((r) => r.ns);
  }

  async estimateCount(ns: string, caller?: Caller): Promise<number> {
    const sql = `SELECT count(*) AS n FROM (SELECT 1 FROM ${this.t} WHERE ns = $1 LIMIT ${EXACT_COUNT_CAP + 1}) s`;
    const exact = Number((await this.q<{ n: string }>("estimateCount", sql, [ns], true, undefined, false, caller)).rows[0]!.n);
    if (exact <= EXACT_COUNT_CAP) return exact;
    // Large: the planner's estimate (statistics, no scan) is good enough for progress.
    const { rows } = await this.q<{ "QUERY PLAN": [{ Plan: { "Plan Rows": number } }] }>(
      "estimateCount",
      `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${this.t} WHERE ns = $1`,
      [ns],
      true,
      undefined,
      false,
      caller,
    );
    return Math.max(exact, Math.round(rows[0]?.["QUERY PLAN"][0].Plan["Plan Rows"] ?? 0));
  }

  async dropNamespace(ns: string): Promise<void> {
    await this.deleteInChunks("dropNamespace", ns, false);
  }

  async purgeTombstones(ns: string): Promise<number> {
    return this.deleteInChunks("purgeTombstones", ns, true);
  }

  /** Deletes in key-ordered windows, so each statement is short and a huge namespace never times out. */
  private async deleteInChunks(op: string, ns: string, tombstonesOnly: boolean): Promise<number> {
    const onlyTomb = tombstonesOnly ? " AND t.value IS NULL" : ""; // re-checked on the locked row
    const sql = `WITH win AS (SELECT key FROM ${this.t} WHERE ns = $1 AND key > $2 ORDER BY key LIMIT ${DELETE_CHUNK}),
        del AS (DELETE FROM ${this.t} t USING win WHERE t.ns = $1 AND t.key = win.key${onlyTomb} RETURNING 1)
      SELECT (SELECT max(key) FROM win) AS last, (SELECT count(*) FROM del) AS n`;
    let after = "";
    let removed = 0;
    for (;;) {
      const row = (await this.q<{ last: string | null; n: string }>(op, sql, [ns, after], true)).rows[0]!;
      removed += Number(row.n);
      if (row.last === null) return removed;
      after = row.last;
    }
  }

  /** Ends the pool; a later call opens a new one (and checks the schema again). */
  async close(): Promise<void> {
    this.schema.reset();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}

export class PostgresStore extends KitStore<PostgresDriver> {}

// ---- helpers ------------------------------------------------------------------------------

/** The fenced form's extra condition in a WHERE clause (nothing when unfenced). */
const and = (guard: string | undefined): string => (guard === undefined ? "" : ` AND ${guard}`);

/**
 * `fn` on a pooled client, which goes back to the pool after it, or is dropped if it failed.
 * pg-pool drops its idle 'error' listener on checkout: without one of ours, a connection dying
 * mid-query is an uncaught 'error' event that kills the process. The query itself still rejects,
 * which is where the failure is reported.
 */
async function borrowed<T>(client: pg.PoolClient, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const onError = () => undefined;
  client.on("error", onError);
  try {
    const result = await fn(client);
    client.removeListener("error", onError);
    client.release();
    return result;
  } catch (err) {
    client.removeListener("error", onError);
    client.release(err as Error); // never reuse a connection in an unknown state
    throw err;
  }
}

/** How long past timeout_ms a statement may go unanswered before its connection is given up (the backstop if the server does not answer at all). */
const READ_BACKSTOP_MS = 1000;

/**
 * Runs one query in pg's callback form (`submit` hands `callback` to client.query), failing it
 * with pg's "Query read timeout" and dropping its connection if nothing answers within `ms`.
 *
 * Not pg's promise form nor its query_timeout: each assigns a function literal to the query's
 * `callback` property (the promise's settler; query_timeout's wrapper that clears its timer),
 * and V8 allocates a function literal assigned to a property in the old generation, as it would
 * a method. Dead once its query is answered, that closure stays until the next mark-compact, and
 * every scavenge meanwhile treats it as a root: through its context it kept the query alive (a
 * COPY's parsed page with its socket chunks, an applyIfNewer statement's items through its
 * parameters), so nearly every backfilled item was promoted (~1 MB per scavenge) and its page's
 * Buffers stayed in glibc's heap until a mark-compact: the backfill's peak RSS.
 */
function sent<T>(client: pg.ClientBase, ms: number, submit: (callback: (err: Error | null | undefined, result?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(giveUp, ms, client);
    submit((err, result) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(result as T);
    });
  });
}

/** The backstop fired: the connection fails (pg fails its query with this error), and the caller drops it. */
function giveUp(client: pg.ClientBase): void {
  (client as unknown as { connection: { stream: { destroy(err: Error): void } } }).connection.stream.destroy(new Error("Query read timeout"));
}

const TIMEOUT_MESSAGES = ["Query read timeout", "timeout exceeded when trying to connect", "Connection terminated due to connection timeout"];
const CONNECTION_MESSAGES = ["Connection terminated", "connection error", "not queryable", "Client was closed"];
/** Server going away (57P01-3), too many connections (53300), connection class 08, serialization/deadlock. */
const TRANSIENT_CODES = new Set(["57P01", "57P02", "57P03", "53300", "40001", "40P01"]);

/** Failures that may pass on their own: worth a retry where the statement is safe to repeat. */
function isTransient(err: unknown): boolean {
  if (isDecantError(err)) return false;
  const code = codeOf(err);
  if (code !== undefined && (TRANSIENT_CODES.has(code) || code.startsWith("08"))) return true;
  if (isNetworkError(err)) return true;
  const message = err instanceof Error ? err.message : "";
  return !TIMEOUT_MESSAGES.some((m) => message.includes(m)) && CONNECTION_MESSAGES.some((m) => message.includes(m));
}

/** Catalog collisions of concurrent CREATE … IF NOT EXISTS (unique violation, duplicate table/schema/object). */
const isCreateRace = (err: unknown): boolean => ["23505", "42P07", "42P06", "42710"].includes(codeOf(err) ?? "");

/** postgres://user:pw@host:5432/db?table=…&schema=…&pool_max=…&timeout_ms=… (see the top of this file). Does not connect. */
export function createPostgresStore(url: URL, raw: string): PostgresStore {
  const o = parseOptions("postgres", url, {
    table: option.text("decant_items", IDENTIFIER),
    schema: option.text("public", IDENTIFIER),
    pool_max: option.int(10, 1, 1000),
    timeout_ms: option.int(5000, 1, 600_000),
    prepared: option.bool(true),
    ...Object.fromEntries(PG_OPTIONS.map((name) => [name, option.passed()])),
  });
  if (o.table === FENCE_TABLE) throw invalidArgument("store", `postgres option table=${FENCE_TABLE} is reserved for the write fence; choose another name`);
  const forPg = new URL(url.href);
  for (const name of [...forPg.searchParams.keys()]) if (!(PG_OPTIONS as readonly string[]).includes(name)) forPg.searchParams.delete(name);
  return new PostgresStore(
    new PostgresDriver({ connectionString: forPg.href, description: redactUrl(raw), table: o.table, schema: o.schema, poolMax: o.pool_max, timeoutMs: o.timeout_ms, prepared: o.prepared }),
  );
}
