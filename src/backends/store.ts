// A Store defined from the few operations a database must supply (unstorage's defineDriver is
// the model): KitStore derives the client reads from raw reads, runs batches, checks what every
// store checks before any call (value sizes, versions, fence epochs, segments, cursors' segment)
// and honours a caller that has gone before it starts anything.
import { detached, throwIfCancelled } from "../protocol/call.js";
import { runBatch, settle } from "../protocol/batch.js";
import { checkSegment, type Segment } from "../protocol/paging.js";
import { checkEpoch, checkValueSize, checkVersion, liveItem, liveItems } from "../protocol/semantics.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";

/** What a backend supplies. Inputs arrive checked: keys distinct, sizes, versions, epochs and segments valid. */
export interface Driver extends Pick<Store, "kind" | "description" | "capabilities" | "scan" | "largeValues" | "namespaces" | "estimateCount" | "dropNamespace" | "purgeTombstones" | "close"> {
  /** The raw items (tombstones included) of distinct keys; absent keys are left out; any order. */
  readRaw(ns: string, keys: string[]): Promise<RawItem[]>;
  /** One key's raw item (default: readRaw of one key). */
  readOne?(ns: string, key: string): Promise<RawItem | null>;
  put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined): Promise<bigint>;
  delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined): Promise<DeleteResult>;
  /**
   * A whole batch at once (one transaction, one script), each write's outcome settled with
   * settle()/settleSync() (protocol/batch.ts). Absent: the writes run through put and delete,
   * `batchConcurrency` keys at a time.
   */
  writeBatch?(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]>;
  readonly batchConcurrency?: number;
  applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]>;
  scanRaw(ns: string, options: RawScanOptions, segment: Segment): Promise<ScanPage<RawItem>>;
  /** Only where capabilities.fencing. */
  raiseFence?(epoch: number): Promise<number>;
}

/**
 * The Store of a Driver. Writes that take several round trips (applyIfNewer, drop, purge,
 * batches, raiseFence) honour a caller that has gone only before they start: once started they
 * run to their end, so `cancelled` always means that nothing was written.
 */
const firstOrNull = (rows: RawItem[]): RawItem | null => rows[0] ?? null;

export class KitStore<D extends Driver = Driver> implements Store {
  readonly kind: string;
  readonly description: string;
  readonly capabilities: Capabilities;
  readonly raiseFence?: (epoch: number) => Promise<number>;

  constructor(protected readonly driver: D) {
    this.kind = driver.kind;
    this.description = driver.description;
    this.capabilities = driver.capabilities;
    if (driver.capabilities.fencing) {
      this.raiseFence = async (epoch) => {
        checkEpoch(epoch);
        return started("raiseFence", () => driver.raiseFence!(epoch));
      };
    }
  }

  // get, readOne and put are not async functions: on every request each promise counts (more so
  // under the call's AsyncLocalStorage hooks). A refusal before the driver is a rejection all the same.

  get(ns: string, key: string): Promise<Item | null> {
    return this.readOne(ns, key).then(liveItem);
  }

  getRaw(ns: string, key: string): Promise<RawItem | null> {
    return this.readOne(ns, key);
  }

  private readOne(ns: string, key: string): Promise<RawItem | null> {
    try {
      throwIfCancelled("get");
      return this.driver.readOne ? this.driver.readOne(ns, key) : this.driver.readRaw(ns, [key]).then(firstOrNull);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async batchGet(ns: string, keys: string[]): Promise<Item[]> {
    return liveItems(await this.batchGetRaw(ns, keys));
  }

  async batchGetRaw(ns: string, keys: string[]): Promise<RawItem[]> {
    const unique = [...new Set(keys)];
    if (unique.length === 0) return [];
    throwIfCancelled("batchGet");
    return this.driver.readRaw(ns, unique);
  }

  put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number): Promise<bigint> {
    try {
      checkValueSize(this, key, value);
      checkEpoch(fence);
      throwIfCancelled("put");
      return this.driver.put(ns, key, value, condition, fence);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async delete(ns: string, key: string, condition?: Condition, fence?: number): Promise<DeleteResult> {
    checkEpoch(fence);
    throwIfCancelled("delete");
    return this.driver.delete(ns, key, condition, fence);
  }

  /** A write whose value this store cannot hold is that write's result (the batch rule); the others go to the driver. */
  async batchWrite(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    if (ops.length === 0) return [];
    const write = this.driver.writeBatch?.bind(this.driver);
    if (!write) return runBatch(this, ns, ops, this.driver.batchConcurrency ?? 1);
    const results: WriteOutcome[] = new Array(ops.length);
    const sendable: number[] = [];
    for (const [i, op] of ops.entries()) {
      const refused = await settle(op.key, () => {
        if (op.type === "put") checkValueSize(this, op.key, op.value);
        sendable.push(i);
        return { ok: true, key: op.key, version: 0n };
      });
      if (!refused.ok) results[i] = refused;
    }
    if (sendable.length > 0) {
      const sent = await started("batchWrite", () => write(ns, sendable.map((i) => ops[i]!)));
      sendable.forEach((i, j) => (results[i] = sent[j]!));
    }
    return results;
  }

  async scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>> {
    throwIfCancelled("scan");
    return this.driver.scan(ns, options);
  }

  async applyIfNewer(ns: string, items: RawItem[], fence?: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    checkEpoch(fence);
    for (const item of items) {
      checkValueSize(this, item.key, item.value);
      checkVersion(this, item);
    }
    return started("applyIfNewer", () => this.driver.applyIfNewer(ns, items, fence));
  }

  async scanRaw(ns: string, options: RawScanOptions): Promise<ScanPage<RawItem>> {
    const segment = checkSegment(this, options);
    throwIfCancelled("scanRaw");
    return this.driver.scanRaw(ns, options, segment);
  }

  async largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>> {
    throwIfCancelled("largeValues");
    return this.driver.largeValues(ns, options);
  }

  async namespaces(): Promise<string[]> {
    throwIfCancelled("namespaces");
    return this.driver.namespaces();
  }

  async estimateCount(ns: string): Promise<number> {
    throwIfCancelled("estimateCount");
    return this.driver.estimateCount(ns);
  }

  async dropNamespace(ns: string): Promise<void> {
    return started("dropNamespace", () => this.driver.dropNamespace(ns));
  }

  async purgeTombstones(ns: string): Promise<number> {
    return started("purgeTombstones", () => this.driver.purgeTombstones(ns));
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

/** A write of several round trips: refused `cancelled` before it starts, then run to its end whatever the caller does. */
function started<T>(op: string, run: () => Promise<T>): Promise<T> {
  throwIfCancelled(op);
  return detached(run);
}

/** defineStore(driver): the Store a driver makes. */
export const defineStore = <D extends Driver>(driver: D): KitStore<D> => new KitStore(driver);
