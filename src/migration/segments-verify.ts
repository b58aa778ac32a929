// A verification spread over every replica with the target, like the backfill: the keys of the
// source (each must be in the copy) and the keys of the copy (those not in the source are extra)
// are cut into segments with fenced leases (segments-lease.ts); each segment keeps its counts and
// sample in its record, and the replica that runs the Verify call merges them into one report.
import { randomBytes } from "node:crypto";
import { DecantError, describe as describeError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import type { ControlStore } from "./control.js";
import { FIRST_PAGE_ITEMS, nextPageLimit } from "./pages.js";
import type { Role } from "./phases.js";
import { ITEMS_PER_SEGMENT, clipToRange, planNamespace, type SegmentRecord } from "./segments.js";
import { LeaseLost, type Held, type Leased, type SegmentLeases } from "./segments-lease.js";
import { checkCopyPage, checkSourcePage, Tally, type Comparison, type VerifyReport } from "./verify.js";
import { yieldToEventLoop, type Clock, type WorkContext } from "./work-context.js";

const JOB_KEY = "verify-job";
const PREFIX = "vfseg/";
const SAMPLE = 20;
const PAGE = 500;

interface VerifyJob {
  id: string;
  /** Which store is the source (the primary when the verification started). */
  primary: Role;
  repair: boolean;
  state: "running" | "done";
  segmentCount: number;
  startedAt: number;
  by: string;
}

interface VerifySegment extends Leased, Pick<SegmentRecord, "hash" | "start" | "from" | "end"> {
  job: string;
  /** source: each key must be in the copy; copy: keys the source lacks are extra. */
  pass: "source" | "copy";
  counts: Omit<VerifyReport, "done">;
  error?: string;
}

const empty = (): Omit<VerifyReport, "done"> => ({ checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, sample_keys: [] });

function add(into: Omit<VerifyReport, "done">, r: Omit<VerifyReport, "done">): Omit<VerifyReport, "done"> {
  return {
    checked: into.checked + r.checked,
    in_sync: into.in_sync + r.in_sync,
    missing: into.missing + r.missing,
    stale: into.stale + r.stale,
    extra: into.extra + r.extra,
    repaired: into.repaired + r.repaired,
    sample_keys: [...into.sample_keys, ...r.sample_keys].slice(0, SAMPLE),
  };
}

export class VerifySegments {
  private readonly tasks = new Map<string, Promise<void>>();

  constructor(
    private readonly c: WorkContext,
    private readonly leases: SegmentLeases,
    private readonly clock: Clock,
    private readonly perReplica: () => number,
    private readonly stopped: () => boolean,
  ) {}

  private get control(): ControlStore {
    return this.c.control;
  }

  /**
   * Runs a verification as segments on every replica; resolves with the merged report.
   * Undefined when every namespace is small: one process compares them faster (a merge join).
   */
  async run(k: Omit<Comparison, "tally">, namespaces: string[], onProgress?: (r: VerifyReport) => void): Promise<VerifyReport | undefined> {
    const estimates = await Promise.all(namespaces.map(async (ns) => Math.max(await k.source.estimateCount(ns), await k.copy.estimateCount(ns))));
    if (estimates.every((n) => n <= ITEMS_PER_SEGMENT)) return undefined;
    const id = randomBytes(6).toString("hex");
    await this.removeSegments();
    let index = 0;
    const now = this.clock.wall();
    for (const [i, ns] of namespaces.entries()) {
      for (const [pass, store] of [["source", k.source], ["copy", k.copy]] as const) {
        for (const part of await planNamespace(store, ns, estimates[i]!)) {
          const seg: VerifySegment = { job: id, index, ns, pass, ...part, done: false, token: 0, updatedAt: now, history: [], counts: empty() };
          await this.control.write(`${PREFIX}${id}/${String(index).padStart(6, "0")}`, seg);
          index++;
        }
      }
    }
    const primary: Role = k.source === this.c.current ? "current" : "target";
    await this.control.write<VerifyJob>(JOB_KEY, { id, primary, repair: k.repair, state: "running", segmentCount: index, startedAt: now, by: this.c.replicaId });
    this.c.logger.info("verification spread over segments", { segments: index, namespaces: namespaces.length });
    for (;;) {
      await this.takeOver();
      const job = await this.control.read<VerifyJob>(JOB_KEY);
      if (job?.value.id !== id) throw new DecantError("failed_precondition", "another verification replaced this one");
      const segments = await this.control.list<VerifySegment>(`${PREFIX}${id}/`);
      const merged = segments.reduce((r, s) => add(r, s.value.counts), empty());
      if (segments.every((s) => s.value.done)) {
        await this.control.write<VerifyJob>(JOB_KEY, { ...job.value, state: "done" });
        await this.removeSegments();
        return { ...merged, done: true };
      }
      onProgress?.({ ...merged, done: false });
      await this.clock.sleep(Math.min(250, this.c.timings.heartbeatMs));
    }
  }

  private async removeSegments(): Promise<void> {
    for (const s of await this.control.list<VerifySegment>(PREFIX)) await this.control.remove(s.key);
  }

  private taking?: Promise<void>;

  /** Every tick: takes verify segments this replica can lease while a verification runs (one pass at a time). */
  takeOver(): Promise<void> {
    this.taking ??= this.take().finally(() => (this.taking = undefined));
    return this.taking;
  }

  private async take(): Promise<void> {
    if (!this.c.target || this.stopped()) return;
    const job = await this.control.read<VerifyJob>(JOB_KEY);
    if (!job || job.value.state !== "running") return;
    const segments = await this.control.list<VerifySegment>(`${PREFIX}${job.value.id}/`);
    const { free } = this.leases.survey(segments, new Set(this.tasks.keys()));
    for (const s of free) {
      if (this.tasks.size >= this.perReplica() || this.stopped()) break;
      const held = await this.leases.take(s, "verify");
      if (!held) continue;
      this.tasks.set(s.key, this.runSegment(held, job.value).finally(() => this.tasks.delete(s.key)));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.tasks.values());
  }

  private async runSegment(h: Held<VerifySegment>, job: VerifyJob): Promise<void> {
    const source = this.c.store(job.primary);
    const copy = this.c.store(job.primary === "current" ? "target" : "current");
    const store: Store = h.rec.pass === "source" ? source : copy;
    const stopRenewing = this.leases.renewing(h);
    let limit = FIRST_PAGE_ITEMS;
    try {
      while (!h.rec.done && !this.stopped()) {
        if (!this.leases.holds(h)) throw new LeaseLost("the segment's lease lapsed");
        const page = await store.scanRaw(h.rec.ns, { limit, cursor: h.rec.cursor ?? h.rec.start, ...(h.rec.hash ? { segment: h.rec.hash.segment, totalSegments: h.rec.hash.total } : {}) });
        limit = nextPageLimit(page.items, limit, PAGE);
        const { items, ended } = clipToRange(h.rec, page.items);
        const k: Comparison = { source, copy, repair: job.repair, clock: this.clock, tally: new Tally() };
        // Repairs write: like the backfill's pages, none starts once the lease is about to end.
        if (job.repair && !this.leases.holds(h)) throw new LeaseLost("the segment's lease lapsed");
        await (h.rec.pass === "source" ? checkSourcePage : checkCopyPage)(k, h.rec.ns, items);
        const done = ended || page.cursor === undefined;
        const saved = await this.leases.save(h, (r) => ({ ...r, cursor: done ? r.cursor : page.cursor, done, ...(done ? { owner: undefined, run: undefined } : {}), counts: add(r.counts, k.tally.report), updatedAt: this.clock.wall(), error: undefined }));
        if (!saved) return;
        await yieldToEventLoop();
      }
      if (!h.rec.done) await this.leases.release(h);
    } catch (err) {
      if (err instanceof LeaseLost || h.lost) return;
      this.c.logger.warn("verify segment failed; another round retries it from its checkpoint", { segment: h.rec.index, error: describeError(err) });
      await this.leases.release(h, describeError(err));
      await this.clock.sleep(this.c.timings.heartbeatMs);
    } finally {
      stopRenewing();
    }
  }
}
