// Segmented backfill on the memory store with a clock the test moves: segments spread over
// workers, a lapsed lease is taken over from its checkpoint, and a worker whose lease was taken
// over (a paused process) never writes another page of that segment. No server needed.
import { expect } from "chai";
import client from "prom-client";
import { openStore } from "../../src/backends/index.js";
import type { Logger } from "../../src/log.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";
import { DecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import type { RawItem } from "../../src/protocol/types.js";
import { Backfill } from "../../src/migration/backfill.js";
import { ControlStore } from "../../src/migration/control.js";
import { readAllRaw, describeRaw } from "../../src/migration/compare.js";
import { listSegments, planNamespace } from "../../src/migration/segments.js";
import type { Clock, WorkContext } from "../../src/migration/work-context.js";
import { verify } from "../../src/migration/verify.js";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

const LEASE = 1000;

class ManualClock implements Clock {
  t = 1_000_000;
  wall = () => this.t;
  monotonic = () => this.t;
  sleep = () => new Promise<void>((r) => setImmediate(r));
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A gate in front of a store method: calls wait while it is shut (a process paused mid-call). */
function gated(store: Store) {
  let open = true;
  let waiters: (() => void)[] = [];
  const calls = { applyIfNewer: 0, scanRaw: 0 };
  const wait = () => (open ? Promise.resolve() : new Promise<void>((r) => waiters.push(r)));
  const s = Object.create(store) as Store;
  s.applyIfNewer = async (...a: Parameters<Store["applyIfNewer"]>) => {
    calls.applyIfNewer++;
    await wait();
    return store.applyIfNewer(...a);
  };
  s.scanRaw = async (...a: Parameters<Store["scanRaw"]>) => {
    calls.scanRaw++;
    await wait();
    return store.scanRaw(...a);
  };
  return {
    store: s,
    calls,
    shut: () => void (open = false),
    open: () => {
      open = true;
      for (const w of waiters) w();
      waiters = [];
    },
    waiting: () => waiters.length,
  };
}

function capture(lines: string[]): Logger {
  const log = (m: string) => void lines.push(m);
  return { error: log, warn: log, info: log, debug: () => undefined };
}

function context(o: { current: Store; target: Store; control: ControlStore; id: string; segments?: number; lines?: string[] }): WorkContext {
  return {
    current: o.current,
    target: o.target,
    control: o.control,
    replicaId: o.id,
    timings: { heartbeatMs: 50, backfillLeaseMs: LEASE, storeTimeoutMs: 200, backfillSegments: o.segments ?? 2 },
    metrics: new MigrationMetrics(new client.Registry()),
    logger: capture(o.lines ?? []),
    phase: "DUAL_WRITE",
    attempt: "a1",
    epoch: 1,
    store: (role) => (role === "current" ? o.current : o.target),
    isActive: async () => true,
    failureCounts: async () => ({}),
    publishVerify: () => undefined,
  };
}

async function fill(store: Store, n: number): Promise<void> {
  for (let i = 0; i < n; i += 500) {
    await store.applyIfNewer("items", Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ key: `k${String(i + j).padStart(6, "0")}`, value: (i + j) % 17 === 0 ? null : Buffer.from(`v${i + j}`), version: BigInt(1 + ((i + j) % 5)) })));
  }
}

async function differences(a: Store, b: Store): Promise<string[]> {
  const [x, y] = [await readAllRaw(a, "items"), await readAllRaw(b, "items")];
  const out: string[] = [];
  for (const k of new Set([...x.keys(), ...y.keys()])) if (describeRaw(x.get(k)) !== describeRaw(y.get(k))) out.push(`${k}: ${describeRaw(x.get(k))} vs ${describeRaw(y.get(k))}`);
  return out;
}

