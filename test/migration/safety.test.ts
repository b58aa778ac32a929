// Issue 12's findings replayed deterministically: replicas are in-process controllers on shared
// memory stores, and the migration's hooks hold a write between its steps. Each test fails on
// the code before the fix (docs/PROTOCOL.md names the step it checks).
import { expect } from "chai";
import { MemoryStore } from "../../src/backends/memory.js";
import { SqliteStore } from "../../src/backends/sqlite.js";
import { isDecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import { MigrationController, type MigrationHooks, type Timings } from "../../src/migration/controller.js";
import { MigratingStore } from "../../src/migration/migrating-store.js";
import { ControlStore, JOURNAL_PREFIX, PHASE_KEY, heartbeatKey, type PhaseRecord } from "../../src/migration/control.js";
import { verify } from "../../src/migration/verify.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { silentLogger } from "../../src/log.js";
import type { Phase } from "../../src/migration/phases.js";
import { waitFor } from "../support/migration.js";
import { faulty } from "../support/faulty-store.js";

const TIMINGS: Partial<Timings> = { heartbeatMs: 20, leaseMs: 400, replicaTtlMs: 800, fenceHoldMs: 3000, fenceTimeoutMs: 3000, backfillLeaseMs: 400, storeTimeoutMs: 0 };

interface Replica {
  c: MigrationController;
  s: MigratingStore;
  metrics: MigrationMetrics;
}

const started: MigrationController[] = [];

async function replica(id: string, stores: { current: Store; target?: Store; control?: Store }, hooks: MigrationHooks = {}, timings: Partial<Timings> = {}): Promise<Replica> {
  const metrics = new MigrationMetrics(new Metrics(false).registry);
  const c = new MigrationController({ current: stores.current, target: stores.target, control: stores.control ?? stores.current, replicaId: id, metrics, logger: silentLogger(), timings: { ...TIMINGS, ...timings }, hooks });
  await c.start();
  started.push(c);
  return { c, s: new MigratingStore(c), metrics };
}

/** A hook that holds the write of one key until released. */
function hold(key: string) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let reached!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  return {
    hook: async (w: { key?: string }) => {
      if (w.key !== key) return;
      reached();
      await released;
    },
    reached: reachedP,
    release,
  };
}

async function walk(c: MigrationController, phases: Phase[], force = true): Promise<void> {
  for (const p of phases) {
    await c.setPhase(p, force);
    await waitFor(() => c.isActive(), `${p} active`);
  }
}

/**
 * Resolves once replica `id` has written `n` more heartbeats into `control`. A replica reads the
 * phase record before each heartbeat, so from the second one on it has seen what was written
 * before this call: "several rounds later", counted in rounds rather than milliseconds.
 */
async function heartbeats(control: Store, id: string, n: number): Promise<void> {
  const records = new ControlStore(control);
  const version = async () => (await records.read(heartbeatKey(id)))?.version ?? 0n;
  const from = await version();
  await waitFor(async () => (await version()) >= from + BigInt(n), `${n} heartbeats of replica ${id}`, 10_000);
}

const value = async (store: Store, key: string) => {
  const r = await store.getRaw("users", key);
  return r ? `${r.version}:${r.value?.toString() ?? "∅"}` : "absent";
};

