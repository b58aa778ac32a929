// Tables are catalog items in the namespace _ddb_tables (key = table name, value = the JSON
// description below); a table's items live in a namespace of their own, _ddb_t_<id>, where
// the id is random (table names may hold characters and lengths a namespace cannot, and a
// re-created table must not meet the tombstones of its predecessor).
//
// Each sidecar trusts a description it read for up to CACHE_MS. So DeleteTable does not free
// the name at once: it marks the table DELETING (item operations on it are refused at once by
// any sidecar that reads the catalog), and only once every cached description has expired and
// a write admitted under one has ended (the grace) is the namespace dropped and the entry
// removed, by whichever sidecar gets there first. Until then CreateTable of that name is
// ResourceInUseException, as in DynamoDB; so a write can never be acknowledged into the old
// incarnation after a new one exists, and nothing written late is left behind.
import { randomBytes } from "node:crypto";
import { isDecantError } from "../../protocol/errors.js";
import type { Store } from "../../protocol/store.js";
import { notFound } from "./errors.js";
import { DynamoError, type KeySchema } from "./types.js";

export const CATALOG_NAMESPACE = "_ddb_tables";

export interface TableInfo {
  name: string;
  /** The store namespace of the table's items. */
  namespace: string;
  /** A stable id (TableId in DescribeTable). */
  id: string;
  schema: KeySchema;
  attributeDefinitions: { AttributeName: string; AttributeType: "S" | "N" | "B" }[];
  /** Epoch seconds. */
  created: number;
  billingMode: "PROVISIONED" | "PAY_PER_REQUEST";
  read: number;
  write: number;
  /** Set by DeleteTable: epoch ms after which the namespace is dropped and the name is free. */
  deleting?: number;
}

/** How long a sidecar trusts a table description it read (another sidecar may delete the table). */
const CACHE_MS = 1000;

export class Catalog {
  private readonly cache = new Map<string, { info: TableInfo; version: bigint; at: number }>();
  /** How long after DeleteTable the namespace is dropped: every cache expired, every write under one ended. */
  readonly graceMs: number;

  /** storeTimeoutMs: the longest a store call may still land after it began. */
  constructor(private readonly store: Store, storeTimeoutMs = 0, private readonly onError: (err: unknown) => void = () => undefined) {
    this.graceMs = CACHE_MS + storeTimeoutMs + 1000;
  }

  /** The table's description; ResourceNotFoundException if there is no such table (or it is being deleted). */
  async get(name: string): Promise<TableInfo> {
    const hit = this.cached(name);
    if (hit) return hit;
    const info = await this.describe(name);
    if (info.deleting !== undefined) throw notFound(`Table: ${name} not found`);
    return info;
  }

  /** The table's description if this sidecar read it less than CACHE_MS ago (no promise: the item operations' fast path). */
  cached(name: string): TableInfo | undefined {
    const hit = this.cache.get(name);
    return hit && performance.now() - hit.at < CACHE_MS && hit.info.deleting === undefined ? hit.info : undefined;
  }

  /** The description of a table, one being deleted included (DescribeTable shows it DELETING). */
  async describe(name: string): Promise<TableInfo> {
    const found = await this.read(name);
    if (!found) throw notFound(`Table: ${name} not found`);
    if (found.info.deleting !== undefined && (await this.finish(name, found))) throw notFound(`Table: ${name} not found`);
    return found.info;
  }

  private async read(name: string): Promise<{ info: TableInfo; version: bigint } | undefined> {
    const item = await this.store.get(CATALOG_NAMESPACE, name);
    if (!item) {
      this.cache.delete(name);
      return undefined;
    }
    const entry = { info: JSON.parse(item.value.toString("utf8")) as TableInfo, version: item.version, at: performance.now() };
    this.cache.set(name, entry);
    return entry;
  }

