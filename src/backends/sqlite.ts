// The embedded default: one SQLite file (WAL mode) through better-sqlite3. Calls are
// synchronous inside the process, so each write is one IMMEDIATE transaction: atomic
// against this process and against any other process that opens the same file.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createRequire } from "node:module";
import type BetterSqlite3 from "better-sqlite3";
import { DecantError, invalidArgument, isDecantError, unavailable, unsupported } from "../protocol/errors.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import { checkCondition, checkEpoch, checkValueSize, decodeCursor, encodeCursor, isKeyCursor, liveItems, nextVersion, prefixEnd, refuseIfFenced } from "./common.js";

interface Row {
  key: string;
  value: Buffer | null;
  version: bigint;
}

/**
 * A rowid table with (ns, key) as its primary-key index. Files made before 2026-11-29 have a
 * WITHOUT ROWID table and keep it (every statement works on both), but that layout suits rows
 * of a few hundred bytes: a 1 KiB value spills into an overflow page of its own. Measured on
 * 1 KiB values: the file 4.6x the data instead of 1.4x, bulk writes 4x and scans 1.5x slower.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS decant_items (
  ns      TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  value   BLOB,              -- NULL = tombstone
  version INTEGER NOT NULL,
  PRIMARY KEY (ns, key)
);
-- The store-wide write fence (raiseFence): one row, absent = 0. Not a namespace, so never scanned or copied.
CREATE TABLE IF NOT EXISTS decant_fence (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  epoch INTEGER NOT NULL
);`;

export interface SqliteOptions {
  path: string;
  busyTimeoutMs: number;
}

/**
 * Creates the file's directory when only that last level is missing (`./data/decant.db` in a
 * fresh checkout); a deeper missing path is refused, as it is more likely a typo or a volume
 * that is not mounted than a place to keep the data.
 */
function makeDirectory(path: string): void {
  const dir = dirname(resolve(path));
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (!existsSync(parent)) throw new Error(`the directory ${dir} does not exist, nor does ${parent}; create it first (Decant creates only the last missing directory)`);
  mkdirSync(dir);
}

