// MySQL / MariaDB through a mysql2 pool.
//
// URL: mysql://user:pw@host:3306/db (or mariadb://…), options in the query string:
//   table=decant_items        the table that holds every namespace ([A-Za-z_][A-Za-z0-9_]{0,63})
//   pool_max=10               most connections in the pool (1–1000)
//   timeout_ms=5000           bound on every call: connecting, each query, the whole operation
//   max_value_bytes=4194304   largest value accepted; the server's max_allowed_packet must hold
//                             about twice that (values travel hex-encoded in the SQL text)
//   ssl=true                  TLS with certificate verification (default false)
//
// Schema: one InnoDB table, created on first use:
//   ns VARBINARY(63), k VARBINARY(1024), value LONGBLOB NULL (NULL = tombstone),
//   version BIGINT UNSIGNED, PRIMARY KEY (ns, k).
// Binary columns make ORDER BY k the UTF-8 byte order with no collation surprises
// (utf8mb4_bin is PAD SPACE, so "a" and "a " would be the same key), and keep the primary key
// at 1087 bytes, inside InnoDB's 3072-byte limit (VARCHAR(1024) utf8mb4 would need 4096).
//
// Writes: an unconditional Put is one upsert in its transaction (see upsertOne). Every other
// write is one transaction per call that locks its keys with SELECT … FOR UPDATE in key order,
// decides with the shared condition rules (common.ts), then writes the final state of every
// changed key with one multi-row INSERT … ON DUPLICATE KEY UPDATE. Deadlocks (gap locks on
// absent keys) roll the transaction back and it is retried whole.
//
// Write fence (raiseFence): one row per store in `decant_fence` (tbl = the items table's name),
// created on the first fenced call. A fenced write's transaction first reads that row LOCK IN
// SHARE MODE (before any key lock, so no lock cycle) and stops if the fence is above its epoch;
// raiseFence raises the row under LOCK TABLES … WRITE, which waits for every fenced transaction
// to end (each holds the table's metadata lock until then) and holds new ones back meanwhile.
import mysql from "mysql2/promise";
import type { Pool, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { settleSync } from "../protocol/batch.js";
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { DecantError, deadlineExceeded, describe, invalidArgument, isDecantError, unavailable } from "../protocol/errors.js";
import { keyAfter, pageOf, prefixEnd, type Segment } from "../protocol/paging.js";
import { planWrite, refuseIfFenced } from "../protocol/semantics.js";
import type { Capabilities } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import { compareKeys } from "../protocol/types.js";
import { chunkBy, codeOf, Envelope, isNetworkError, lazy, option, parseOptions, redactUrl, type Deadline, type RetryPolicy } from "./kit.js";
import { KitStore, type Driver } from "./store.js";

export interface MysqlOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  table: string;
  poolMax: number;
  timeoutMs: number;
  maxValueBytes: number;
  ssl: boolean;
}

interface ItemRow extends RowDataPacket {
  k: Buffer;
  value: Buffer | null;
  version: string; // bigNumberStrings: BIGINT UNSIGNED arrives as a decimal string
}

interface LockRow extends RowDataPacket {
  k: Buffer;
  version: string;
  tomb: number;
}

type Query = <T extends RowDataPacket[] | ResultSetHeader>(sql: string, values?: unknown[]) => Promise<T>;