async function until(check: () => Promise<boolean> | boolean, what: string, tick?: () => Promise<void>, limit = 4000): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (await check()) return;
    await tick?.();
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("segmented backfill (memory store, injected clock)", function () {
  let current: Store;
  let target: Store;
  let control: ControlStore;
  let clock: ManualClock;

  beforeEach(async () => {
    current = await openStore("memory:");
    target = await openStore("memory:");
    control = new ControlStore(await openStore("memory:"));
    clock = new ManualClock();
    await fill(current, 12_000);
  });

  it("plans key ranges on an ordered store that cover every key once", async () => {
    const parts = await planNamespace(current, "items", 12_000);
    expect(parts.length).to.be.at.least(4);
    for (let i = 1; i < parts.length; i++) expect(parts[i]!.from, `range ${i} starts where ${i - 1} ends`).to.equal(parts[i - 1]!.end);
  });

  /** The backfill's range segments in index order: each starts where the one before ends, and all are done. */
  async function expectContiguousRanges(): Promise<void> {
    const segs = (await listSegments(control, "a1")).map((x) => x.value).filter((v) => v.scanned > 0 || v.end !== undefined || v.from !== undefined);
    expect(segs.every((v) => v.done && v.plan === undefined)).to.equal(true);
    for (let i = 1; i < segs.length; i++) expect(segs[i]!.from, `segment ${segs[i]!.index} starts where ${segs[i - 1]!.index} ends`).to.equal(segs[i - 1]!.end);
  }

  it("StartBackfill reads no item of an ordered namespace: its key ranges are cut while the backfill runs (a large table's planning scan outlasts any call)", async () => {
    const reads = gated(current);
    const a = new Backfill(context({ current: reads.store, target, control, id: "a", segments: 4 }), clock);
    const b = new Backfill(context({ current: reads.store, target, control, id: "b", segments: 4 }), clock);
    reads.shut();
    await a.start(0, 4);
    const planned = await listSegments(control, "a1");
    expect(planned.map((x) => x.value.plan !== undefined)).to.deep.equal([true]); // only the planner, holding the last index
    expect(planned[0]!.value.index).to.equal((await a.read())!.value.segmentCount - 1);
    reads.open();
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", async () => {
      await Promise.all([a.maybeTakeOver(), b.maybeTakeOver()]);
    });
    const bf = (await a.read())!.value;
    expect(bf.scanned).to.equal(12_000); // every key copied by exactly one range
    expect(bf.segmentCount).to.be.at.least(4);
    expect(bf.segments!.done).to.equal(bf.segmentCount);
    await expectContiguousRanges();
    expect(await differences(current, target)).to.deep.equal([]);
  });

  /** A backfill whose planner finds range 0 already written as `planted`, run to done: its record. */
  async function withPlantedRange(planted: { from?: string; end: string }) {
    const reads = gated(current);
    const a = new Backfill(context({ current: reads.store, target, control, id: "a", segments: 4 }), clock);
    reads.shut();
    await a.start(0, 4);
    await control.write("bfseg/a1/000000", { attempt: "a1", index: 0, ns: "items", ...planted, done: false, token: 0, scanned: 0, copied: 0, skipped: 0, activeMs: 0, updatedAt: clock.t, history: [] });
    reads.open();
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", () => a.maybeTakeOver());
    return (await a.read())!.value;
  }

  it("a planner lost before its checkpoint: the next one keeps the range it wrote, even one ending before its own cut, and no key is lost or copied twice", async () => {
    // What a planner leaves when it is lost between writing range 0 and its own checkpoint (its pages ended elsewhere).
    expect((await withPlantedRange({ end: "k000700" })).scanned).to.equal(12_000);
    await expectContiguousRanges();
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("a range written by a stale planner of an earlier run (another start) is not trusted: the keys before it are still copied", async () => {
    expect((await withPlantedRange({ from: "k000500", end: "k001000" })).scanned).to.be.at.least(12_000); // some keys twice, none left out
    expect(await differences(current, target)).to.deep.equal([]);
  });


  it("a planner paused mid-plan loses its lease: another resumes the plan from its checkpoint; the paused one writes no range", async () => {
    const reads = gated(current);
    const a = new Backfill(context({ current: reads.store, target, control, id: "a", segments: 1 }), clock);
    const b = new Backfill(context({ current, target, control, id: "b", segments: 8 }), clock);
    await a.start(0, 4);
    await until(async () => (await listSegments(control, "a1")).some((x) => x.value.plan?.scan !== undefined), "a to checkpoint a planning page");
    reads.shut();
    await until(() => reads.waiting() > 0, "a to be held mid-plan");
    expect((await listSegments(control, "a1")).at(-1)!.value.plan, "still planning when paused").to.not.equal(undefined);
    clock.advance(LEASE + 1);
    await b.maybeTakeOver(); // notes the planner's version; a lease later it has lapsed
    clock.advance(LEASE + 1);
    await until(async () => (await a.read())!.value.state === "done", "b to take over the plan and finish", () => b.maybeTakeOver());
    const before = JSON.stringify((await listSegments(control, "a1")).map((x) => x.value));
    reads.open();
    await until(async () => !(await listSegments(control, "a1")).some((x) => x.value.owner === "a"), "a to let go");
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(JSON.stringify((await listSegments(control, "a1")).map((x) => x.value))).to.equal(before);
    const planner = (await listSegments(control, "a1")).at(-1)!.value;
    expect(planner.history.map((h) => h.owner).slice(0, 2)).to.deep.equal(["a", "b"]);
    expect((await a.read())!.value.scanned).to.equal(12_000);
    await expectContiguousRanges();
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("a planner lost after writing the unused indices done but before its checkpoint: its successor (whose pages differ: keys appended meanwhile) must not take a done filler for a range and lose the keys before it", async () => {
    const small = Object.create(current) as Store;
    small.estimateCount = async () => 40_000; // 20 indices of ~2000 items; 12,000 items fill 6
    // A is lost (hangs) on the write that ends its plan, after fillUnused wrote indices 5..18 done.
    let hung = false;
    const lossy = Object.create(control) as ControlStore;
    lossy.compareAndSet = (<T,>(key: string, value: T, expected: bigint | null) => {
      const v = value as { plan?: unknown; owner?: string };
      if (key === "bfseg/a1/000019" && v.plan === undefined && v.owner === "a") {
        hung = true;
        return new Promise<bigint | false>(() => undefined);
      }
      return control.compareAndSet(key, value, expected);
    }) as ControlStore["compareAndSet"];
    const a = new Backfill(context({ current: small, target, control: lossy, id: "a", segments: 1 }), clock);
    const b = new Backfill(context({ current: small, target, control, id: "b", segments: 8 }), clock);
    await a.start(0, 4);
    await until(() => hung, "a to be lost on its final planning checkpoint");
    expect((await listSegments(control, "a1")).filter((x) => x.value.done && x.value.end === undefined).length, "fillers written").to.be.greaterThan(0);
    // Live writes (DUAL_WRITE: both stores) append keys at the tail meanwhile.
    const appended = Array.from({ length: 500 }, (_, j) => ({ key: `k${String(12_000 + j).padStart(6, "0")}`, value: Buffer.from(`w${j}`), version: 9n }));
    await current.applyIfNewer("items", appended);
    await target.applyIfNewer("items", appended);
    clock.advance(LEASE + 1);
    await b.maybeTakeOver(); // notes the planner's version; a lease later it has lapsed
    clock.advance(LEASE + 1);
    await until(async () => (await b.read())!.value.state === "done", "b to take over the plan and finish", () => b.maybeTakeOver());
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("a namespace smaller than its estimate: the planner writes the indices it did not need as done", async () => {
    const a = new Backfill(context({ current, target, control, id: "a" }), clock);
    const small = Object.create(current) as Store;
    small.estimateCount = async () => 40_000; // far more segments than 12,000 items fill
    const c = new Backfill(context({ current: small, target, control, id: "a" }), clock);
    await c.start(0, 4);
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", () => c.maybeTakeOver());
    const bf = (await a.read())!.value;
    expect(bf.segments!.done).to.equal(bf.segmentCount);
    expect(bf.scanned).to.equal(12_000);
    await expectContiguousRanges();
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("spreads the segments over two workers; the copy equals the source", async () => {
    const a = new Backfill(context({ current, target, control, id: "a" }), clock);
    const b = new Backfill(context({ current, target, control, id: "b" }), clock);
    await a.start(0, 4);
    // a plans the ranges, so each new one is free for a moment only: b looks first, as a replica
    // whose heartbeat comes while a is busy copying would.
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", async () => {
      await Promise.all([b.maybeTakeOver(), a.maybeTakeOver()]);
    });
    const owners = new Set((await listSegments(control, "a1")).flatMap((s) => s.value.history.map((h) => h.owner)));
    expect([...owners].sort()).to.deep.equal(["a", "b"]);
    const bf = (await a.read())!.value;
    expect(bf.scanned).to.equal(12_000);
    expect(bf.segments!.done).to.equal(bf.segmentCount);
    expect(await differences(current, target)).to.deep.equal([]);
    const report = await verify(context({ current, target, control, id: "a" }), { repair: false, clock });
    expect(report.checked - report.in_sync).to.equal(0);
  });

  it("a worker paused in the middle of a write loses its lease: another resumes from the checkpoint, the paused one writes no further page", async () => {
    const slow = gated(target);
    const aLines: string[] = [];
    const a = new Backfill(context({ current, target: slow.store, control, id: "a", segments: 1, lines: aLines }), clock);
    const b = new Backfill(context({ current, target, control, id: "b", segments: 8 }), clock);
    await a.start(0, 1, 128);
    // Let a checkpoint a page or two, then freeze it mid-write.
    await until(async () => (await listSegments(control, "a1")).some((s) => s.value.owner === "a" && s.value.cursor !== undefined), "a to checkpoint a page");
    slow.shut();
    await until(() => slow.waiting() > 0, "a to be held mid-write");
    const held = (await listSegments(control, "a1")).find((s) => s.value.owner === "a")!;
    const writesWhenPaused = slow.calls.applyIfNewer;
    // b watches: the lease holds until a whole lease passes with no renewal on b's clock.
    await b.maybeTakeOver();
    expect((await listSegments(control, "a1")).find((s) => s.key === held.key)!.value.owner).to.equal("a");
    clock.advance(LEASE + 1);
    await until(async () => (await a.read())!.value.state === "done", "b to take over and finish", () => b.maybeTakeOver());
    const after = (await listSegments(control, "a1")).find((s) => s.key === held.key)!.value;
    expect(after.history.map((h) => h.owner)).to.deep.equal(["a", "b"]);
    expect(after.history[1]!.from, "resumed from a's checkpoint, not from the start").to.not.equal(undefined);
    // a wakes up: its write in flight lands (the residual window, harmless), then it stops.
    slow.open();
    await until(() => a.held === 0, "a to notice it lost the segment");
    expect(slow.calls.applyIfNewer, "no page after the one in flight").to.equal(writesWhenPaused);
    expect(aLines.some((l) => l.includes("taken over") || l.includes("lease lapsed"))).to.equal(true);
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("a worker paused before a write, whose segment was taken over meanwhile, never writes that segment again", async () => {
    const slowRead = gated(current);
    const written: string[] = [];
    let recording = false;
    const recorded = Object.create(target) as Store;
    recorded.applyIfNewer = async (ns, items, fence) => {
      if (recording) written.push(...items.map((i) => i.key));
      return target.applyIfNewer(ns, items, fence);
    };
    const aLines: string[] = [];
    const a = new Backfill(context({ current: slowRead.store, target: recorded, control, id: "a", segments: 1, lines: aLines }), clock);
    const b = new Backfill(context({ current, target, control, id: "b", segments: 8 }), clock);
    await a.start(0, 1, 128);
    await until(async () => (await listSegments(control, "a1")).some((s) => s.value.owner === "a" && s.value.cursor !== undefined), "a to checkpoint a page");
    slowRead.shut();
    await until(() => slowRead.waiting() > 0, "a to be held reading");
    const held = (await listSegments(control, "a1")).find((s) => s.value.owner === "a")!.value;
    await b.maybeTakeOver(); // b sees a's record at this version...
    clock.advance(LEASE + 1);
    await b.maybeTakeOver(); // ...and a lease later, unchanged: lapsed, so b takes it
    expect((await listSegments(control, "a1")).find((s) => s.value.index === held.index)!.value.owner).to.equal("b");
    recording = true;
    slowRead.open(); // a wakes up with a page read under a lease that has ended on its own clock
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", async () => {
      await b.maybeTakeOver();
    });
    const inHeld = written.filter((k) => (held.from === undefined || k >= held.from) && (held.end === undefined || k < held.end));
    expect(inHeld, "a wrote none of the segment b took over").to.deep.equal([]);
    expect(aLines.some((l) => l.includes("lease lapsed"))).to.equal(true);
    expect(await differences(current, target)).to.deep.equal([]);
  });

  it("a verification spreads over the replicas' segment loops; the merged report counts every difference once", async () => {
    const ctxA = context({ current, target, control, id: "a" }) as WorkContext & { backfill?: Backfill };
    const a = new Backfill(ctxA, clock);
    ctxA.backfill = a;
    const watchedB = gated(current);
    const b = new Backfill(context({ current: watchedB.store, target, control, id: "b" }), clock);
    await a.start(0, 4);
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", async () => {
      await Promise.all([a.maybeTakeOver(), b.maybeTakeOver()]);
    });
    await target.delete("items", "k000001"); // a tombstone with a newer version: stale
    const six = (await current.getRaw("items", "k000006"))!;
    await target.applyIfNewer("items", [{ ...six, value: Buffer.from("other"), version: six.version + 5n }]); // stale
    await target.applyIfNewer("items", [{ key: "zzz-extra", value: Buffer.from("x"), version: 1n }]); // extra
    const scansBefore = watchedB.calls.scanRaw;
    let ticking = true;
    const ticks = (async () => {
      while (ticking) {
        await b.maybeTakeOver();
        await new Promise((r) => setImmediate(r));
      }
    })();
    const report = await verify(ctxA, { repair: false, clock });
    ticking = false;
    await ticks;
    expect(watchedB.calls.scanRaw, "b verified segments too").to.be.above(scansBefore);
    expect({ missing: report.missing, stale: report.stale, extra: report.extra }).to.deep.equal({ missing: 0, stale: 2, extra: 1 });
    expect(report.checked).to.equal(12_001);
    expect(report.sample_keys.sort()).to.deep.equal(["items/k000001 (stale)", "items/k000006 (stale)", "items/zzz-extra (extra)"]);
  });

  it("a backfill of an empty store is done at once", async () => {
    const empty = await openStore("memory:");
    const a = new Backfill(context({ current: empty, target, control, id: "a" }), clock);
    await a.start(0, 4);
    await until(async () => (await a.read())!.value.state === "done", "the empty backfill to be done", () => a.maybeTakeOver());
    expect((await a.read())!.value.segmentCount).to.equal(0);
  });

  it("a backfill that cannot succeed fails, and says why", async () => {
    const refusing = Object.create(target) as Store;
    refusing.applyIfNewer = async () => {
      throw new DecantError("invalid_argument", "value: is too large for the target");
    };
    const a = new Backfill(context({ current, target: refusing, control, id: "a" }), clock);
    await a.start(0, 4);
    await until(async () => (await a.read())!.value.state === "failed", "the backfill to fail", () => a.maybeTakeOver());
    const bf = (await a.read())!.value;
    expect(bf.error).to.match(/items segment \d+: .*too large/);
  });

  it("splits the rate limit over the running segments", async () => {
    const real: Clock = { wall: () => Date.now(), monotonic: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
    const workers = ["a", "b", "c"].map((id) => new Backfill(context({ current, target, control, id }), real));
    const rate = 4000;
    const t0 = performance.now();
    await workers[0]!.start(rate, 4);
    await until(
      async () => (await workers[0]!.read())!.value.state === "done",
      "the rate-limited backfill",
      async () => {
        await Promise.all(workers.map((w) => w.maybeTakeOver()));
        await new Promise((r) => setTimeout(r, 20));
      },
      100_000,
    );
    const seconds = (performance.now() - t0) / 1000;
    const achieved = 12_000 / seconds;
    console.log(`      rate limit ${rate}/s over 3 workers: ${Math.round(achieved)} items/s (${(achieved / rate).toFixed(2)} × the limit)`);
    expect(achieved).to.be.at.most(1.1 * rate);
  });
  it("a page whose checkpoint is saved is unreachable while the segment reads its next pages (nothing long-lived holds it for V8's scavenges to promote)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    // Copy reads after the first two wait: the segment stops reading ahead at its third page.
    const pages: WeakRef<RawItem[]>[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const reads = Object.create(current) as Store;
    reads.scanRaw = async (...a: Parameters<Store["scanRaw"]>) => {
      const page = await current.scanRaw(...a);
      if (a[1].keysOnly) return page;
      if (pages.length >= 2) await held;
      const items = [...page.items]; // only the backfill holds this array
      pages.push(new WeakRef(items));
      return { ...page, items };
    };
    const a = new Backfill(context({ current: reads, target, control, id: "a", segments: 1 }), clock);
    await a.start(0, 4);
    await until(async () => (await control.read<{ scanned: number }>((await listSegments(control, "a1")).find((s) => s.value.scanned > 0)?.key ?? "-"))?.value.scanned === 64 + 1024 || false, "two pages checkpointed", () => a.maybeTakeOver());
    await new Promise((r) => setImmediate(r)); // WeakRefs hold until the end of the job that made them
    gc();
    expect(pages.map((p) => p.deref() === undefined)).to.deep.equal([true, true]);
    release();
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", () => a.maybeTakeOver());
    expect(await differences(current, target)).to.deep.equal([]);
  });

  /** A backfill of `segments` at once whose value reads and target writes wait until let go: how many value reads it has made once its first pages are all being written. */
  async function readsWhileWriting(segments: number): Promise<number> {
    const reads = { made: 0, waiting: [] as (() => void)[], open: false };
    const writes = { waiting: [] as (() => void)[], open: false };
    const cur = Object.create(current) as Store;
    cur.scanRaw = async (...a: Parameters<Store["scanRaw"]>) => {
      if (a[1].keysOnly) return current.scanRaw(...a); // the planner's
      reads.made++;
      if (!reads.open) await new Promise<void>((r) => reads.waiting.push(r));
      return current.scanRaw(...a);
    };
    const tgt = Object.create(target) as Store;
    tgt.applyIfNewer = async (...a: Parameters<Store["applyIfNewer"]>) => {
      if (!writes.open) await new Promise<void>((r) => writes.waiting.push(r));
      return target.applyIfNewer(...a);
    };
    const a = new Backfill(context({ current: cur, target: tgt, control, id: "a", segments }), clock);
    await a.start(0, 4);
    await until(() => reads.waiting.length === segments, `${segments} segments reading`, () => a.maybeTakeOver());
    reads.open = true;
    for (const r of reads.waiting.splice(0)) r();
    await until(() => writes.waiting.length === segments, "their first pages in writes");
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    const made = reads.made;
    writes.open = true;
    for (const w of writes.waiting.splice(0)) w();
    await a.stop();
    return made;
  }

  it("reads a page ahead while it copies one segment", async () => {
    expect(await readsWhileWriting(1)).to.equal(2);
  });

  it("reads no page ahead while it copies two segments (a page read ahead then outlived two scavenges: PERFORMANCE.md)", async () => {
    expect(await readsWhileWriting(2)).to.equal(2);
  });

  it("writes statements of at most 512 KiB (256 items of 1 KiB), and does not cut small items finer than the concurrency does", async () => {
    const value = Buffer.alloc(1024, 1);
    for (let i = 0; i < 3000; i += 500) await current.applyIfNewer("big", Array.from({ length: 500 }, (_, j) => ({ key: `b${String(i + j).padStart(6, "0")}`, value, version: 1n })));
    const sizes: Record<string, number[]> = { big: [], items: [] };
    const tgt = Object.create(target) as Store;
    tgt.applyIfNewer = async (...a: Parameters<Store["applyIfNewer"]>) => {
      sizes[a[0]]!.push(a[1].length);
      return target.applyIfNewer(...a);
    };
    const a = new Backfill(context({ current, target: tgt, control, id: "a", segments: 2 }), clock);
    await a.start(0, 4);
    await until(async () => (await a.read())!.value.state === "done", "the backfill to finish", () => a.maybeTakeOver());
    expect(Math.max(...sizes.big!)).to.equal(256);
    expect(Math.max(...sizes.items!)).to.equal(512); // two segments share 4 writes: a 1,024-item page in two
    expect(await differences(current, target)).to.deep.equal([]);
  });
});