export class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly description: string;
  readonly capabilities: Capabilities = {
    orderedScan: true,
    segmentedScan: false,
    maxValueBytes: () => 64 * 1024 * 1024,
    durable: true,
    maxVersion: 2n ** 63n - 1n, // a signed 64-bit column
    fencing: true, // the fence is read inside each write's IMMEDIATE transaction
  };
  private db?: BetterSqlite3.Database;
  private stmts?: ReturnType<SqliteStore["prepare"]>;

  constructor(private readonly options: SqliteOptions) {
    this.description = `sqlite:${options.path}`;
  }

  /** Opens lazily, so a bad path is reported on first use with the path in the message. */
  private open(): NonNullable<SqliteStore["stmts"]> {
    if (this.stmts) return this.stmts;
    let Database: typeof BetterSqlite3;
    try {
      Database = createRequire(import.meta.url)("better-sqlite3");
    } catch (err) {
      throw new DecantError("unavailable", `the sqlite backend needs the better-sqlite3 package (npm install): ${String(err)}`);
    }
    try {
      if (this.options.path !== ":memory:") makeDirectory(this.options.path);
      const db = new Database(this.options.path, { timeout: this.options.busyTimeoutMs });
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.defaultSafeIntegers(true); // versions come back as bigint
      db.exec(SCHEMA);
      this.db = db;
      this.stmts = this.prepare(db);
      return this.stmts;
    } catch (err) {
      throw unavailable(this.description, err);
    }
  }

  private prepare(db: BetterSqlite3.Database) {
    return {
      get: db.prepare<[string, string], Row>("SELECT key, value, version FROM decant_items WHERE ns = ? AND key = ?"),
      upsert: db.prepare("INSERT INTO decant_items (ns, key, value, version) VALUES (?, ?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version"),
      applyIfNewer: db.prepare(
        "INSERT INTO decant_items (ns, key, value, version) VALUES (?, ?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, version = excluded.version WHERE decant_items.version < excluded.version",
      ),
      scan: db.prepare<[string, string, string, string | null, string | null, bigint], Row>(
        "SELECT key, value, version FROM decant_items WHERE ns = ? AND key > ? AND key >= ? AND (? IS NULL OR key < ?) AND value IS NOT NULL ORDER BY key LIMIT ?",
      ),
      scanRaw: db.prepare<[string, string, bigint], Row>("SELECT key, value, version FROM decant_items WHERE ns = ? AND key > ? ORDER BY key LIMIT ?"),
      // length() of a BLOB reads its size from the record header, not the value.
      largeValues: db.prepare<[string, string, bigint, bigint], { key: string; bytes: bigint }>(
        "SELECT key, length(value) AS bytes FROM decant_items WHERE ns = ? AND key > ? AND value IS NOT NULL AND length(value) > ? ORDER BY key LIMIT ?",
      ),
      namespaces: db.prepare<[], { ns: string }>("SELECT DISTINCT ns FROM decant_items ORDER BY ns"),
      count: db.prepare<[string], { n: bigint }>("SELECT count(*) AS n FROM decant_items WHERE ns = ?"),
      drop: db.prepare("DELETE FROM decant_items WHERE ns = ?"),
      purge: db.prepare("DELETE FROM decant_items WHERE ns = ? AND value IS NULL"),
      fence: db.prepare<[], { epoch: bigint }>("SELECT epoch FROM decant_fence WHERE id = 1"),
      raiseFence: db.prepare("INSERT INTO decant_fence (id, epoch) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET epoch = max(epoch, excluded.epoch)"),
    };
  }

  private raw(ns: string, key: string): RawItem | null {
    return this.open().get.get(ns, key) ?? null;
  }

  /** Runs fn in one IMMEDIATE transaction (so a read-check-write is atomic across processes). */
  private tx<T>(fn: () => T): T {
    this.open();
    try {
      return this.db!.transaction(fn).immediate();
    } catch (err) {
      if (isDecantError(err)) throw err;
      throw unavailable(this.description, err);
    }
  }

  /** Inside a write transaction: refuses the write if the fence is above its epoch. */
  private checkFenceSync(epoch: number | undefined): void {
    if (epoch !== undefined) refuseIfFenced(this.description, epoch, this.stmts!.fence.get()?.epoch ?? null);
  }

  private putSync(ns: string, key: string, value: Buffer, condition?: Condition): bigint {
    checkValueSize(this, key, value);
    const stored = this.raw(ns, key);
    checkCondition(key, stored, condition);
    const version = nextVersion(stored);
    this.stmts!.upsert.run(ns, key, value, version);
    return version;
  }

  private deleteSync(ns: string, key: string, condition?: Condition): DeleteResult {
    const stored = this.raw(ns, key);
    checkCondition(key, stored, condition);
    if (!stored || stored.value === null) return { deleted: false, version: stored?.version ?? 0n };
    const version = stored.version + 1n;
    this.stmts!.upsert.run(ns, key, null, version);
    return { deleted: true, version };
  }

  async get(ns: string, key: string): Promise<Item | null> {
    const row = this.tryRead(() => this.raw(ns, key));
    return row && row.value !== null ? (row as Item) : null;
  }

  async batchGet(ns: string, keys: string[]): Promise<Item[]> {
    return liveItems(await this.batchGetRaw(ns, keys));
  }

  async batchGetRaw(ns: string, keys: string[]): Promise<RawItem[]> {
    return this.tryRead(() => [...new Set(keys)].map((k) => this.raw(ns, k)).filter((r): r is RawItem => r !== null));
  }

  async put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number): Promise<bigint> {
    checkEpoch(fence);
    return this.tx(() => {
      this.checkFenceSync(fence);
      return this.putSync(ns, key, value, condition);
    });
  }

  async delete(ns: string, key: string, condition?: Condition, fence?: number): Promise<DeleteResult> {
    checkEpoch(fence);
    return this.tx(() => {
      this.checkFenceSync(fence);
      return this.deleteSync(ns, key, condition);
    });
  }

  async batchWrite(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    // One transaction for speed; each write still succeeds or fails on its own.
    return this.tx(() =>
      ops.map((op): WriteOutcome => {
        try {
          if (op.type === "put") return { ok: true, key: op.key, version: this.putSync(ns, op.key, op.value, op.condition) };
          const r = this.deleteSync(ns, op.key, op.condition);
          return { ok: true, key: op.key, version: r.version, deleted: r.deleted };
        } catch (err) {
          if (isDecantError(err) && err.kind !== "unavailable") return { ok: false, key: op.key, error: err };
          throw err;
        }
      }),
    );
  }

  async scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>> {
    const prefix = options.prefix ?? "";
    const after = options.cursor === undefined ? "" : decodeCursor(options.cursor, isKeyCursor).k;
    const end = prefixEnd(prefix);
    const rows = this.tryRead(() => this.open().scan.all(ns, after, prefix, end, end, BigInt(options.limit + 1)));
    return this.page(rows as Item[], options.limit);
  }

  async getRaw(ns: string, key: string): Promise<RawItem | null> {
    return this.tryRead(() => this.raw(ns, key));
  }

  async applyIfNewer(ns: string, items: RawItem[], fence?: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    for (const item of items) checkValueSize(this, item.key, item.value);
    checkEpoch(fence);
    return this.tx(() => {
      this.checkFenceSync(fence);
      return items.map((i) => this.stmts!.applyIfNewer.run(ns, i.key, i.value, i.version).changes > 0);
    });
  }

  async raiseFence(epoch: number): Promise<number> {
    checkEpoch(epoch);
    return this.tx(() => {
      this.stmts!.raiseFence.run(epoch);
      return Number(this.stmts!.fence.get()!.epoch);
    });
  }

  async scanRaw(ns: string, options: RawScanOptions): Promise<ScanPage<RawItem>> {
    if ((options.totalSegments ?? 1) > 1) throw unsupported(this.kind, "segmented scans");
    const after = options.cursor === undefined ? "" : decodeCursor(options.cursor, isKeyCursor).k;
    return this.page(this.tryRead(() => this.open().scanRaw.all(ns, after, BigInt(options.limit + 1))), options.limit);
  }

  async largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>> {
    const after = options.cursor === undefined ? "" : decodeCursor(options.cursor, isKeyCursor).k;
    const rows = this.tryRead(() => this.open().largeValues.all(ns, after, BigInt(options.minBytes), BigInt(options.limit + 1)));
    return this.page<ValueSize>(rows.map((r) => ({ key: r.key, bytes: Number(r.bytes) })), options.limit);
  }

  /** Reads limit+1 rows to know whether another page exists without an empty last page. */
  private page<T extends { key: string }>(rows: T[], limit: number): ScanPage<T> {
    const items = rows.slice(0, limit);
    return { items, cursor: rows.length > limit ? encodeCursor({ k: items[items.length - 1]!.key }) : undefined };
  }

  async namespaces(): Promise<string[]> {
    return this.tryRead(() => this.open().namespaces.all().map((r) => r.ns));
  }

  async estimateCount(ns: string): Promise<number> {
    return Number(this.tryRead(() => this.open().count.get(ns)!.n));
  }

  async dropNamespace(ns: string): Promise<void> {
    this.tx(() => this.stmts!.drop.run(ns));
  }

  async purgeTombstones(ns: string): Promise<number> {
    return this.tx(() => this.stmts!.purge.run(ns).changes);
  }

  private tryRead<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (isDecantError(err)) throw err;
      throw unavailable(this.description, err);
    }
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
    this.stmts = undefined;
  }
}

/** sqlite:./data/decant.db, sqlite:/abs/path.db, sqlite::memory:; ?busy_timeout_ms=5000 */
export function createSqliteStore(url: URL): SqliteStore {
  const path = decodeURIComponent(url.pathname);
  if (!path) throw invalidArgument("store", "sqlite: needs a file path, e.g. sqlite:./data/decant.db");
  const busy = Number(url.searchParams.get("busy_timeout_ms") ?? 5000);
  if (!Number.isInteger(busy) || busy < 0) throw invalidArgument("store", "sqlite busy_timeout_ms must be a whole number of milliseconds");
  return new SqliteStore({ path, busyTimeoutMs: busy });
}