// Deadlocks are normal under InnoDB gap locks when writers race on absent keys; a few
// quick retries settle them. The outer timeout bounds the total.
const RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 10, maxDelayMs: 250 };
/** Server errors after which InnoDB has rolled the statement/transaction back: safe to run again. */
const ROLLED_BACK = new Set(["ER_LOCK_DEADLOCK", "ER_LOCK_WAIT_TIMEOUT"]);
const CONNECTION_CODES = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR",
  "ER_CON_COUNT_ERROR",
  "ER_TOO_MANY_USER_CONNECTIONS",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
]);
/** Fatal at connect time, but retrying cannot help: the configuration is wrong. */
const CONFIG_CODES = new Set(["ER_ACCESS_DENIED_ERROR", "ER_ACCESS_DENIED_NO_PASSWORD_ERROR", "ER_DBACCESS_DENIED_ERROR", "ER_BAD_DB_ERROR", "ER_NOT_SUPPORTED_AUTH_MODE", "HANDSHAKE_NO_SSL_SUPPORT"]);
const QUERY_TIMEOUT = "PROTOCOL_SEQUENCE_TIMEOUT";
/** Marks an error raised while COMMIT was in flight: the write may or may not have happened. */
const AMBIGUOUS = Symbol("decant.mysql.ambiguous");
/** Marks an error after which the connection's state is unknown: destroy it rather than reuse it. */
const BROKEN = Symbol("decant.mysql.broken");
/** Most rows per statement; statements are also split to stay under max_allowed_packet. */
const MAX_ROWS = 500;
/** Rows per DELETE in dropNamespace / purgeTombstones, so each statement stays short. */
const DELETE_CHUNK = 5000;
/** The fence table, in the store's database (so `table` may not take this name). */
const FENCE_TABLE = "decant_fence";

function isConnectionError(err: unknown): boolean {
  const code = codeOf(err);
  if (code === QUERY_TIMEOUT || (code !== undefined && CONFIG_CODES.has(code))) return false;
  return isNetworkError(err) || (code !== undefined && CONNECTION_CODES.has(code)) || (err as { fatal?: unknown })?.fatal === true;
}

const keyBytes = (key: string): Buffer => Buffer.from(key, "utf8");

/** Splits rows into statements that stay under `budget` bytes of SQL text and MAX_ROWS rows. */
const chunk = <T>(xs: T[], size: (x: T) => number, budget: number): T[][] => chunkBy(xs, size, MAX_ROWS, budget);

/** SQL text a key or value takes: hex doubles it, plus quoting and separators. */
const hexSize = (b: Buffer | string | null): number => (b === null ? 4 : hexBytes(typeof b === "string" ? Buffer.byteLength(b) : b.length));
const hexBytes = (n: number): number => 2 * n + 8;

function mark(err: unknown, flag: symbol): void {
  if (typeof err === "object" && err !== null) (err as Record<symbol, boolean>)[flag] = true;
}
const marked = (err: unknown, flag: symbol): boolean => typeof err === "object" && err !== null && (err as Record<symbol, boolean>)[flag] === true;
/** After these the connection may still be mid-command or dead: never hand it back to the pool. */
const breaksConnection = (err: unknown): boolean => isConnectionError(err) || codeOf(err) === QUERY_TIMEOUT || marked(err, BROKEN);

class MysqlDriver implements Driver {
  readonly kind = "mysql";
  readonly description: string;
  readonly capabilities: Capabilities;
  private pool?: Pool;
  /** Creates the pool and the table on first use; a failure is retried by the next call. */
  private readonly readying = lazy(() => this.init());
  /**
   * Creates the fence table and this store's row (at 0) once, before the first fenced call, so
   * that a fenced write always finds a row to lock.
   */
  private readonly fenceReady = lazy(() =>
    this.withConnection(async (q) => {
      await q(`CREATE TABLE IF NOT EXISTS \`${FENCE_TABLE}\` (tbl VARBINARY(64) NOT NULL PRIMARY KEY, epoch BIGINT UNSIGNED NOT NULL) ENGINE=InnoDB`);
      await q(`INSERT IGNORE INTO \`${FENCE_TABLE}\` (tbl, epoch) VALUES (?, 0)`, [this.options.table]);
    }),
  );
  private readonly calls: Envelope;
  /** Bytes of SQL text one statement may use, from the server's max_allowed_packet. */
  private budget = 1024 * 1024;
  private readonly t: string;

  constructor(
    private readonly options: MysqlOptions,
    raw: string,
  ) {
    this.description = redactUrl(raw);
    this.t = `\`${options.table}\``;
    this.capabilities = {
      orderedScan: true, // VARBINARY keys compare byte by byte = UTF-8 byte order
      segmentedScan: true, // CRC32(k) % totalSegments = segment
      maxValueBytes: () => options.maxValueBytes,
      durable: true,
      fencing: true,
      applyBatch: { items: MAX_ROWS, bytes: 4 * 1024 * 1024 }, // one transaction per call: its locks are held until it ends
    };
    this.calls = new Envelope({ store: this.description, timeoutMs: options.timeoutMs, isTransient: (err) => this.isTransient(err), mapError: (op, err) => this.toStoreError(op, err), retry: RETRY });
  }