  async create(info: Omit<TableInfo, "namespace" | "id" | "created">): Promise<TableInfo> {
    const id = randomBytes(8).toString("hex");
    const full: TableInfo = { ...info, id, namespace: `_ddb_t_${id}`, created: Date.now() / 1000 };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.put(CATALOG_NAMESPACE, info.name, Buffer.from(JSON.stringify(full)), { kind: "must_not_exist" });
        break;
      } catch (err) {
        if (!isDecantError(err, "version_mismatch")) throw err;
        const found = await this.read(info.name);
        // A deletion past its grace is finished here, and the name taken once more.
        if (attempt === 0 && found?.info.deleting !== undefined && (await this.finish(info.name, found))) continue;
        if (found?.info.deleting !== undefined) throw new DynamoError("ResourceInUseException", `Attempt to change a resource which is still in use: Table is being deleted: ${info.name}`);
        throw new DynamoError("ResourceInUseException", `Table already exists: ${info.name}`);
      }
    }
    this.cache.set(info.name, { info: full, version: 0n, at: performance.now() });
    return full;
  }

  /** Rewrites a table's description (UpdateTable), conditional on the version read. */
  async update(name: string, change: (info: TableInfo) => TableInfo): Promise<TableInfo> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.read(name);
      if (!found) throw notFound(`Table: ${name} not found`);
      if (found.info.deleting !== undefined) throw new DynamoError("ResourceInUseException", `Attempt to change a resource which is still in use: Table is being deleted: ${name}`);
      const next = change(found.info);
      try {
        await this.store.put(CATALOG_NAMESPACE, name, Buffer.from(JSON.stringify(next)), { kind: "expected_version", version: found.version });
        this.cache.delete(name);
        return next;
      } catch (err) {
        if (!isDecantError(err, "version_mismatch") || attempt >= 10) throw err;
      }
    }
  }

  /**
   * Marks the table DELETING (conditional on the version read), so no sidecar that reads the
   * catalog serves it any more; the namespace is dropped once the grace has passed (see top).
   */
  async delete(name: string): Promise<TableInfo> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.read(name);
      if (!found) throw notFound(`Table: ${name} not found`);
      if (found.info.deleting !== undefined) throw new DynamoError("ResourceInUseException", `Attempt to change a resource which is still in use: Table is being deleted: ${name}`);
      const next: TableInfo = { ...found.info, deleting: Date.now() + this.graceMs };
      try {
        await this.store.put(CATALOG_NAMESPACE, name, Buffer.from(JSON.stringify(next)), { kind: "expected_version", version: found.version });
      } catch (err) {
        if (!isDecantError(err, "version_mismatch") || attempt >= 10) throw err;
        continue;
      }
      this.cache.delete(name);
      setTimeout(() => void this.finishIfDue(name).catch(this.onError), this.graceMs + 50).unref();
      return next;
    }
  }

  /** Finishes a deletion whose grace has passed (any sidecar may: the one that began it may be gone). */
  async finishIfDue(name: string): Promise<void> {
    const found = await this.read(name);
    if (found?.info.deleting !== undefined) await this.finish(name, found);
  }

  /** Drops a deleted table's namespace and then its entry, if its grace has passed; true when it is gone. */
  private async finish(name: string, found: { info: TableInfo; version: bigint }): Promise<boolean> {
    if (found.info.deleting === undefined || Date.now() < found.info.deleting) return false;
    // The namespace first: should this stop half-way, the entry still says DELETING and the next finisher drops again.
    await this.store.dropNamespace(found.info.namespace);
    try {
      await this.store.delete(CATALOG_NAMESPACE, name, { kind: "expected_version", version: found.version });
    } catch (err) {
      if (!isDecantError(err, "version_mismatch")) throw err; // another sidecar finished it
    }
    this.cache.delete(name);
    return true;
  }

  /** Finishes every deletion whose grace has passed (at start, and as ListTables reads the catalog). */
  async sweep(): Promise<void> {
    for (const [name, found] of await this.entries()) if (found.info.deleting !== undefined) await this.finish(name, found);
  }

  private async entries(): Promise<[string, { info: TableInfo; version: bigint }][]> {
    const out: [string, { info: TableInfo; version: bigint }][] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.scan(CATALOG_NAMESPACE, { limit: 1000, cursor });
      for (const item of page.items) out.push([item.key, { info: JSON.parse(item.value.toString("utf8")) as TableInfo, version: item.version }]);
      cursor = page.cursor;
    } while (cursor);
    return out;
  }

  /** Every table name, sorted, tables being deleted included (as DynamoDB lists them); finishes due deletions. */
  async names(): Promise<string[]> {
    const names: string[] = [];
    for (const [name, found] of await this.entries()) {
      if (found.info.deleting !== undefined && (await this.finish(name, found))) continue;
      names.push(name);
    }
    return names.sort();
  }
}
