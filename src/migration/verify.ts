// The verifier compares both stores key by key (version and value bytes), re-checks
// mismatches to rule out writes in flight, and reports missing / stale / extra keys (rule 6).
// Two ordered stores are walked side by side (a merge join); otherwise each key of one store
// is looked up in the other.
import type { Store } from "../protocol/store.js";
import { compareKeys, CONTROL_NAMESPACE, type RawItem, type ScanPage } from "../protocol/types.js";
import { VERIFY_KEY } from "./control.js";
import { FIRST_PAGE_ITEMS, nextPageLimit } from "./pages.js";
import { systemClock, yieldToEventLoop, type Clock, type WorkContext } from "./work-context.js";
import { ROLES } from "./phases.js";

export interface VerifyReport {
  checked: number;
  in_sync: number;
  missing: number;
  stale: number;
  extra: number;
  repaired: number;
  done: boolean;
  sample_keys: string[];
}

export interface VerifyRecord {
  report: VerifyReport;
  namespace: string;
  /** The migration attempt and phase epoch it ran in: the READ_TARGET gate takes only its own. */
  attempt?: string;
  epoch?: number;
  /** Every replica's secondary-failure count when it started (failures since then void it). */
  failures?: Record<string, number>;
  startedAt: number;
  finishedAt?: number;
  by: string;
}

const RECHECKS = 3;
const RECHECK_DELAY_MS = 50;
const SAMPLE = 20;
/** Keys per page of an ordered scan (merge) and per page of a scan checked by lookups. */
const MERGE_PAGE = 1000;
const LOOKUP_PAGE = 500;


type Verdict = "in_sync" | "missing" | "stale" | "extra";

/** Compares one key: the source (primary) decides what the copy must hold. */
function judge(source: RawItem | null, copy: RawItem | null): Verdict {
  if (source === null) return copy === null ? "in_sync" : "extra";
  if (copy === null) return "missing";
  if (source.version !== copy.version) return "stale";
  const same = source.value === null || copy.value === null ? source.value === copy.value : source.value.equals(copy.value);
  return same ? "in_sync" : "stale";
}

/** The stored items (tombstones included) of these keys, by key. */
async function lookup(store: Store, ns: string, keys: string[]): Promise<Map<string, RawItem>> {
  const found = new Map<string, RawItem>();
  if (keys.length > 0) for (const item of await store.batchGetRaw(ns, keys)) found.set(item.key, item);
  return found;
}

/** Pages through a raw scan item by item, with the next page already on its way. */
class ScanCursor {
  private items: RawItem[] = [];
  private at = 0;
  private next: Promise<ScanPage<RawItem>> | undefined;
  private limit = FIRST_PAGE_ITEMS;

  constructor(private readonly store: Store, private readonly ns: string, private readonly pageSize: number) {
    this.next = this.read(undefined);
  }

  /** The current item (undefined at the end); loads the next page when this one is used up. */
  async head(): Promise<RawItem | undefined> {
    while (this.at >= this.items.length) {
      if (!this.next) return undefined;
      const page = await this.next;
      this.items = page.items;
      this.at = 0;
      this.limit = nextPageLimit(page.items, this.limit, this.pageSize);
      this.next = page.cursor === undefined ? undefined : this.read(page.cursor);
    }
    return this.items[this.at];
  }

  advance(): void {
    this.at++;
  }

  private read(cursor: string | undefined): Promise<ScanPage<RawItem>> {
    const page = this.store.scanRaw(this.ns, { limit: this.limit, cursor });
    page.catch(() => undefined); // reported when head() awaits it
    return page;
  }
}

interface Finding {
  key: string;
  verdict: Verdict;
  src: RawItem | null;
  cp: RawItem | null;
}

