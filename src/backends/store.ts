// A Store defined from the few operations a database must supply (unstorage's defineDriver is
// the model): KitStore derives the client reads from raw reads, runs batches, checks what every
// store checks before any call (value sizes, versions, fence epochs, segments, cursors' segment)
// and honours a caller that has gone before it starts anything.
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { runBatch, settle } from "../protocol/batch.js";
import { checkSegment, type Segment } from "../protocol/paging.js";
import { checkEpoch, checkValueSize, checkVersion, liveItem, liveItems } from "../protocol/semantics.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";

/**
 * What a backend supplies. Inputs arrive checked: keys distinct, sizes, versions, epochs and segments valid.
 * `call` (last argument, where there is one): the caller, already checked by KitStore; a driver
 * hands it to its call envelope (which stops retrying once it has gone) and checks it again
 * where it waits before it sends (a pooled connection). The writes of several round trips
 * (applyIfNewer, writeBatch, dropNamespace, purgeTombstones, raiseFence) get none: once started
 * they run to their end.
 */
export interface Driver extends Pick<Store, "kind" | "description" | "capabilities" | "close"> {
  /** The raw items (tombstones included) of distinct keys; absent keys are left out; any order. */
  readRaw(ns: string, keys: string[], call?: Caller): Promise<RawItem[]>;
  /** One key's raw item (default: readRaw of one key). */
  readOne?(ns: string, key: string, call?: Caller): Promise<RawItem | null>;
  put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined, call?: Caller): Promise<bigint>;
  delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined, call?: Caller): Promise<DeleteResult>;
  scan(ns: string, options: ScanOptions, call?: Caller): Promise<ScanPage<Item>>;
  largeValues(ns: string, options: LargeValueOptions, call?: Caller): Promise<ScanPage<ValueSize>>;
  namespaces(call?: Caller): Promise<string[]>;
  estimateCount(ns: string, call?: Caller): Promise<number>;
  dropNamespace(ns: string): Promise<void>;
  purgeTombstones(ns: string): Promise<number>;
  /**
   * A whole batch at once (one transaction, one script), each write's outcome settled with
   * settle()/settleSync() (protocol/batch.ts). Absent: the writes run through put and delete,
   * `batchConcurrency` keys at a time.
   */
  writeBatch?(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]>;
  readonly batchConcurrency?: number;
  applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]>;
  scanRaw(ns: string, options: RawScanOptions, segment: Segment, call?: Caller): Promise<ScanPage<RawItem>>;
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
  readonly raiseFence?: (epoch: number, call?: Caller) => Promise<number>;

  constructor(protected readonly driver: D) {
    this.kind = driver.kind;
    this.description = driver.description;
    this.capabilities = driver.capabilities;
    if (driver.capabilities.fencing) {
      this.raiseFence = async (epoch, call) => {
        checkEpoch(epoch);
        return started("raiseFence", call, () => driver.raiseFence!(epoch));
      };
    }
  }

  // get, readOne and put are not async functions: on every request each promise counts (an async
  // function's own promise and its await's microtask). A refusal before the driver is a rejection all the same.

  get(ns: string, key: string, call?: Caller): Promise<Item | null> {
    return this.readOne(ns, key, call).then(liveItem);
  }

  getRaw(ns: string, key: string, call?: Caller): Promise<RawItem | null> {
    return this.readOne(ns, key, call);
  }

  private readOne(ns: string, key: string, call: Caller | undefined): Promise<RawItem | null> {
    try {
      throwIfCancelled("get", call);
      return this.driver.readOne ? this.driver.readOne(ns, key, call) : this.driver.readRaw(ns, [key], call).then(firstOrNull);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async batchGet(ns: string, keys: string[], call?: Caller): Promise<Item[]> {
    return liveItems(await this.batchGetRaw(ns, keys, call));
  }

  async batchGetRaw(ns: string, keys: string[], call?: Caller): Promise<RawItem[]> {
    const unique = [...new Set(keys)];
    if (unique.length === 0) return [];
    throwIfCancelled("batchGet", call);
    return this.driver.readRaw(ns, unique, call);
  }

  put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number, call?: Caller): Promise<bigint> {
    try {
      checkValueSize(this, key, value);
      checkEpoch(fence);
      throwIfCancelled("put", call);
      return this.driver.put(ns, key, value, condition, fence, call);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async delete(ns: string, key: string, condition?: Condition, fence?: number, call?: Caller): Promise<DeleteResult> {
    checkEpoch(fence);
    throwIfCancelled("delete", call);
    return this.driver.delete(ns, key, condition, fence, call);
  }

  /** A write whose value this store cannot hold is that write's result (the batch rule); the others go to the driver. */
  async batchWrite(ns: string, ops: WriteOp[], call?: Caller): Promise<WriteOutcome[]> {
    if (ops.length === 0) return [];
    const write = this.driver.writeBatch?.bind(this.driver);
    if (!write) return runBatch(this, ns, ops, this.driver.batchConcurrency ?? 1, call);
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
      const sent = await started("batchWrite", call, () => write(ns, sendable.map((i) => ops[i]!)));
      sendable.forEach((i, j) => (results[i] = sent[j]!));
    }
    return results;
  }

  async scan(ns: string, options: ScanOptions, call?: Caller): Promise<ScanPage<Item>> {
    throwIfCancelled("scan", call);
    return this.driver.scan(ns, options, call);
  }

  async applyIfNewer(ns: string, items: RawItem[], fence?: number, call?: Caller): Promise<boolean[]> {
    if (items.length === 0) return [];
    checkEpoch(fence);
    for (const item of items) {
      checkValueSize(this, item.key, item.value);
      checkVersion(this, item);
    }
    return started("applyIfNewer", call, () => this.driver.applyIfNewer(ns, items, fence));
  }

  async scanRaw(ns: string, options: RawScanOptions, call?: Caller): Promise<ScanPage<RawItem>> {
    const segment = checkSegment(this, options);
    throwIfCancelled("scanRaw", call);
    return this.driver.scanRaw(ns, options, segment, call);
  }

  async largeValues(ns: string, options: LargeValueOptions, call?: Caller): Promise<ScanPage<ValueSize>> {
    throwIfCancelled("largeValues", call);
    return this.driver.largeValues(ns, options, call);
  }

  async namespaces(call?: Caller): Promise<string[]> {
    throwIfCancelled("namespaces", call);
    return this.driver.namespaces(call);
  }

  async estimateCount(ns: string, call?: Caller): Promise<number> {
    throwIfCancelled("estimateCount", call);
    return this.driver.estimateCount(ns, call);
  }

  async dropNamespace(ns: string, call?: Caller): Promise<void> {
    return started("dropNamespace", call, () => this.driver.dropNamespace(ns));
  }

  async purgeTombstones(ns: string, call?: Caller): Promise<number> {
    return started("purgeTombstones", call, () => this.driver.purgeTombstones(ns));
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

/** A write of several round trips: refused `cancelled` before it starts, then run to its end whatever the caller does (the driver never sees the caller). */
function started<T>(op: string, call: Caller | undefined, run: () => Promise<T>): Promise<T> {
  throwIfCancelled(op, call);
  return run();
}

/** defineStore(driver): the Store a driver makes. */
export const defineStore = <D extends Driver>(driver: D): KitStore<D> => new KitStore(driver);
