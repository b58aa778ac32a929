// The verifier compares both stores key by key (version and value bytes), re-checks
// mismatches to rule out writes in flight, and reports missing / stale / extra keys (rule 6).
// Two ordered stores are walked side by side (a merge join); otherwise each key of one store
// is looked up in the other.
import type { Store } from "../protocol/store.js";
import { compareKeys, CONTROL_NAMESPACE, type RawItem, type ScanPage } from "../protocol/types.js";
import { VERIFY_KEY } from "./control.js";
import type { MigrationController } from "./controller.js";
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
  startedAt: number;
  finishedAt?: number;
  by: string;
}

const RECHECKS = 3;
const RECHECK_DELAY_MS = 50;
const SAMPLE = 20;
/** Keys per page of an ordered scan (merge) and per page of a scan checked by lookups. */
const MERGE_PAGE = 1000;
const LOOKUP_PAGE = 200;
const LOOKUPS_IN_FLIGHT = 16;

/** Synchronous backends (SQLite) never yield on their own: let the sidecar serve between pages. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

type Verdict = "in_sync" | "missing" | "stale" | "extra";

/** Compares one key: the source (primary) decides what the copy must hold. */
function judge(source: RawItem | null, copy: RawItem | null): Verdict {
  if (source === null) return copy === null ? "in_sync" : "extra";
  if (copy === null) return "missing";
  if (source.version !== copy.version) return "stale";
  const same = source.value === null || copy.value === null ? source.value === copy.value : source.value.equals(copy.value);
  return same ? "in_sync" : "stale";
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

/** Pages through a raw scan item by item, with the next page already on its way. */
class ScanCursor {
  private items: RawItem[] = [];
  private at = 0;
  private next: Promise<ScanPage<RawItem>> | undefined;

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
      this.next = page.cursor === undefined ? undefined : this.read(page.cursor);
    }
    return this.items[this.at];
  }

  advance(): void {
    this.at++;
  }

  private read(cursor: string | undefined): Promise<ScanPage<RawItem>> {
    const page = this.store.scanRaw(this.ns, { limit: this.pageSize, cursor });
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

export async function verify(c: MigrationController, options: { namespace?: string; repair: boolean; onProgress?: (r: VerifyReport) => void }): Promise<VerifyReport> {
  const roles = ROLES[c.phase];
  // Before the primary moves the current store is the source; after, the target is.
  const source: Store = c.store(roles.primary);
  const copy: Store = c.store(roles.primary === "current" ? "target" : "current");
  const startedAt = Date.now();
  const report: VerifyReport = { checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, done: false, sample_keys: [] };
  const namespaces = options.namespace
    ? [options.namespace]
    : [...new Set([...(await source.namespaces()), ...(await copy.namespaces())])].filter((ns) => ns !== CONTROL_NAMESPACE).sort();
  let lastProgress = 0;

  const count = (ns: string, key: string, verdict: Verdict) => {
    report.checked++;
    report[verdict]++;
    if (verdict !== "in_sync" && report.sample_keys.length < SAMPLE) report.sample_keys.push(`${ns}/${key} (${verdict})`);
    if (options.onProgress && Date.now() - lastProgress > 250) {
      lastProgress = Date.now();
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
      await new Promise((r) => setTimeout(r, RECHECK_DELAY_MS * (i + 1)));
      await mapLimit(open, LOOKUPS_IN_FLIGHT, async (f) => {
        [f.src, f.cp] = await Promise.all([source.getRaw(ns, f.key), copy.getRaw(ns, f.key)]);
        f.verdict = judge(f.src, f.cp);
      });
      open = open.filter((f) => f.verdict !== "in_sync");
    }
    const repairable = options.repair ? open.filter((f) => f.src !== null) : [];
    for (let i = 0; i < repairable.length; i += MERGE_PAGE) {
      const part = repairable.slice(i, i + MERGE_PAGE);
      const applied = await copy.applyIfNewer(ns, part.map((f) => f.src!));
      await mapLimit(part.filter((_, j) => applied[j]), LOOKUPS_IN_FLIGHT, async (f) => {
        report.repaired++;
        f.verdict = judge(f.src, await copy.getRaw(ns, f.key));
      });
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
    do {
      const page = await source.scanRaw(ns, { limit: LOOKUP_PAGE, cursor });
      const findings: Finding[] = [];
      await mapLimit(page.items, LOOKUPS_IN_FLIGHT, async (item) => {
        const cp = await copy.getRaw(ns, item.key);
        const verdict = judge(item, cp);
        if (verdict === "in_sync") count(ns, item.key, verdict);
        else findings.push({ key: item.key, verdict, src: item, cp });
      });
      await settle(ns, findings);
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
    // Keys only the copy holds are extra.
    cursor = undefined;
    do {
      const page = await copy.scanRaw(ns, { limit: LOOKUP_PAGE, cursor });
      const findings: Finding[] = [];
      await mapLimit(page.items, LOOKUPS_IN_FLIGHT, async (item) => {
        if ((await source.getRaw(ns, item.key)) === null) findings.push({ key: item.key, verdict: "extra", src: null, cp: item });
      });
      await settle(ns, findings);
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
  }

  report.done = true;
  await c.control.write<VerifyRecord>(VERIFY_KEY, { report, namespace: options.namespace ?? "", startedAt, finishedAt: Date.now(), by: c.replicaId });
  c.publishVerify({ report, namespace: options.namespace ?? "", startedAt, by: c.replicaId });
  c.logger.info("verification done", { ...report, sample_keys: report.sample_keys.slice(0, 5) });
  options.onProgress?.(report);
  return report;
}
