// The verifier compares both stores key by key (version and value digest), re-checks
// mismatches to rule out writes in flight, and reports missing / stale / extra keys (rule 6).
import { createHash } from "node:crypto";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, type RawItem } from "../protocol/types.js";
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
const PAGE = 200;
const LOOKUPS_IN_FLIGHT = 16;

/** Synchronous backends (SQLite) never yield on their own: let the sidecar serve between pages. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

const digest = (v: Buffer | null) => (v === null ? "tombstone" : createHash("sha256").update(v).digest("hex"));

type Verdict = "in_sync" | "missing" | "stale" | "extra";

/** Compares one key: the source (primary) decides what the copy must hold. */
function judge(source: RawItem | null, copy: RawItem | null): Verdict {
  if (source === null) return copy === null ? "in_sync" : "extra";
  if (copy === null) return "missing";
  return source.version === copy.version && digest(source.value) === digest(copy.value) ? "in_sync" : "stale";
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

  const settle = async (ns: string, key: string, first: Verdict, src: RawItem | null, cp: RawItem | null): Promise<Verdict> => {
    let verdict = first;
    for (let i = 0; i < RECHECKS && verdict !== "in_sync"; i++) {
      await new Promise((r) => setTimeout(r, RECHECK_DELAY_MS * (i + 1)));
      [src, cp] = await Promise.all([source.getRaw(ns, key), copy.getRaw(ns, key)]);
      verdict = judge(src, cp);
    }
    if (verdict !== "in_sync" && options.repair && src !== null) {
      const [applied] = await copy.applyIfNewer(ns, [src]);
      if (applied) {
        report.repaired++;
        verdict = judge(src, await copy.getRaw(ns, key));
      }
    }
    return verdict;
  };

  const count = (ns: string, key: string, verdict: Verdict) => {
    report.checked++;
    report[verdict]++;
    if (verdict !== "in_sync" && report.sample_keys.length < SAMPLE) report.sample_keys.push(`${ns}/${key} (${verdict})`);
    if (options.onProgress && Date.now() - lastProgress > 250) {
      lastProgress = Date.now();
      options.onProgress({ ...report, sample_keys: [...report.sample_keys] });
    }
  };

  for (const ns of namespaces) {
    // Every key of the source must be in the copy with the same version and value.
    let cursor: string | undefined;
    do {
      const page = await source.scanRaw(ns, { limit: PAGE, cursor });
      const verdicts = await mapLimit(page.items, LOOKUPS_IN_FLIGHT, async (item) => {
        const cp = await copy.getRaw(ns, item.key);
        const v = judge(item, cp);
        return v === "in_sync" ? v : settle(ns, item.key, v, item, cp);
      });
      page.items.forEach((item, i) => count(ns, item.key, verdicts[i]!));
      cursor = page.cursor;
      await yieldToEventLoop();
    } while (cursor !== undefined);
    // Keys only the copy holds are extra.
    cursor = undefined;
    do {
      const page = await copy.scanRaw(ns, { limit: PAGE, cursor });
      const found = await mapLimit(page.items, LOOKUPS_IN_FLIGHT, async (item) => {
        const src = await source.getRaw(ns, item.key);
        return src === null ? settle(ns, item.key, "extra", null, item) : null;
      });
      page.items.forEach((item, i) => {
        if (found[i] !== null && found[i] !== undefined) count(ns, item.key, found[i]!);
      });
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
