// The verifier compares both stores key by key (version and value bytes), re-checks
// mismatches to rule out writes in flight, and reports missing / stale / extra keys (rule 6).
// Two ordered stores are walked side by side (a merge join); otherwise each key of one store
// is looked up in the other.
import type { Caller } from "../protocol/call.js";
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


export type Verdict = "in_sync" | "missing" | "stale" | "extra";

/** Compares one key: the source (primary) decides what the copy must hold. */
function judge(source: RawItem | null, copy: RawItem | null): Verdict {
  if (source === null) return copy === null ? "in_sync" : "extra";
  if (copy === null) return "missing";
  if (source.version !== copy.version) return "stale";
  const same = source.value === null || copy.value === null ? source.value === copy.value : source.value.equals(copy.value);
  return same ? "in_sync" : "stale";
}

/** The stored items (tombstones included) of these keys, by key. */
async function lookup(store: Store, ns: string, keys: string[], call: Caller | undefined): Promise<Map<string, RawItem>> {
  const found = new Map<string, RawItem>();
  if (keys.length > 0) for (const item of await store.batchGetRaw(ns, keys, call)) found.set(item.key, item);
  return found;
}

/** Pages through a raw scan item by item, with the next page already on its way. */
class ScanCursor {
  private items: RawItem[] = [];
  private at = 0;
  private next: Promise<ScanPage<RawItem>> | undefined;
  private limit = FIRST_PAGE_ITEMS;