export async function verify(c: WorkContext, options: { namespace?: string; repair: boolean; onProgress?: (r: VerifyReport) => void; clock?: Clock }): Promise<VerifyReport> {
  const clock = options.clock ?? systemClock;
  const roles = ROLES[c.phase];
  // Before the primary moves the current store is the source; after, the target is.
  const source: Store = c.store(roles.primary);
  const copy: Store = c.store(roles.primary === "current" ? "target" : "current");
  const startedAt = clock.wall();
  const attempt = c.attempt;
  const epoch = c.epoch;
  const failures = await c.failureCounts();
  const report: VerifyReport = { checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, done: false, sample_keys: [] };
  const namespaces = options.namespace
    ? [options.namespace]
    : [...new Set([...(await source.namespaces()), ...(await copy.namespaces())])].filter((ns) => ns !== CONTROL_NAMESPACE).sort();
  let lastProgress = 0;

  const count = (ns: string, key: string, verdict: Verdict) => {
    report.checked++;
    report[verdict]++;
    if (verdict !== "in_sync" && report.sample_keys.length < SAMPLE) report.sample_keys.push(`${ns}/${key} (${verdict})`);
    if (options.onProgress && clock.wall() - lastProgress > 250) {
      lastProgress = clock.wall();
      options.onProgress({ ...report, sample_keys: [...report.sample_keys] });
    }
  };

  /**
   * A difference may be a write in flight between the two stores: re-read it a few times, a
   * page's worth together, before counting it; then repair what is still behind if asked.
   */
  const settle = async (ns: string, findings: Finding[]): Promise<void> => {
    let open = findings;
    for (let i = 0; i < RECHECKS && open.length > 0; i++) {
      await clock.sleep(RECHECK_DELAY_MS * (i + 1));
      const keys = open.map((f) => f.key);
      const [src, cp] = await Promise.all([lookup(source, ns, keys), lookup(copy, ns, keys)]);
      for (const f of open) {
        f.src = src.get(f.key) ?? null;
        f.cp = cp.get(f.key) ?? null;
        f.verdict = judge(f.src, f.cp);
      }
      open = open.filter((f) => f.verdict !== "in_sync");
    }
    const repairable = options.repair ? open.filter((f) => f.src !== null) : [];
    for (let i = 0; i < repairable.length; i += MERGE_PAGE) {
      const part = repairable.slice(i, i + MERGE_PAGE);
      const applied = await copy.applyIfNewer(ns, part.map((f) => f.src!));
      const fixed = part.filter((_, j) => applied[j]);
      const now = await lookup(copy, ns, fixed.map((f) => f.key));
      for (const f of fixed) {
        report.repaired++;
        f.verdict = judge(f.src, now.get(f.key) ?? null);
      }
    }
    for (const f of findings) count(ns, f.key, f.verdict);
  };

  for (const ns of namespaces) {
    if (source.capabilities.orderedScan && copy.capabilities.orderedScan) await mergeNamespace(ns);
    else await lookupNamespace(ns);
  }

  /** Both stores scan in key order: walk the two scans side by side, no per-key reads. */
  async function mergeNamespace(ns: string): Promise<void> {
    const a = new ScanCursor(source, ns, MERGE_PAGE);
    const b = new ScanCursor(copy, ns, MERGE_PAGE);
    let findings: Finding[] = [];
    let sinceYield = 0;
    for (;;) {
      const x = await a.head();
      const y = await b.head();
      if (x === undefined && y === undefined) break;
      const order = x === undefined ? 1 : y === undefined ? -1 : compareKeys(x.key, y.key);
      const src = order <= 0 ? x! : null;
      const cp = order >= 0 ? y! : null;
      if (order <= 0) a.advance();
      if (order >= 0) b.advance();
      const verdict = judge(src, cp);
      const key = (src ?? cp)!.key;
      if (verdict === "in_sync") count(ns, key, verdict);
      else findings.push({ key, verdict, src, cp });
      if (++sinceYield >= MERGE_PAGE) {
        sinceYield = 0;
        if (findings.length > 0) await settle(ns, findings);
        findings = [];
        await yieldToEventLoop();
      }
    }
    await settle(ns, findings);
  }

  /** Unordered scans (DynamoDB): look up each key of one store in the other, both ways. */
  async function lookupNamespace(ns: string): Promise<void> {
    // Every key of the source must be in the copy with the same version and value.
    let cursor: string | undefined;
    let limit = FIRST_PAGE_ITEMS;
    do {
      const page = await source.scanRaw(ns, { limit, cursor });
      limit = nextPageLimit(page.items, limit, LOOKUP_PAGE);
      const findings: Finding[] = [];
      const copies = await lookup(copy, ns, page.items.map((i) => i.key));
      for (const item of page.items) {
        const cp = copies.get(item.key) ?? null;
        const verdict = judge(item, cp);
        if (verdict === "in_sync") count(ns, item.key, verdict);
        else findings.push({ key: item.key, verdict, src: item, cp });
      }
      await settle(ns, findings);
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
    // Keys only the copy holds are extra.
    cursor = undefined;
    do {
      const page = await copy.scanRaw(ns, { limit, cursor });
      limit = nextPageLimit(page.items, limit, LOOKUP_PAGE);
      const sources = await lookup(source, ns, page.items.map((i) => i.key));
      await settle(
        ns,
        page.items.filter((item) => !sources.has(item.key)).map((item) => ({ key: item.key, verdict: "extra" as const, src: null, cp: item })),
      );
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
  }

  report.done = true;
  await c.control.write<VerifyRecord>(VERIFY_KEY, { report, namespace: options.namespace ?? "", attempt, epoch, failures, startedAt, finishedAt: clock.wall(), by: c.replicaId });
  c.publishVerify({ report, namespace: options.namespace ?? "", startedAt, by: c.replicaId });
  c.logger.info("verification done", { ...report, sample_keys: report.sample_keys.slice(0, 5) });
  options.onProgress?.(report);
  return report;
}