describe("migration safety: issue 12's interleavings", function () {
  this.timeout(30_000);
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.stop().catch(() => undefined)));
  });

  it("finding 1: a replica does not acknowledge DUAL_WRITE while a SINGLE write is in flight; that write reaches the target", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const h = hold("k");
    const a = await replica("a", { current, target });
    const b = await replica("b", { current, target }, { beforePrimary: h.hook });
    const write = b.s.put("users", "k", Buffer.from("from-b"));
    await h.reached;
    await a.c.setPhase("DUAL_WRITE", false);
    // Several heartbeats later B still has its SINGLE write in flight: DUAL_WRITE is not active.
    await Promise.all([heartbeats(current, "a", 3), heartbeats(current, "b", 3)]);
    expect(await a.c.isActive()).to.equal(false);
    h.release();
    const version = await write;
    await waitFor(() => a.c.isActive(), "DUAL_WRITE active");
    // The held write was admitted in SINGLE; the store's fence refused it there and it was
    // admitted again in DUAL_WRITE, so the target holds it too.
    expect(await value(target, "k")).to.equal(`${version}:from-b`);
    expect(await value(current, "k")).to.equal(`${version}:from-b`);
  });

  it("finding 2a: when the journal cannot be written the write is refused and nothing is written", async function () {
    const current = new MemoryStore();
    const control = faulty(new MemoryStore());
    const a = await replica("a", { current, target: new MemoryStore(), control: control.store });
    await a.c.setPhase("DUAL_WRITE", false);
    control.faults.put = true;
    const err = await a.s.put("users", "k", Buffer.from("v")).catch((e) => e);
    expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    expect(err.message).to.include("repair journal");
    expect(await current.getRaw("users", "k")).to.equal(null);
  });

  it("finding 2b: an ambiguous primary outcome is an error and a journal entry, repaired to the secondary", async function () {
    const cur = faulty(new MemoryStore());
    const target = new MemoryStore();
    const a = await replica("a", { current: cur.store, target, control: new MemoryStore() });
    await a.c.setPhase("DUAL_WRITE", false);
    cur.faults.applyThenFail = true;
    const err = await a.s.put("users", "k", Buffer.from("maybe")).catch((e) => e);
    cur.faults.applyThenFail = false;
    expect(isDecantError(err, "deadline_exceeded"), String(err)).to.equal(true);
    await waitFor(async () => (await value(target, "k")) === "1:maybe", "the repair of the ambiguous write");
    // The repair writes the target, then removes the journal entry.
    await waitFor(async () => (await a.c.journalDepth()) === 0, "the journal entry to go");
  });

  it("finding 2c: a replica that dies between the primary and the secondary write leaves an intent another replica repairs", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const h = hold("k");
    const a = await replica("a", { current, target });
    const b = await replica("b", { current, target }, { beforeSecondary: h.hook });
    await a.c.setPhase("DUAL_WRITE", false);
    await waitFor(() => b.c.isActive(), "DUAL_WRITE active");
    void b.s.put("users", "k", Buffer.from("orphan")).catch(() => undefined);
    await h.reached;
    await b.c.stop(); // B is gone: its write reached only the primary
    expect(await value(target, "k")).to.equal("absent");
    await waitFor(async () => (await value(target, "k")) === "1:orphan", "A repairing B's intent");
    h.release();
  });

  it("finding 2d: applyIfNewer refused on the secondary over a different item is journalled and counted", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const a = await replica("a", { current, target });
    await a.c.setPhase("DUAL_WRITE", false);
    await target.applyIfNewer("users", [{ key: "k", value: Buffer.from("diverged"), version: 1n }]);
    await a.s.put("users", "k", Buffer.from("real"));
    const failures = (await a.metrics.secondaryFailures.get()).values.find((v) => v.labels.store === "target")!.value;
    expect(failures).to.equal(1);
    expect((await a.c.control.list(JOURNAL_PREFIX)).length).to.equal(1);
  });

  it("finding 3: a write held past the TTL across the fenced switch is refused by the old primary's fence, then lands under the new phase", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const h = hold("k");
    const a = await replica("a", { current, target });
    const b = await replica("b", { current, target }, { beforePrimary: h.hook });
    await walk(a.c, ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"]);
    await waitFor(() => b.c.isActive(), "READ_TARGET active");
    const held = b.s.put("users", "k", Buffer.from("late"));
    await h.reached;
    await b.c.stop(); // B looks dead (paused beyond the TTL): the switch goes on without it
    await a.c.setPhase("TARGET_PRIMARY", true);
    const v2 = await a.s.put("users", "k", Buffer.from("new-primary"));
    h.release();
    const late = await held.then((v) => v, (e) => e);
    // B's write never lands on the old primary with a version the new one assigns too.
    const acked = new Map<bigint, string>([[v2, "new-primary"]]);
    if (typeof late === "bigint") {
      expect(acked.has(late), "two values acknowledged with one version").to.equal(false);
      acked.set(late, "late");
    }
    const top = await target.getRaw("users", "k");
    expect(acked.get(top!.version)).to.equal(top!.value!.toString());
    await waitFor(async () => (await value(current, "k")) === (await value(target, "k")), "reverse replication");
  });

  it("finding 4: READ_TARGET waits until SHADOW_READ is active, and in SHADOW_READ a failed target write fails the request", async function () {
    const current = new MemoryStore();
    const tgt = faulty(new MemoryStore());
    const h = hold("slow");
    const a = await replica("a", { current, target: tgt.store }, {}, { fenceTimeoutMs: 300 });
    const b = await replica("b", { current, target: tgt.store }, { beforePrimary: h.hook });
    await walk(a.c, ["DUAL_WRITE"]);
    await waitFor(() => b.c.isActive(), "DUAL_WRITE active");
    const slow = b.s.put("users", "slow", Buffer.from("x"));
    await h.reached;
    await a.c.setPhase("SHADOW_READ", false);
    const err = await a.c.setPhase("READ_TARGET", true).catch((e) => e);
    expect(String(err)).to.include("SHADOW_READ is not active");
    h.release();
    await slow;
    await waitFor(() => a.c.isActive(), "SHADOW_READ active");
    tgt.faults.applyIfNewer = true;
    const failed = await a.s.put("users", "k", Buffer.from("v")).catch((e) => e);
    expect(isDecantError(failed, "unavailable"), String(failed)).to.equal(true);
  });

  it("finding 5: a verification of an earlier attempt does not pass the READ_TARGET gate", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const a = await replica("a", { current, target });
    await current.put("users", "k", Buffer.from("v"));
    await walk(a.c, ["DUAL_WRITE"], false);
    await a.c.backfill.start(0, 2);
    await waitFor(async () => (await a.c.backfill.read())?.value.state === "done", "backfill done");
    await a.c.setPhase("SHADOW_READ", false);
    await verify(a.c, { repair: false });
    await a.c.setPhase("SINGLE", false);
    await a.c.setPhase("DUAL_WRITE", true); // a new attempt on a cleared target
    await a.c.setPhase("SHADOW_READ", false);
    const err = await a.c.setPhase("READ_TARGET", false).catch((e) => e);
    expect(String(err)).to.match(/backfill of this migration|verification of this migration/);
  });

  it("finding 6: a fence whose SetPhase caller died is rolled back and writes resume", async function () {
    const current = new MemoryStore();
    const a = await replica("a", { current, target: new MemoryStore() }, {}, { fenceTimeoutMs: 100, replicaTtlMs: 500, fenceHoldMs: 100 });
    await walk(a.c, ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"]);
    const control = new ControlStore(current);
    const rec = (await control.read<PhaseRecord>(PHASE_KEY))!;
    await control.compareAndSet<PhaseRecord>(PHASE_KEY, { ...rec.value, epoch: rec.value.epoch + 1, fence: true, pending: "TARGET_PRIMARY" }, rec.version);
    await waitFor(async () => a.c.phase === "READ_TARGET" && !(await control.read<PhaseRecord>(PHASE_KEY))!.value.fence, "the abandoned fence rolled back", 10_000);
    expect(await a.s.put("users", "k", Buffer.from("v"))).to.equal(1n);
  });

  it("finding 7: a replica without a target never takes the backfill lease", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const a = await replica("a", { current, target });
    await current.put("users", "k", Buffer.from("v"));
    await a.c.setPhase("DUAL_WRITE", false);
    await a.c.backfill.start(1, 1);
    await a.c.backfill.setPaused(true);
    await a.c.stop();
    const lone = await replica("lone", { current });
    await heartbeats(current, "lone", 2);
    const control = new ControlStore(current);
    const bf = (await control.read<{ state: string; runner?: string }>("backfill"))!;
    await control.write("backfill", { ...bf.value, state: "running", runner: undefined });
    // Rounds in which it could have taken the unowned lease (each round looks after the backfill).
    await heartbeats(current, "lone", 5);
    expect((await control.read<{ runner?: string }>("backfill"))!.value.runner).to.equal(undefined);
    expect(lone.c.isFailClosed()).to.equal(false);
  });

  it("finding 8: tombstones are not purged through a running sidecar", async function () {
    const a = await replica("a", { current: new MemoryStore() });
    const err = await a.s.purgeTombstones().catch((e) => e);
    expect(isDecantError(err, "failed_precondition")).to.equal(true);
  });

  it("finding 9: a replica with another control store refuses to start", async function () {
    const current = new MemoryStore();
    await replica("a", { current, control: new MemoryStore() });
    const err = await replica("b", { current, control: new MemoryStore() }).catch((e) => e);
    expect(String(err)).to.include("every replica must use the same control store");
    const same = await replica("c", { current }).catch((e) => e);
    expect(String(same)).to.include("every replica must use the same control store");
  });

  it("finding 10: DUAL_WRITE is refused up front when the current store holds versions the target cannot", async function () {
    const current = new MemoryStore();
    await current.applyIfNewer("users", [{ key: "huge", value: Buffer.from("v"), version: 2n ** 63n }]);
    const target = new SqliteStore({ path: ":memory:", busyTimeoutMs: 100 });
    const a = await replica("a", { current, target });
    const err = await a.c.setPhase("DUAL_WRITE", false).catch((e) => e);
    expect(String(err)).to.include("users/huge").and.include("cannot be migrated");
    expect(a.c.phase).to.equal("SINGLE");
    await target.close();
  });

  it("a record of a newer schema: a sidecar refuses to start on it, and a running one stops writing", async function () {
    const future = Buffer.from(JSON.stringify({ schema: 99, phase: "SINGLE", epoch: 1, fence: false, changedAt: 0, changedBy: "future" }));
    const fresh = new MemoryStore();
    await fresh.put("_decant_control", PHASE_KEY, future);
    expect(String(await replica("a", { current: fresh }).catch((e) => e))).to.include("newer than this sidecar understands");
    const current = new MemoryStore();
    const b = await replica("b", { current });
    await current.put("_decant_control", PHASE_KEY, future);
    await waitFor(async () => b.c.isFailClosed(), "b to fail closed");
    const err = await b.s.put("users", "k", Buffer.from("v")).catch((e) => e);
    expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    expect(await current.getRaw("users", "k")).to.equal(null);
  });

  it("a control record made anew starts above the stores' fences, so primary writes are not refused forever", async function () {
    const current = new MemoryStore();
    await current.raiseFence(42);
    const a = await replica("a", { current, control: new MemoryStore() });
    expect(a.c.epoch).to.be.at.least(42);
    await a.s.put("users", "k", Buffer.from("v"));
    expect(await value(current, "k")).to.equal("1:v");
  });

  it("a SINGLE write the store fences (no test hook: the write path's promise-free way) is admitted again, three tries in all, then refused with nothing written", async function () {
    const current = new MemoryStore();
    const a = await replica("a", { current, control: new MemoryStore() });
    const put = current.put.bind(current);
    let tries = 0;
    current.put = (...args: Parameters<typeof put>) => (tries++, put(...args));
    await a.s.put("users", "k", Buffer.from("v"));
    expect(tries).to.equal(1);
    await current.raiseFence(a.c.epoch + 5);
    const err = await a.s.put("users", "k", Buffer.from("w")).catch((e) => e);
    expect(isDecantError(err, "fenced"), String(err)).to.equal(true);
    expect(tries).to.equal(4);
    expect(await value(current, "k")).to.equal("1:v");
  });

  it("an intent whose write timed out (it landed, the answer was lost) is not left in the journal", async function () {
    const control = faulty(new MemoryStore());
    const a = await replica("a", { current: new MemoryStore(), target: new MemoryStore(), control: control.store });
    await a.c.setPhase("DUAL_WRITE", false);
    control.faults.applyThenFail = true;
    const err = await a.s.put("users", "k", Buffer.from("v")).catch((e) => e);
    control.faults.applyThenFail = false;
    expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    await waitFor(async () => (await a.c.control.list(JOURNAL_PREFIX)).length === 0, "the orphan intent removed");
  });

  it("model finding N1: from a phase reading the target, the way back to SINGLE goes through an active SHADOW_READ", async function () {
    const a = await replica("a", { current: new MemoryStore(), target: new MemoryStore() });
    await walk(a.c, ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"]);
    expect(String(await a.c.setPhase("SINGLE", true).catch((e) => e))).to.include("through SHADOW_READ");
    await walk(a.c, ["SHADOW_READ", "SINGLE"]);
    expect(a.c.phase).to.equal("SINGLE");
  });

  it("model finding N2: during a migration a lapsed view refuses reads of the current store", async function () {
    const current = new MemoryStore();
    const control = faulty(new MemoryStore());
    const a = await replica("a", { current, target: new MemoryStore(), control: control.store });
    await a.c.setPhase("DUAL_WRITE", false);
    await a.s.put("users", "k", Buffer.from("v"));
    control.faults.get = control.faults.put = true;
    await waitFor(async () => a.c.isFailClosed(), "fail closed");
    const err = await a.s.get("users", "k").catch((e) => e);
    expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    control.faults.get = control.faults.put = false;
    await waitFor(async () => (await a.s.get("users", "k").then((i) => i !== null, () => false)), "reads again");
  });

  it("model finding N3: a dead owner's write is fenced off before its intent is repaired, so it cannot land behind the repair", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    const first = hold("k");
    // b's lease is long, so its view still holds when the write reaches the store: only the
    // store's fence stands between that write and the repair.
    const b = await replica("b", { current, target }, { beforePrimary: first.hook, beforeSecondary: (w) => (w.key === "k" ? new Promise<void>(() => undefined) : undefined) }, { leaseMs: 10_000 });
    const a = await replica("a", { current, target });
    await walk(a.c, ["DUAL_WRITE"]);
    void b.s.put("users", "k", Buffer.from("late")).catch(() => undefined);
    await first.reached;
    await b.c.stop(); // b looks dead; its write is between admission and the primary call
    await waitFor(async () => (await a.c.control.list(JOURNAL_PREFIX)).length === 0, "a repairing b's intent");
    first.release(); // b's write now reaches the store: refused by the fence, admitted again with a new intent
    await waitFor(async () => (await value(target, "k")) === "1:late", "the re-admitted write repaired to the target");
    expect(await value(current, "k")).to.equal("1:late");
  });

  it("a housekeeping repair that took its phase before a fenced switch does not copy a new-phase entry the old way and drop it", async function () {
    const shared = new MemoryStore();
    const cur = faulty(shared); // b's view of the current store: its writes to it can fail
    const target = new MemoryStore();
    let armed = false;
    const h = hold("k");
    const a = await replica("a", { current: shared, target });
    const b = await replica("b", { current: cur.store, target, control: shared }, { beforeRepair: (phase) => (armed && phase === "READ_TARGET" ? ((armed = false), h.hook({ key: "k" })) : undefined) });
    await walk(a.c, ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"]);
    await waitFor(() => b.c.isActive(), "READ_TARGET active");
    armed = true;
    await h.reached; // b's repair holds READ_TARGET (current → target) and has not listed yet
    await a.c.setPhase("TARGET_PRIMARY", true); // b keeps renewing and acknowledging meanwhile
    await waitFor(async () => b.c.phase === "TARGET_PRIMARY" && b.c.isActive(), "TARGET_PRIMARY active on b");
    cur.faults.applyIfNewer = true; // b's write reaches the new primary but not the old one
    const v = await b.s.put("users", "k", Buffer.from("new"));
    cur.faults.applyIfNewer = false;
    expect((await b.c.control.list(JOURNAL_PREFIX)).length).to.equal(1);
    h.release(); // the held repair lists now, with the new-phase entry in the journal
    // The entry is repaired the new way (target → current), so a rollback finds the write on current.
    await waitFor(async () => (await value(shared, "k")) === `${v}:new`, "the write repaired to the old primary", 5000);
    expect(await b.c.journalDepth()).to.equal(0);
  });
});
