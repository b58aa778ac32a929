// The memory backend: a Map per namespace. Not durable; for tests, demos and benchmarks.
import { invalidArgument, unsupported } from "../protocol/errors.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import { DEFAULT_MAX_VALUE_BYTES } from "../protocol/types.js";
import { checkCondition, checkEpoch, checkValueSize, compareKeys, decodeCursor, encodeCursor, isKeyCursor, liveItems, nextVersion, refuseIfFenced } from "./common.js";
import { runBatch } from "./batch.js";

interface Stored {
  value: Buffer | null;
  version: bigint;
}

export class MemoryStore implements Store {
  readonly kind = "memory";
  readonly description = "memory:";
  readonly capabilities: Capabilities = {
    orderedScan: true,
    segmentedScan: false,
    maxValueBytes: () => DEFAULT_MAX_VALUE_BYTES * 16,
    durable: false,
    fencing: true, // every method runs to its end without yielding, so check and write are one step
  };
  private readonly data = new Map<string, Map<string, Stored>>();
  private fence = 0;

  private table(ns: string, create: boolean): Map<string, Stored> | undefined {
    let t = this.data.get(ns);
    if (!t && create) this.data.set(ns, (t = new Map()));
    return t;
  }

  private raw(ns: string, key: string): RawItem | null {
    const s = this.table(ns, false)?.get(key);
    return s ? { key, value: s.value, version: s.version } : null;
  }

  async get(ns: string, key: string): Promise<Item | null> {
    const s = this.table(ns, false)?.get(key);
    return s && s.value !== null ? { key, value: s.value, version: s.version } : null;
  }

  async batchGetRaw(ns: string, keys: string[]): Promise<RawItem[]> {
    return [...new Set(keys)].map((k) => this.raw(ns, k)).filter((r): r is RawItem => r !== null);
  }

  async batchGet(ns: string, keys: string[]): Promise<Item[]> {
    return liveItems(await this.batchGetRaw(ns, keys));
  }

  async put(ns: string, key: string, value: Buffer, condition?: Condition, fence?: number): Promise<bigint> {
    checkValueSize(this, key, value);
    this.checkFence(fence);
    const stored = this.raw(ns, key);
    checkCondition(key, stored, condition);
    const version = nextVersion(stored);
    this.table(ns, true)!.set(key, { value: Buffer.from(value), version });
    return version;
  }

  async delete(ns: string, key: string, condition?: Condition, fence?: number): Promise<DeleteResult> {
    this.checkFence(fence);
    const stored = this.raw(ns, key);
    checkCondition(key, stored, condition);
    if (!stored || stored.value === null) return { deleted: false, version: stored?.version ?? 0n };
    const version = stored.version + 1n;
    this.table(ns, true)!.set(key, { value: null, version });
    return { deleted: true, version };
  }

  batchWrite(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    return runBatch(this, ns, ops, 1);
  }

  async scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>> {
    const out: Item[] = [];
    let cursor: string | undefined = options.cursor;
    // Tombstones are skipped, so keep reading raw pages until the page is full or the namespace ends.
    do {
      const page = await this.scanRaw(ns, { limit: options.limit, cursor }, options.prefix);
      for (const r of page.items) if (r.value !== null && out.length < options.limit) out.push({ key: r.key, value: r.value, version: r.version });
      cursor = out.length >= options.limit && page.items.length > 0 ? encodeCursor({ k: out[out.length - 1]!.key }) : page.cursor;
    } while (cursor !== undefined && out.length < options.limit);
    return { items: out, cursor };
  }

  async getRaw(ns: string, key: string): Promise<RawItem | null> {
    return this.raw(ns, key);
  }

  async applyIfNewer(ns: string, items: RawItem[], fence?: number): Promise<boolean[]> {
    if (items.length > 0) this.checkFence(fence);
    return items.map((item) => {
      const stored = this.table(ns, false)?.get(item.key);
      if (stored && stored.version >= item.version) return false;
      this.table(ns, true)!.set(item.key, { value: item.value === null ? null : Buffer.from(item.value), version: item.version });
      return true;
    });
  }

  async scanRaw(ns: string, options: RawScanOptions, prefix = ""): Promise<ScanPage<RawItem>> {
    if ((options.totalSegments ?? 1) > 1) throw unsupported(this.kind, "segmented scans");
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, isKeyCursor).k;
    const t = this.table(ns, false);
    if (!t) return { items: [] };
    const keys = [...t.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || compareKeys(k, after) > 0)).sort(compareKeys);
    const items = keys.slice(0, options.limit).map((k) => ({ key: k, ...t.get(k)! }));
    const more = keys.length > options.limit;
    return { items, cursor: more ? encodeCursor({ k: items[items.length - 1]!.key }) : undefined };
  }

  async largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>> {
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, isKeyCursor).k;
    const found: ValueSize[] = [];
    for (const [key, s] of this.table(ns, false) ?? []) {
      if (s.value !== null && s.value.length > options.minBytes && (after === undefined || compareKeys(key, after) > 0)) found.push({ key, bytes: s.value.length });
    }
    const items = found.sort((a, b) => compareKeys(a.key, b.key)).slice(0, options.limit);
    return { items, cursor: found.length > options.limit ? encodeCursor({ k: items[items.length - 1]!.key }) : undefined };
  }

  async namespaces(): Promise<string[]> {
    return [...this.data.entries()].filter(([, t]) => t.size > 0).map(([ns]) => ns).sort();
  }

  async estimateCount(ns: string): Promise<number> {
    return this.table(ns, false)?.size ?? 0;
  }

  async dropNamespace(ns: string): Promise<void> {
    this.data.delete(ns);
  }

  async purgeTombstones(ns: string): Promise<number> {
    const t = this.table(ns, false);
    let purged = 0;
    for (const [k, s] of t ?? []) if (s.value === null && t!.delete(k)) purged++;
    return purged;
  }

  async raiseFence(epoch: number): Promise<number> {
    checkEpoch(epoch);
    this.fence = Math.max(this.fence, epoch);
    return this.fence;
  }

  private checkFence(epoch: number | undefined): void {
    checkEpoch(epoch);
    refuseIfFenced(this.description, epoch, this.fence);
  }

  async close(): Promise<void> {}
}

export function createMemoryStore(url: URL): MemoryStore {
  if (url.pathname && url.pathname !== "") throw invalidArgument("store", `memory: takes no path (got ${JSON.stringify(url.href)})`);
  return new MemoryStore();
}
