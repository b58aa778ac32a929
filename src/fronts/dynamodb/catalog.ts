// Tables are catalog items in the namespace _ddb_tables (key = table name, value = the JSON
// description below); a table's items live in a namespace of their own, _ddb_t_<id>, where
// the id is random (table names may hold characters and lengths a namespace cannot, and a
// re-created table must not meet the tombstones of its predecessor).
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
}

/** How long a sidecar trusts a table description it read (another sidecar may delete the table). */
const CACHE_MS = 1000;

export class Catalog {
  private readonly cache = new Map<string, { info: TableInfo; version: bigint; at: number }>();

  constructor(private readonly store: Store) {}

  /** The table's description; ResourceNotFoundException if there is no such table. */
  async get(name: string): Promise<TableInfo> {
    const hit = this.cache.get(name);
    if (hit && performance.now() - hit.at < CACHE_MS) return hit.info;
    const found = await this.read(name);
    if (!found) throw notFound(`Table: ${name} not found`);
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
    try {
      await this.store.put(CATALOG_NAMESPACE, info.name, Buffer.from(JSON.stringify(full)), { kind: "must_not_exist" });
    } catch (err) {
      if (isDecantError(err, "version_mismatch")) throw new DynamoError("ResourceInUseException", `Table already exists: ${info.name}`);
      throw err;
    }
    this.cache.set(info.name, { info: full, version: 0n, at: performance.now() });
    return full;
  }

  /** Rewrites a table's description (UpdateTable), conditional on the version read. */
  async update(name: string, change: (info: TableInfo) => TableInfo): Promise<TableInfo> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.read(name);
      if (!found) throw notFound(`Table: ${name} not found`);
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

  /** Removes the catalog entry first (so no new writes find the table), then its items. */
  async delete(name: string): Promise<TableInfo> {
    for (let attempt = 0; ; attempt++) {
      const found = await this.read(name);
      if (!found) throw notFound(`Table: ${name} not found`);
      try {
        await this.store.delete(CATALOG_NAMESPACE, name, { kind: "expected_version", version: found.version });
      } catch (err) {
        if (!isDecantError(err, "version_mismatch") || attempt >= 10) throw err;
        continue;
      }
      this.cache.delete(name);
      await this.store.dropNamespace(found.info.namespace);
      return found.info;
    }
  }

  /** Every table name, sorted (a few hundred at most: one scan of the catalog). */
  async names(): Promise<string[]> {
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.scan(CATALOG_NAMESPACE, { limit: 1000, cursor });
      for (const item of page.items) names.push(item.key);
      cursor = page.cursor;
    } while (cursor);
    return names.sort();
  }
}