  constructor(private readonly store: Store, private readonly ns: string, private readonly pageSize: number, private readonly call: Caller | undefined) {
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
    const page = this.store.scanRaw(this.ns, { limit: this.limit, cursor }, this.call);
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

/** The counts of a verification (or of one of its segments), with a sample of the differing keys. */
export class Tally {
  readonly report: VerifyReport = { checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, done: false, sample_keys: [] };

  constructor(private readonly onCount?: () => void) {}

  count(ns: string, key: string, verdict: Verdict): void {
    this.report.checked++;
    this.report[verdict]++;
    if (verdict !== "in_sync" && this.report.sample_keys.length < SAMPLE) this.report.sample_keys.push(`${ns}/${key} (${verdict})`);
    this.onCount?.();
  }
}

/** The two stores compared, and what to do with a difference. */
export interface Comparison {
  source: Store;
  copy: Store;
  repair: boolean;
  clock: Clock;
  tally: Tally;
  /** The Verify caller: the comparison's reads (and a repair, before it starts) stop once it has gone. Absent in segments. */
  call?: Caller;
}

/**
 * A difference may be a write in flight between the two stores: re-read it a few times, a
 * page's worth together, before counting it; then repair what is still behind if asked.
 */
async function settle(k: Comparison, ns: string, findings: Finding[]): Promise<void> {
  const { source, copy, clock } = k;
  let open = findings;
  for (let i = 0; i < RECHECKS && open.length > 0; i++) {
    await clock.sleep(RECHECK_DELAY_MS * (i + 1));
    const keys = open.map((f) => f.key);
    const [src, cp] = await Promise.all([lookup(source, ns, keys, k.call), lookup(copy, ns, keys, k.call)]);
    for (const f of open) {
      f.src = src.get(f.key) ?? null;
      f.cp = cp.get(f.key) ?? null;
      f.verdict = judge(f.src, f.cp);
    }
    open = open.filter((f) => f.verdict !== "in_sync");
  }
  const repairable = k.repair ? open.filter((f) => f.src !== null) : [];
  for (let i = 0; i < repairable.length; i += MERGE_PAGE) {
    const part = repairable.slice(i, i + MERGE_PAGE);
    const applied = await copy.applyIfNewer(ns, part.map((f) => f.src!), undefined, k.call);
    const fixed = part.filter((_, j) => applied[j]);
    const now = await lookup(copy, ns, fixed.map((f) => f.key), k.call);
    for (const f of fixed) {
      k.tally.report.repaired++;
      f.verdict = judge(f.src, now.get(f.key) ?? null);
    }
  }
  for (const f of findings) k.tally.count(ns, f.key, f.verdict);
}

/** A page of the source: each of its keys must be in the copy with the same version and value. */
export async function checkSourcePage(k: Comparison, ns: string, items: RawItem[]): Promise<void> {
  const findings: Finding[] = [];
  const copies = await lookup(k.copy, ns, items.map((i) => i.key), k.call);
  for (const item of items) {
    const cp = copies.get(item.key) ?? null;
    const verdict = judge(item, cp);
    if (verdict === "in_sync") k.tally.count(ns, item.key, verdict);
    else findings.push({ key: item.key, verdict, src: item, cp });
  }
  await settle(k, ns, findings);
}

/** A page of the copy: its keys the source does not hold are extra (the others are the source pages' to count). */
export async function checkCopyPage(k: Comparison, ns: string, items: RawItem[]): Promise<void> {
  const sources = await lookup(k.source, ns, items.map((i) => i.key), k.call);
  await settle(
    k,
    ns,
    items.filter((item) => !sources.has(item.key)).map((item) => ({ key: item.key, verdict: "extra" as const, src: null, cp: item })),
  );
}

/** Both stores scan in key order: walk the two scans side by side, no per-key reads. */
async function mergeNamespace(k: Comparison, ns: string): Promise<void> {
  const a = new ScanCursor(k.source, ns, MERGE_PAGE, k.call);
  const b = new ScanCursor(k.copy, ns, MERGE_PAGE, k.call);
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
    if (verdict === "in_sync") k.tally.count(ns, key, verdict);
    else findings.push({ key, verdict, src, cp });
    if (++sinceYield >= MERGE_PAGE) {
      sinceYield = 0;
      if (findings.length > 0) await settle(k, ns, findings);
      findings = [];
      await yieldToEventLoop();
    }
  }
  await settle(k, ns, findings);
}

/** Unordered scans (DynamoDB): look up each key of one store in the other, both ways. */
async function lookupNamespace(k: Comparison, ns: string): Promise<void> {
  for (const [store, check] of [[k.source, checkSourcePage], [k.copy, checkCopyPage]] as const) {
    let cursor: string | undefined;
    let limit = FIRST_PAGE_ITEMS;
    do {
      const page = await store.scanRaw(ns, { limit, cursor }, k.call);
      limit = nextPageLimit(page.items, limit, LOOKUP_PAGE);
      await check(k, ns, page.items);
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
  }
}

/** Namespaces to verify: the one asked for, or every namespace either store holds. */
export async function namespacesOf(source: Store, copy: Store, namespace?: string, call?: Caller): Promise<string[]> {
  return namespace ? [namespace] : [...new Set([...(await source.namespaces(call)), ...(await copy.namespaces(call))])].filter((ns) => ns !== CONTROL_NAMESPACE).sort();
}

export interface VerifyOptions {
  namespace?: string;
  repair: boolean;
  onProgress?: (r: VerifyReport) => void;
  clock?: Clock;
  /**
   * The Verify caller: once it has gone, this process's comparison stops at its next store read
   * (`cancelled`) and no record is written. Segments spread to other replicas are not given it.
   */
  call?: Caller;
  /**
   * Spreads the work over every replica with the target (segments with fenced leases, like the
   * backfill): given here by the backfill's segment runner; absent = this process alone.
   */
  spread?: (k: Omit<Comparison, "tally">, namespaces: string[], onProgress?: (r: VerifyReport) => void) => Promise<VerifyReport | undefined>;
}

export async function verify(c: WorkContext, options: VerifyOptions): Promise<VerifyReport> {
  const clock = options.clock ?? systemClock;
  const roles = ROLES[c.phase];
  // Before the primary moves the current store is the source; after, the target is.
  const source: Store = c.store(roles.primary);
  const copy: Store = c.store(roles.primary === "current" ? "target" : "current");
  const startedAt = clock.wall();
  const attempt = c.attempt;
  const epoch = c.epoch;
  const failures = await c.failureCounts();
  const namespaces = await namespacesOf(source, copy, options.namespace, options.call);
  let lastProgress = 0;
  const tally = new Tally(() => {
    if (options.onProgress && clock.wall() - lastProgress > 250) {
      lastProgress = clock.wall();
      options.onProgress({ ...tally.report, sample_keys: [...tally.report.sample_keys] });
    }
  });
  const k: Comparison = { source, copy, repair: options.repair, clock, tally, call: options.call };
  const spread = options.spread ?? c.backfill?.spreadVerify;
  let report = await spread?.({ source, copy, repair: options.repair, clock }, namespaces, options.onProgress);
  if (!report) {
    for (const ns of namespaces) {
      if (source.capabilities.orderedScan && copy.capabilities.orderedScan) await mergeNamespace(k, ns);
      else await lookupNamespace(k, ns);
    }
    report = tally.report;
  }
  report.done = true;
  await c.control.write<VerifyRecord>(VERIFY_KEY, { report, namespace: options.namespace ?? "", attempt, epoch, failures, startedAt, finishedAt: clock.wall(), by: c.replicaId }, options.call);
  c.publishVerify({ report, namespace: options.namespace ?? "", startedAt, by: c.replicaId });
  c.logger.info("verification done", { ...report, sample_keys: report.sample_keys.slice(0, 5) });
  options.onProgress?.(report);
  return report;
}