  // ---- connection, schema, calls ------------------------------------------------------------

  private createPool(): Pool {
    const o = this.options;
    const pool = mysql.createPool({
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      database: o.database,
      connectionLimit: o.poolMax,
      maxIdle: o.poolMax,
      waitForConnections: true,
      queueLimit: 0,
      connectTimeout: o.timeoutMs,
      enableKeepAlive: true,
      charset: "utf8mb4",
      supportBigNumbers: true,
      bigNumberStrings: true,
      // Without FOUND_ROWS a no-op upsert reports affectedRows 1, like a real update.
      flags: ["-FOUND_ROWS"],
      // The promise API captured a stack trace per query for its errors (~5 % of the sidecar's
      // CPU under MySQL Puts); Decant reports its own errors, so it does not need them.
      trace: false,
      ssl: o.ssl ? {} : undefined,
    });
    // A lock wait must not outlive the caller's timeout (the server default is 50 s, and a
    // waiting transaction keeps its other locks all that time).
    const lockWait = Math.max(1, Math.ceil(o.timeoutMs / 1000));
    pool.on("connection", (conn) => {
      // The event hands over the callback-style connection; the SET is queued before any query.
      (conn as unknown as { query(sql: string, cb: (err: unknown) => void): unknown }).query(`SET SESSION innodb_lock_wait_timeout = ${lockWait}`, () => undefined);
    });
    return pool;
  }

