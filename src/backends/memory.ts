// The memory backend: a Map per namespace. Not durable; for tests, demos and benchmarks.
// Every method runs to its end without yielding, so a check and its write are one step.
import { invalidArgument } from "../protocol/errors.js";
import { pageOf, keyAfter, type Segment } from "../protocol/paging.js";
import { planWrite, refuseIfFenced } from "../protocol/semantics.js";
import type { Capabilities } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize } from "../protocol/types.js";
import { compareKeys, DEFAULT_MAX_VALUE_BYTES } from "../protocol/types.js";
import { parseOptions } from "./kit.js";
import { KitStore, type Driver } from "./store.js";

type Table = Map<string, RawItem>;

class MemoryDriver implements Driver {
  readonly kind = "memory";
  readonly description = "memory:";
  readonly capabilities: Capabilities = { orderedScan: true, segmentedScan: false, maxValueBytes: () => DEFAULT_MAX_VALUE_BYTES * 16, durable: false, fencing: true };
  private readonly data = new Map<string, Table>();
  private fence = 0;

  private table(ns: string): Table {
    let t = this.data.get(ns);
    if (!t) this.data.set(ns, (t = new Map()));
    return t;
  }

  private raw(ns: string, key: string): RawItem | null {
    return this.data.get(ns)?.get(key) ?? null;
  }

  async readOne(ns: string, key: string): Promise<RawItem | null> {
    return this.raw(ns, key);
  }

  async readRaw(ns: string, keys: string[]): Promise<RawItem[]> {
    return keys.flatMap((k) => this.raw(ns, k) ?? []);
  }

  private write(ns: string, op: Parameters<typeof planWrite>[1], fence: number | undefined) {
    refuseIfFenced(this.description, fence, this.fence);
    const plan = planWrite(this.raw(ns, op.key), op);
    const w = plan.write;
    if (w) this.table(ns).set(op.key, { key: w.key, value: w.value && Buffer.from(w.value), version: w.version });
    return plan.outcome;
  }

  async put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined): Promise<bigint> {
    return this.write(ns, { type: "put", key, value, condition }, fence).version;
  }

  async delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined): Promise<DeleteResult> {
    const r = this.write(ns, { type: "delete", key, condition }, fence);
    return { deleted: r.deleted === true, version: r.version };
  }

  /** Keys in order after `after`, with the prefix, that `keep` accepts: limit + 1 of them. */
  private keysAfter(ns: string, after: string, prefix: string, limit: number, keep: (r: RawItem) => boolean): RawItem[] {
    const t = this.data.get(ns);
    if (!t) return [];
    const keys = [...t.keys()].filter((k) => k.startsWith(prefix) && compareKeys(k, after) > 0 && keep(t.get(k)!)).sort(compareKeys);
    return keys.slice(0, limit + 1).map((k) => t.get(k)!);
  }

  async scan(ns: string, options: ScanOptions): Promise<ScanPage<Item>> {
    const rows = this.keysAfter(ns, keyAfter(options.cursor), options.prefix ?? "", options.limit, (r) => r.value !== null);
    return pageOf(rows as Item[], options.limit);
  }

  async applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]> {
    refuseIfFenced(this.description, fence, this.fence);
    return items.map((item) => {
      const stored = this.raw(ns, item.key);
      if (stored && stored.version >= item.version) return false;
      this.table(ns).set(item.key, { key: item.key, value: item.value === null ? null : Buffer.from(item.value), version: item.version });
      return true;
    });
  }

  async scanRaw(ns: string, options: RawScanOptions, segment: Segment): Promise<ScanPage<RawItem>> {
    return pageOf(this.keysAfter(ns, keyAfter(options.cursor, segment), "", options.limit, () => true), options.limit, segment);
  }

  async largeValues(ns: string, options: LargeValueOptions): Promise<ScanPage<ValueSize>> {
    const rows = this.keysAfter(ns, keyAfter(options.cursor), "", options.limit, (r) => r.value !== null && r.value.length > options.minBytes);
    return pageOf(rows.map((r) => ({ key: r.key, bytes: r.value!.length })), options.limit);
  }

  async namespaces(): Promise<string[]> {
    return [...this.data.entries()].filter(([, t]) => t.size > 0).map(([ns]) => ns).sort();
  }

  async estimateCount(ns: string): Promise<number> {
    return this.data.get(ns)?.size ?? 0;
  }

  async dropNamespace(ns: string): Promise<void> {
    this.data.delete(ns);
  }

  async purgeTombstones(ns: string): Promise<number> {
    const t = this.data.get(ns);
    let purged = 0;
    for (const [k, s] of t ?? []) if (s.value === null && t!.delete(k)) purged++;
    return purged;
  }

  async raiseFence(epoch: number): Promise<number> {
    this.fence = Math.max(this.fence, epoch);
    return this.fence;
  }

  async close(): Promise<void> {}
}

export class MemoryStore extends KitStore<MemoryDriver> {
  declare readonly raiseFence: (epoch: number) => Promise<number>; // memory declares fencing
  constructor() {
    super(new MemoryDriver());
  }
}

export function createMemoryStore(url: URL): MemoryStore {
  if (url.pathname && url.pathname !== "") throw invalidArgument("store", `memory: takes no path (got ${JSON.stringify(url.href)})`);
  parseOptions("memory", url, {});
  return new MemoryStore();
}
