// The migration layer is itself a store built from two stores (like unstorage's overlay):
// reads go where the phase says, writes go to the primary (which assigns the version) and
// then to the secondary through applyIfNewer. It never speaks SQL or DynamoDB itself.
import { DecantError, isDecantError } from "../protocol/errors.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import type { MigrationController } from "./controller.js";
import { ROLES, secondaryServesReads, type Phase } from "./phases.js";

const MAX_SHADOW_READS_IN_FLIGHT = 32;

export class MigratingStore implements Store {
  readonly kind = "migration";
  private shadowInFlight = 0;

  constructor(private readonly controller: MigrationController) {}

  get description(): string {
    const c = this.controller;
    return c.target ? `${c.current.description} → ${c.target.description}` : c.current.description;
  }

  /** The strictest of both stores, so every accepted value can be migrated. */
  get capabilities(): Capabilities {
    const { current, target } = this.controller;
    const reads = this.readStore();
    return {
      orderedScan: reads.capabilities.orderedScan,
      segmentedScan: reads.capabilities.segmentedScan,
      maxValueBytes: (key) => Math.min(current.capabilities.maxValueBytes(key), target ? target.capabilities.maxValueBytes(key) : Infinity),
      durable: current.capabilities.durable && (target?.capabilities.durable ?? true),
      purgeTombstones: this.controller.phase === "SINGLE" || this.controller.phase === "COMPLETE",
    };
  }

  private readStore(phase: Phase = this.controller.phase): Store {
    return this.controller.store(ROLES[phase].reads);
  }

  async get(ns: string, key: string): Promise<Item | null> {
    const phase = this.controller.phase;
    const item = await this.readStore(phase).get(ns, key);
    if (ROLES[phase].shadowRead) this.shadowCompare(ns, key, item);
    return item;
  }

  /** Off the request path: read the target too and count disagreements. */
  private shadowCompare(ns: string, key: string, seen: Item | null): void {
    if (this.shadowInFlight >= MAX_SHADOW_READS_IN_FLIGHT || !this.controller.target) return;
    this.shadowInFlight++;
    this.controller.target
      .get(ns, key)
      .then((other) => {
        const same = seen === null ? other === null : other !== null && other.version === seen.version && other.value.equals(seen.value);
        if (!same) this.controller.metrics.shadowMismatches.inc();
      })
      .catch(() => this.controller.metrics.shadowMismatches.inc())
      .finally(() => this.shadowInFlight--);
  }

  batchGet(ns: string, keys: string[]): Promise<Item[]> {
    return this.readStore().batchGet(ns, keys);
  }

  /** Cursors name the store they came from: a scan cannot continue on the other store's cursor. */
  async scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>> {
    const role = ROLES[this.controller.phase].reads;
    let cursor = options.cursor;
    if (cursor !== undefined) {
      const [from, rest] = [cursor.slice(0, cursor.indexOf(":")), cursor.slice(cursor.indexOf(":") + 1)];
      if (from !== "current" && from !== "target") throw new DecantError("invalid_argument", "page_token: is not a token this server issued", { field: "page_token" });
      if (from !== role) throw new DecantError("failed_precondition", `the migration moved reads from the ${from} store to the ${role} store during this scan; start the scan again`);
      cursor = rest;
    }
    const page = await this.controller.store(role).scan(ns, { ...options, cursor });
    return { items: page.items, cursor: page.cursor === undefined ? undefined : `${role}:${page.cursor}` };
  }

  async put(ns: string, key: string, value: Buffer, condition?: Condition): Promise<bigint> {
    this.controller.checkValueFits(key, value);
    const { phase, done } = await this.controller.admitWrite();
    try {
      const started = performance.now();
      const version = await this.controller.store(ROLES[phase].primary).put(ns, key, value, condition);
      this.controller.backfill.observeLiveLatency(performance.now() - started);
      await this.replicate(phase, ns, { key, value, version });
      return version;
    } finally {
      done();
    }
  }

  async delete(ns: string, key: string, condition?: Condition): Promise<DeleteResult> {
    const { phase, done } = await this.controller.admitWrite();
    try {
      const result = await this.controller.store(ROLES[phase].primary).delete(ns, key, condition);
      if (result.deleted) await this.replicate(phase, ns, { key, value: null, version: result.version });
      return result;
    } finally {
      done();
    }
  }

  /** Each write on its own (not atomic), in order per key, a few keys at a time. */
  async batchWrite(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    const { runBatch } = await import("../backends/batch.js");
    return runBatch(this, ns, ops, 8);
  }

  /** Sends a primary write to the secondary (rule 4 decides what a failure means). */
  private async replicate(phase: Phase, ns: string, item: RawItem): Promise<void> {
    const role = ROLES[phase].secondary;
    if (!role) return;
    try {
      await this.controller.store(role).applyIfNewer(ns, [item]);
    } catch (err) {
      if (isDecantError(err, "invalid_argument")) throw err;
      await this.controller.recordSecondaryFailure(role, ns, item.key, err);
      if (secondaryServesReads(phase)) throw err;
    }
  }

  // Replication operations address the primary (and carry the write to the secondary), so the
  // migration layer passes the same conformance suite as any backend.
  getRaw(ns: string, key: string): Promise<RawItem | null> {
    return this.readStore().getRaw(ns, key);
  }

  batchGetRaw(ns: string, keys: string[]): Promise<RawItem[]> {
    return this.readStore().batchGetRaw(ns, keys);
  }

  async applyIfNewer(ns: string, items: RawItem[]): Promise<boolean[]> {
    for (const item of items) this.controller.checkValueFits(item.key, item.value);
    const { phase, done } = await this.controller.admitWrite();
    try {
      const applied = await this.controller.store(ROLES[phase].primary).applyIfNewer(ns, items);
      const role = ROLES[phase].secondary;
      if (role) await this.controller.store(role).applyIfNewer(ns, items);
      return applied;
    } finally {
      done();
    }
  }

  scanRaw(ns: string, options: RawScanOptions): Promise<ScanPage<RawItem>> {
    return this.readStore().scanRaw(ns, options);
  }

  largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>> {
    return this.readStore().largeValues(ns, options);
  }

  namespaces(): Promise<string[]> {
    return this.readStore().namespaces();
  }

  estimateCount(ns: string): Promise<number> {
    return this.readStore().estimateCount(ns);
  }

  async dropNamespace(ns: string): Promise<void> {
    const roles = ROLES[this.controller.phase];
    await this.controller.store(roles.primary).dropNamespace(ns);
    if (roles.secondary) await this.controller.store(roles.secondary).dropNamespace(ns);
  }

  /** Tombstones are purged only while no migration is in progress (DESIGN.md §1). */
  async purgeTombstones(ns: string): Promise<number> {
    const phase = this.controller.phase;
    if (phase !== "SINGLE" && phase !== "COMPLETE") throw new DecantError("failed_precondition", `tombstones are kept while a migration is in progress (phase ${phase}): they carry the versions that make it converge`);
    return this.controller.store(ROLES[phase].primary).purgeTombstones(ns);
  }

  async close(): Promise<void> {}
}