  private async init(): Promise<void> {
    this.pool ??= this.createPool();
    await this.withConnection(async (q) => {
      await q(
        `CREATE TABLE IF NOT EXISTS ${this.t} (
          ns      VARBINARY(63)   NOT NULL,
          k       VARBINARY(1024) NOT NULL,
          value   LONGBLOB        NULL,
          version BIGINT UNSIGNED NOT NULL,
          PRIMARY KEY (ns, k)
        ) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
      );
      const [row] = await q<RowDataPacket[]>("SELECT @@max_allowed_packet AS p");
      const packet = Number(row!.p);
      this.budget = packet - 64 * 1024;
      const biggestRow = hexBytes(this.options.maxValueBytes) + hexBytes(1024) + hexBytes(63) + 64;
      if (biggestRow > this.budget) {
        throw new DecantError(
          "unavailable",
          `store ${this.description}: max_value_bytes=${this.options.maxValueBytes} needs max_allowed_packet of at least ${biggestRow + 64 * 1024} bytes on the server (it is ${packet}); lower max_value_bytes or raise max_allowed_packet`,
        );
      }
    });
  }

  /**
   * Runs one operation: bounded by timeout_ms as a whole, retried on transient errors that
   * left nothing half-done (see isTransient), and every failure turned into a DecantError.
   * `caller`: who it runs for (see Driver), if anyone.
   */
  private call<T>(op: string, work: (deadline: Deadline) => Promise<T>, caller?: Caller): Promise<T> {
    return this.calls.run(
      op,
      // Once made, the Lazy's await is skipped: a microtask per call on every request.
      async (deadline) => {
        if (!this.readying.done) await this.readying.get();
        return work(deadline);
      },
      true,
      caller,
    );
  }

  private isTransient(err: unknown): boolean {
    if (isDecantError(err)) return false;
    if (codeOf(err) === "ER_NO_SUCH_TABLE") {
      this.readying.reset(); // someone dropped the table: create it again
      this.fenceReady.reset();
      return true;
    }
    if (ROLLED_BACK.has(codeOf(err) ?? "")) return true;
    // A lost connection rolls back an open transaction, so it is safe to repeat unless it
    // happened during COMMIT, when the write may already be durable.
    return isConnectionError(err) && !marked(err, AMBIGUOUS);
  }

  private toStoreError(op: string, err: unknown): DecantError {
    if (isDecantError(err)) return err;
    if (codeOf(err) === QUERY_TIMEOUT) return deadlineExceeded(this.description, op, this.options.timeoutMs);
    // The server validates keys first; this only catches a key the column cannot hold.
    if (codeOf(err) === "ER_DATA_TOO_LONG") return invalidArgument("key", `is longer than the mysql store holds (1024 bytes): ${describe(err)}`);
    // The next version of a key already at 2^64 - 1 (what PostgreSQL reports as bigint out of range).
    if (codeOf(err) === "ER_DATA_OUT_OF_RANGE" || codeOf(err) === "ER_WARN_DATA_OUT_OF_RANGE") return invalidArgument("version", `is out of the range the mysql store holds (up to 2^64 - 1): ${describe(err)}`);
    if (marked(err, AMBIGUOUS)) {
      return new DecantError("unavailable", `store ${this.description} failed while committing ${op}; the write may or may not have been applied: ${describe(err)}`, { cause: err });
    }
    return unavailable(this.description, err);
  }

  /** Lends a pooled connection; one that failed at the connection level or timed out is destroyed, not reused. */
  private async withConnection<T>(fn: (q: Query) => Promise<T>, caller?: Caller): Promise<T> {
    const conn = await this.pool!.getConnection();
    try {
      throwIfCancelled("mysql", caller); // nothing sent yet: a caller who has gone stops here
    } catch (err) {
      conn.release();
      throw err;
    }
    const q: Query = async <R extends RowDataPacket[] | ResultSetHeader>(sql: string, values: unknown[] = []) =>
      (await conn.query<R>({ sql, values, timeout: this.options.timeoutMs }))[0];
    try {
      const result = await fn(q);
      conn.release();
      return result;
    } catch (err) {
      if (breaksConnection(err)) conn.destroy();
      else conn.release();
      throw err;
    }
  }

  /** One transaction; rolled back on any error, and never committed once the caller gave up. */
  private tx<T>(deadline: Deadline, fn: (q: Query) => Promise<T>, caller?: Caller): Promise<T> {
    return this.withConnection(async (q) => {
      await q("START TRANSACTION");
      try {
        const result = await fn(q);
        deadline.check(); // the caller gave up: roll back rather than commit late
        try {
          await q("COMMIT");
        } catch (err) {
          if (breaksConnection(err)) mark(err, AMBIGUOUS);
          throw err;
        }
        return result;
      } catch (err) {
        // A broken connection is destroyed, which makes the server roll back; otherwise roll back here.
        if (!breaksConnection(err)) await q("ROLLBACK").catch(() => mark(err, BROKEN));
        throw err;
      }
    }, caller);
  }

  /**
   * A fenced transaction's first statement: share-locks the fence row until COMMIT (raiseFence
   * waits for it) and refuses the write if the fence is above its epoch. Unfenced: nothing.
   */
  private async lockFence(q: Query, epoch: number | undefined): Promise<void> {
    if (epoch === undefined) return;
    const [row] = await q<RowDataPacket[]>(`SELECT epoch FROM \`${FENCE_TABLE}\` WHERE tbl = ? LOCK IN SHARE MODE`, [this.options.table]);
    refuseIfFenced(this.description, epoch, row ? BigInt(row.epoch as string) : null);
  }

  /** A write transaction, preceded by lockFence where the write is fenced. */
  private fencedTx<T>(op: string, epoch: number | undefined, fn: (q: Query) => Promise<T>, caller?: Caller): Promise<T> {
    return this.call(
      op,
      async (deadline) => {
        if (epoch !== undefined && !this.fenceReady.done) await this.fenceReady.get();
        return this.tx(
          deadline,
          async (q) => {
            await this.lockFence(q, epoch);
            return fn(q);
          },
          caller,
        );
      },
      caller,
    );
  }

  async raiseFence(epoch: number): Promise<number> {
    const lockWait = Math.max(1, Math.ceil(this.options.timeoutMs / 1000));
    return this.call("raiseFence", async () => {
      await this.fenceReady.get();
      return this.withConnection(async (q) => {
        // A table lock, not the row's: InnoDB grants a new share lock past an update waiting for
        // the row, so under steady fenced writes that update could wait until its timeout.
        // LOCK TABLES … WRITE waits for the metadata lock each fenced transaction holds on the
        // table until it ends, and new ones queue behind it while it waits (bounded here).
        await q(`SET SESSION lock_wait_timeout = ${lockWait}`);
        await q(`LOCK TABLES \`${FENCE_TABLE}\` WRITE`);
        let fence: number;
        try {
          await q(`INSERT INTO \`${FENCE_TABLE}\` (tbl, epoch) VALUES (?, ?) ON DUPLICATE KEY UPDATE epoch = GREATEST(epoch, VALUES(epoch))`, [this.options.table, epoch]);
          const [row] = await q<RowDataPacket[]>(`SELECT epoch FROM \`${FENCE_TABLE}\` WHERE tbl = ?`, [this.options.table]);
          fence = Number(row!.epoch);
        } catch (err) {
          mark(err, BROKEN); // it may still hold the table lock: close it rather than pool it
          throw err;
        }
        await q("UNLOCK TABLES");
        return fence;
      });
    });
  }

  /** Locks the keys (existing rows, and the gaps where absent ones would go) in key order, so writers queue instead of deadlocking. */
  private async lockKeys(q: Query, ns: string, keys: string[]): Promise<Map<string, RawItem>> {
    const sorted = [...new Set(keys)].sort(compareKeys);
    const stored = new Map<string, RawItem>();
    for (const part of chunk(sorted, hexSize, this.budget)) {
      const rows = await q<LockRow[]>(
        `SELECT k, version, value IS NULL AS tomb FROM ${this.t} WHERE ns = ? AND k IN (${part.map(() => "?").join(",")}) ORDER BY k FOR UPDATE`,
        [keyBytes(ns), ...part.map(keyBytes)],
      );
      // Only the version and liveness matter for the decision; the value is not read back.
      for (const r of rows) {
        const key = r.k.toString("utf8");
        stored.set(key, { key, value: Number(r.tomb) ? null : Buffer.alloc(0), version: BigInt(r.version) });
      }
    }
    return stored;
  }

  /**
   * Writes final states with multi-row upserts. `guarded` keeps a stored row whose version is
   * not lower (applyIfNewer). The value is assigned first: MySQL applies assignments left to
   * right, so the second IF would otherwise compare against the version just written.
   * Returns affectedRows: 1 per insert, 2 per update, 0 per row left unchanged.
   */
  private async upsert(q: Query, ns: string, rows: RawItem[], guarded: boolean): Promise<number> {
    const set = guarded
      ? "value = IF(version < VALUES(version), VALUES(value), value), version = IF(version < VALUES(version), VALUES(version), version)"
      : "value = VALUES(value), version = VALUES(version)";
    let affected = 0;
    for (const part of chunk(rows, (r) => hexSize(r.key) + hexSize(r.value) + hexSize(ns) + 32, this.budget)) {
      const res = await q<ResultSetHeader>(`INSERT INTO ${this.t} (ns, k, value, version) VALUES ${part.map(() => "(?, ?, ?, ?)").join(", ")} ON DUPLICATE KEY UPDATE ${set}`, [
        ...part.flatMap((r) => [keyBytes(ns), keyBytes(r.key), r.value, r.version]),
      ]);
      affected += res.affectedRows;
    }
    return affected;
  }

  // ---- client operations --------------------------------------------------------------------

  async readRaw(ns: string, keys: string[], caller?: Caller): Promise<RawItem[]> {
    const found = await this.call(
      "batchGet",
      () =>
        this.withConnection(async (q) => {
          const out: RawItem[] = [];
          for (const part of chunk(keys, hexSize, this.budget)) {
            const rows = await q<ItemRow[]>(`SELECT k, value, version FROM ${this.t} WHERE ns = ? AND k IN (${part.map(() => "?").join(",")})`, [keyBytes(ns), ...part.map(keyBytes)]);
            out.push(...rows.map(toItem));
          }
          return out;
        }, caller),
      caller,
    );
    return found;
  }

  async put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<bigint> {
    if (!condition) return this.upsertOne(ns, key, value, fence, caller);
    const [r] = await this.write("put", ns, [{ type: "put", key, value, condition }], fence, caller);
    if (!r!.ok) throw r!.error;
    return r!.version;
  }

  /**
   * An unconditional put needs no decision, so no locking read: the upsert takes the row lock
   * itself, and LAST_INSERT_ID(expr) hands the new version back in the OK packet. Fenced, the row
   * comes from an INSERT … SELECT over the fence row (share-locked until COMMIT, and the fence
   * table's metadata lock held, which raiseFence's LOCK TABLES waits for) that yields nothing
   * when the fence is above the epoch: fence and write in one statement, three round trips
   * (START / upsert / COMMIT) where the separate fence read made four. Still a transaction, so a
   * put whose caller gave up is rolled back instead of committed late (one autocommit statement
   * could land after its deadline_exceeded, once the row lock it waited for is freed).
   */
  private upsertOne(ns: string, key: string, value: Buffer, fence: number | undefined, caller: Caller | undefined): Promise<bigint> {
    const update = "ON DUPLICATE KEY UPDATE value = VALUES(value), version = LAST_INSERT_ID(version + 1)";
    const row = [keyBytes(ns), keyBytes(key), value];
    return this.call("put", async (deadline) => {
      if (fence !== undefined && !this.fenceReady.done) await this.fenceReady.get();
      return this.tx(deadline, async (q) => {
        const upsert = () =>
          fence === undefined
            ? q<ResultSetHeader>(`INSERT INTO ${this.t} (ns, k, value, version) VALUES (?, ?, ?, 1) ${update}`, row)
            : q<ResultSetHeader>(`INSERT INTO ${this.t} (ns, k, value, version) SELECT ?, ?, ?, 1 FROM \`${FENCE_TABLE}\` WHERE tbl = ? AND epoch <= ? LOCK IN SHARE MODE ${update}`, [...row, this.options.table, fence]);
        let res = await upsert();
        if (res.affectedRows === 0) res = await this.afterNoRow(q, fence, upsert);
        if (res.affectedRows === 1) return 1n; // inserted
        // mysql2 reads the id as signed: a version above 2^63 arrives negative.
        const version = BigInt(res.insertId);
        return version < 0n ? version + 2n ** 64n : version;
      }, caller);
    }, caller);
  }

  /**
   * A fenced upsert that wrote nothing: the fence is above its epoch (refused), or this store's
   * fence row is gone (deleted by hand): as before it, a missing row counts as a fence at 0, so
   * it is made again and the upsert repeated.
   */
  private async afterNoRow(q: Query, epoch: number | undefined, upsert: () => Promise<ResultSetHeader>): Promise<ResultSetHeader> {
    const read = async () => (await q<RowDataPacket[]>(`SELECT epoch FROM \`${FENCE_TABLE}\` WHERE tbl = ? LOCK IN SHARE MODE`, [this.options.table]))[0];
    let row = await read();
    if (!row) {
      await q(`INSERT IGNORE INTO \`${FENCE_TABLE}\` (tbl, epoch) VALUES (?, 0)`, [this.options.table]);
      const res = await upsert();
      if (res.affectedRows > 0) return res;
      row = await read();
    }
    refuseIfFenced(this.description, epoch, row ? BigInt(row.epoch as string) : null);
    throw new DecantError("internal", `store ${this.description}: a put wrote nothing though the fence (${String(row?.epoch)}) is not above its epoch ${String(epoch)}`);
  }

  async delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<DeleteResult> {
    const [r] = await this.write("delete", ns, [{ type: "delete", key, condition }], fence, caller);
    if (!r!.ok) throw r!.error;
    return { deleted: r!.deleted === true, version: r!.version };
  }

  writeBatch(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    return this.write("batchWrite", ns, ops);
  }

  /** Applies ops in order in one transaction; each succeeds or fails on its own (the batch rule), a failed one writes nothing. */
  private write(op: string, ns: string, ops: WriteOp[], fence?: number, caller?: Caller): Promise<WriteOutcome[]> {
    return this.fencedTx(op, fence, async (q) => {
      const state = await this.lockKeys(q, ns, ops.map((o) => o.key));
      const changed = new Map<string, RawItem>();
      const outcomes = ops.map((o) =>
        settleSync(o.key, () => {
          const plan = planWrite(state.get(o.key) ?? null, o);
          if (plan.write) {
            state.set(o.key, plan.write);
            changed.set(o.key, plan.write);
          }
          return plan.outcome;
        }),
      );
      if (changed.size > 0) await this.upsert(q, ns, [...changed.values()], false);
      return outcomes;
    }, caller);
  }

  async scan(ns: string, options: ScanOptions, caller?: Caller): Promise<ScanPage<Item>> {
    const prefix = options.prefix ?? "";
    const end = prefixEnd(prefix);
    const where = ["ns = ?", "value IS NOT NULL", "k > ?"];
    const values: unknown[] = [keyBytes(ns), keyBytes(keyAfter(options.cursor))];
    const bound = (cond: string, key: string) => {
      where.push(cond);
      values.push(keyBytes(key));
    };
    if (prefix !== "") bound("k >= ?", prefix);
    if (prefix !== "" && end !== null) bound("k < ?", end);
    const rows = await this.select("scan", `SELECT k, value, version FROM ${this.t} WHERE ${where.join(" AND ")} ORDER BY k LIMIT ?`, [...values, options.limit + 1], caller);
    return pageOf(rows.map(toItem) as Item[], options.limit);
  }

  // ---- replication operations ---------------------------------------------------------------

  async readOne(ns: string, key: string, caller?: Caller): Promise<RawItem | null> {
    const rows = await this.select("get", `SELECT k, value, version FROM ${this.t} WHERE ns = ? AND k = ?`, [keyBytes(ns), keyBytes(key)], caller);
    return rows[0] ? toItem(rows[0]) : null;
  }

  /**
   * Locks the batch's keys, decides per item in order (so the answers are exact, duplicates
   * included), and writes only each key's winner with one guarded multi-row upsert.
   */
  async applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]> {
    return this.fencedTx("applyIfNewer", fence, async (q) => {
      const stored = await this.lockKeys(q, ns, items.map((i) => i.key));
      const winners = new Map<string, RawItem>();
      const applied = items.map((item) => {
        const current = winners.get(item.key) ?? stored.get(item.key);
        if (current && current.version >= item.version) return false;
        winners.set(item.key, item);
        return true;
      });
      if (winners.size > 0) {
        const rows = [...winners.values()];
        const affected = await this.upsert(q, ns, rows, true);
        const expected = rows.reduce((n, r) => n + (stored.has(r.key) ? 2 : 1), 0);
        // Under our row locks every winner must have been written; anything else is a bug, and rolls back.
        if (affected !== expected) throw new DecantError("internal", `store ${this.description}: applyIfNewer wrote ${affected} row changes, expected ${expected}`);
      }
      return applied;
    });
  }

  async scanRaw(ns: string, options: RawScanOptions, segment: Segment, caller?: Caller): Promise<ScanPage<RawItem>> {
    const where = ["ns = ?", "k > ?"];
    const values: unknown[] = [keyBytes(ns), keyBytes(keyAfter(options.cursor, segment))];
    if (segment.total > 1) {
      where.push("CRC32(k) % ? = ?");
      values.push(segment.total, segment.segment);
    }
    const rows = await this.select("scanRaw", `SELECT k, ${options.keysOnly ? "NULL AS value" : "value"}, version FROM ${this.t} WHERE ${where.join(" AND ")} ORDER BY k LIMIT ?`, [...values, options.limit + 1], caller);
    return pageOf(rows.map(toItem), options.limit, segment);
  }

  async largeValues(ns: string, options: LargeValueOptions, caller?: Caller): Promise<ScanPage<ValueSize>> {
    const sql = `SELECT k, LENGTH(value) AS bytes FROM ${this.t} WHERE ns = ? AND k > ? AND value IS NOT NULL AND LENGTH(value) > ? ORDER BY k LIMIT ?`;
    const values = [keyBytes(ns), keyBytes(keyAfter(options.cursor)), options.minBytes, options.limit + 1];
    const rows = await this.call("largeValues", () => this.withConnection((q) => q<RowDataPacket[]>(sql, values), caller), caller);
    return pageOf(rows.map((r) => ({ key: (r.k as Buffer).toString("utf8"), bytes: Number(r.bytes) })), options.limit);
  }

  async namespaces(caller?: Caller): Promise<string[]> {
    // DISTINCT on the primary key's first column: a loose index scan, not a table scan.
    const rows = await this.call("namespaces", () => this.withConnection((q) => q<RowDataPacket[]>(`SELECT DISTINCT ns FROM ${this.t} ORDER BY ns`), caller), caller);
    return rows.map((r) => (r.ns as Buffer).toString("utf8"));
  }

  /** The optimizer's row estimate for the namespace's key range: cheap at any size. */
  async estimateCount(ns: string, caller?: Caller): Promise<number> {
    const rows = await this.call("estimateCount", () => this.withConnection((q) => q<RowDataPacket[]>(`EXPLAIN SELECT k FROM ${this.t} WHERE ns = ?`, [keyBytes(ns)]), caller), caller);
    const n = Number(rows[0]?.rows ?? 0);
    return Number.isFinite(n) ? n : 0;
  }

  async dropNamespace(ns: string): Promise<void> {
    await this.deleteInChunks("dropNamespace", ns, "");
  }

  async purgeTombstones(ns: string): Promise<number> {
    return this.deleteInChunks("purgeTombstones", ns, " AND value IS NULL");
  }

  /** Deletes in bounded statements (each one its own timeout), so a large namespace never needs one huge transaction. */
  private async deleteInChunks(op: string, ns: string, filter: string): Promise<number> {
    let total = 0;
    for (;;) {
      const res = await this.call(op, () => this.withConnection((q) => q<ResultSetHeader>(`DELETE FROM ${this.t} WHERE ns = ?${filter} LIMIT ${DELETE_CHUNK}`, [keyBytes(ns)])));
      total += res.affectedRows;
      if (res.affectedRows < DELETE_CHUNK) return total;
    }
  }

  private select(op: string, sql: string, values: unknown[], caller?: Caller): Promise<ItemRow[]> {
    return this.call(op, () => this.withConnection((q) => q<ItemRow[]>(sql, values), caller), caller);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.readying.reset();
    await pool?.end().catch(() => undefined); // a connect still in flight fails as the pool ends: nothing to report
  }
}

export class MysqlStore extends KitStore<MysqlDriver> {}

function toItem(r: ItemRow): RawItem {
  return { key: r.k.toString("utf8"), value: r.value, version: BigInt(r.version) };
}

/** mysql://user:pw@host:3306/db?table=decant_items&pool_max=10&timeout_ms=5000&max_value_bytes=4194304&ssl=false (mariadb:// too). */
export function createMysqlStore(url: URL, raw: string): MysqlStore {
  const o = parseOptions("mysql", url, {
    table: option.text("decant_items", /^[A-Za-z_][A-Za-z0-9_]{0,63}$/),
    pool_max: option.int(10, 1, 1000),
    timeout_ms: option.int(5000, 1, 600_000),
    max_value_bytes: option.int(4 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    ssl: option.bool(false),
  });
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (!database || database.includes("/")) throw invalidArgument("store", "mysql needs a database name, e.g. mysql://user:pw@host:3306/decant");
  if (!url.hostname) throw invalidArgument("store", "mysql needs a host, e.g. mysql://user:pw@host:3306/decant");
  if (o.table === FENCE_TABLE) throw invalidArgument("store", `mysql table=${FENCE_TABLE} is reserved for the write fence; choose another name`);
  const options = {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database,
    table: o.table,
    poolMax: o.pool_max,
    timeoutMs: o.timeout_ms,
    maxValueBytes: o.max_value_bytes,
    ssl: o.ssl,
  };
  return new MysqlStore(new MysqlDriver(options, raw));
}
