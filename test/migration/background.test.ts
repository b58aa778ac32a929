// Background work a request starts (a renewal round from freshView or a fenced write's retry,
// and the housekeeping it starts) is shared by every request: it must not be given the caller
// (src/protocol/call.ts), or one client leaving stops the journal repair.
import { expect } from "chai";
import { MemoryStore } from "../../src/backends/memory.js";
import { signalCaller } from "../../src/protocol/call.js";
import type { Store } from "../../src/protocol/store.js";
import { DecantError, isDecantError } from "../../src/protocol/errors.js";
import { MigrationController } from "../../src/migration/controller.js";
import { JOURNAL_PREFIX, PHASE_KEY, type PhaseRecord } from "../../src/migration/control.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { silentLogger } from "../../src/log.js";
import { waitFor } from "../support/migration.js";
import { faulty } from "../support/faulty-store.js";
import { MigratingStore } from "../../src/migration/migrating-store.js";
import type { Logger } from "../../src/log.js";

/** The control store, recording under which caller each scan ran (a real store: every call goes through). */
function watched(store: Store) {
  const scans: { prefix?: string; signal?: AbortSignal; failed?: unknown }[] = [];
  const s = Object.create(store) as Store;
  s.scan = async (...args: Parameters<Store["scan"]>) => {
    const seen: (typeof scans)[number] = { prefix: args[1]?.prefix, signal: args[2]?.signal };
    scans.push(seen);
    try {
      return await store.scan(...args);
    } catch (err) {
      seen.failed = err;
      throw err;
    }
  };
  return { store: s, scans };
}

describe("migration background work: the caller's cancel, repair failures", function () {
  this.timeout(20_000);
  let c: MigrationController | undefined;
  afterEach(async () => c?.stop());

  it("a round started by a request whose caller then cancels renews and runs its housekeeping, without that caller", async function () {
    const current = new MemoryStore();
    const control = watched(current);
    // Rounds only when asked: no timer ticks interleave.
    c = new MigrationController({ current, target: new MemoryStore(), control: control.store, replicaId: "r1", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: { heartbeatMs: 600_000, leaseMs: 600_000 } });
    await c.start();
    await waitFor(async () => control.scans.some((s) => s.prefix === JOURNAL_PREFIX), "the first housekeeping");
    await new Promise((r) => setTimeout(r, 50)); // let it finish
    control.scans.length = 0;

    // A request starts the round (tick() takes no caller: nothing of the request's can reach it)...
    const caller = new AbortController();
    const round = c.tick();
    caller.abort(); // ...and its client leaves at once
    await round;
    await waitFor(async () => control.scans.some((s) => s.prefix === JOURNAL_PREFIX && !s.failed), "the journal repair of the round's housekeeping", 5000);
    for (const s of control.scans) {
      expect(s.signal, `scan of ${s.prefix} ran under the caller's signal`).to.equal(undefined);
      expect(s.failed, `scan of ${s.prefix} failed`).to.equal(undefined);
    }
  });

  it("a repair that keeps failing is counted every round and logged at warn once per distinct reason", async function () {
    const current = new MemoryStore();
    const target = faulty(new MemoryStore());
    const warnings: string[] = [];
    const ignore = () => undefined;
    const logger: Logger = { error: ignore, info: ignore, debug: ignore, warn: (message, fields) => warnings.push(`${message} ${JSON.stringify(fields ?? {})}`) };
    const metrics = new MigrationMetrics(new Metrics(false).registry);
    c = new MigrationController({ current, target: target.store, control: current, replicaId: "r1", metrics, logger, timings: { heartbeatMs: 20, leaseMs: 2000, storeTimeoutMs: 0 } });
    await c.start();
    await c.setPhase("DUAL_WRITE", true);
    await waitFor(async () => c!.isActive(), "DUAL_WRITE active");
    target.faults.applyIfNewer = true; // the secondary write fails, and so does every repair of it
    await new MigratingStore(c).put("users", "k", Buffer.from("v"));
    const failures = async () => (await metrics.repairFailures.get()).values[0]?.value ?? 0;
    await waitFor(async () => (await failures()) >= 5, "repair rounds failing");
    const repairWarnings = warnings.filter((w) => w.includes("repair journal cannot be repaired"));
    expect(repairWarnings, repairWarnings.join("\n")).to.have.length(1);
    expect(repairWarnings[0]).to.match(/injected: secondary down/);
    target.faults.applyIfNewer = false;
    await waitFor(async () => (await c!.journalDepth()) === 0, "the repair once the secondary is back");
  });

  it("a write whose caller goes after the primary has it: the secondary, the intent's repair mark and its repair get no caller and finish", async function () {
    const current = new MemoryStore();
    const target = faulty(new MemoryStore());
    // The control store (the current store, as in a sidecar without its own), recording the caller of each journal write.
    const journal: { op: string; key: string; call: unknown }[] = [];
    const control = Object.create(current) as Store;
    control.put = (...args: Parameters<Store["put"]>) => {
      if (args[1].startsWith(JOURNAL_PREFIX)) journal.push({ op: "put", key: args[1], call: args[5] });
      return current.put(...args);
    };
    control.delete = (...args: Parameters<Store["delete"]>) => {
      if (args[1].startsWith(JOURNAL_PREFIX)) journal.push({ op: "delete", key: args[1], call: args[4] });
      return current.delete(...args);
    };
    const applied: unknown[] = [];
    const apply = target.store.applyIfNewer;
    target.store.applyIfNewer = (...args: Parameters<Store["applyIfNewer"]>) => {
      applied.push(args[3]);
      return apply(...args);
    };
    const caller = new AbortController();
    c = new MigrationController({ current, target: target.store, control, replicaId: "r1", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: { heartbeatMs: 20, leaseMs: 2000, storeTimeoutMs: 0 }, hooks: { beforeSecondary: () => caller.abort() } });
    await c.start();
    await c.setPhase("DUAL_WRITE", true);
    await waitFor(async () => c!.isActive(), "DUAL_WRITE active");
    const store = new MigratingStore(c);
    const call = signalCaller(caller.signal);

    // The secondary is up: the copy lands although the caller left once the primary had the write.
    expect(await store.put("users", "a", Buffer.from("1"), undefined, undefined, call)).to.equal(1n);
    expect((await target.store.getRaw("users", "a"))?.version).to.equal(1n);
    await waitFor(async () => (await c!.journalDepth()) === 0, "the intent of a removed");

    // The secondary is down: the write is still acknowledged (DUAL_WRITE), its intent marked for repair, then repaired.
    caller.abort();
    const second = new AbortController();
    c.hooks.beforeSecondary = () => second.abort();
    target.faults.applyIfNewer = true;
    expect(await store.put("users", "b", Buffer.from("2"), undefined, undefined, signalCaller(second.signal))).to.equal(1n);
    const marked = await c.control.list<{ failed?: boolean }>(JOURNAL_PREFIX);
    expect(marked.map((e) => e.value.failed), "the intent marked for repair").to.deep.equal([true]);
    target.faults.applyIfNewer = false;
    await waitFor(async () => (await target.store.getRaw("users", "b"))?.version === 1n, "the repair to copy b");
    await waitFor(async () => (await c!.journalDepth()) === 0, "the repaired intent removed");

    // Only the intents (written before the primary write, while the caller was still there) carry it.
    expect(journal.filter((j) => j.call !== undefined).map((j) => j.op), "journal writes given the caller").to.deep.equal(["put", "put"]);
    expect(journal.filter((j) => j.op === "put" && j.call === undefined).length, "the repair mark, without the caller").to.be.greaterThan(0);
    expect(applied.every((a) => a === undefined), "a copy to the secondary given the caller").to.equal(true);
  });

  it("a write whose caller has gone before its intent: refused cancelled (nothing written), and no own intent is left behind", async function () {
    const current = new MemoryStore();
    const target = new MemoryStore();
    c = new MigrationController({ current, target, control: current, replicaId: "r1", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: { heartbeatMs: 20, leaseMs: 2000 } });
    await c.start();
    await c.setPhase("DUAL_WRITE", true);
    await waitFor(async () => c!.isActive(), "DUAL_WRITE active");
    const store = new MigratingStore(c);
    const gone = signalCaller(AbortSignal.abort());
    for (let i = 0; i < 3; i++) {
      const err = await store.put("users", `k${i}`, Buffer.from("v"), undefined, undefined, gone).then(
        () => undefined,
        (e: unknown) => e,
      );
      // The intent was refused before it was sent: the whole write was never started (the Store
      // contract's `cancelled`), not an outage of the repair journal (`unavailable`).
      expect(isDecantError(err, "cancelled"), String(err)).to.equal(true);
    }
    expect(await current.batchGetRaw("users", ["k0", "k1", "k2"])).to.deep.equal([]);
    expect(await target.batchGetRaw("users", ["k0", "k1", "k2"])).to.deep.equal([]);
    expect(await c.journalDepth()).to.equal(0);
    // An intent that was never written is not kept for a repair that can never find it (it would stay for good).
    expect((c as unknown as { ownIntents: Map<string, unknown> }).ownIntents.size).to.equal(0);
  });

  it("an intent whose write failed without landing is forgotten once a whole listing of the journal, taken after storeTimeoutMs, does not hold it", async function () {
    const current = new MemoryStore();
    const control = Object.create(current) as Store;
    let refuseIntents = true;
    // The control store fails intent writes as an outage would (nothing written, outcome unknown to the caller).
    control.put = (...args: Parameters<Store["put"]>) =>
      refuseIntents && args[1].startsWith(JOURNAL_PREFIX) ? Promise.reject(new DecantError("unavailable", "control store down (test)")) : current.put(...args);
    c = new MigrationController({ current, target: new MemoryStore(), control, replicaId: "r1", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: { heartbeatMs: 20, leaseMs: 2000, storeTimeoutMs: 200 } });
    await c.start();
    await c.setPhase("DUAL_WRITE", true);
    await waitFor(async () => c!.isActive(), "DUAL_WRITE active");
    const store = new MigratingStore(c);
    const own = (c as unknown as { ownIntents: Map<string, number | undefined> }).ownIntents;
    for (let i = 0; i < 3; i++) {
      const err = await store.put("users", `k${i}`, Buffer.from("v")).then(() => undefined, (e: unknown) => e);
      expect(isDecantError(err, "unavailable"), String(err)).to.equal(true);
    }
    expect(own.size, "kept while they may still land").to.equal(3);
    refuseIntents = false;
    await store.put("users", "ok", Buffer.from("v")); // a write whose intent lands and is removed as usual
    await waitFor(async () => own.size === 0, "the unlanded intents forgotten after storeTimeoutMs", 5000);
    expect(await c.journalDepth()).to.equal(0);
  });

  it("a SetPhase whose caller cancels while its write fence stands still finishes the switch and lifts the fence", async function () {
    const current = new MemoryStore();
    const caller = new AbortController();
    const metrics = new MigrationMetrics(new Metrics(false).registry);
    c = new MigrationController({ current, target: new MemoryStore(), control: current, replicaId: "r1", metrics, logger: silentLogger(), timings: { heartbeatMs: 20, leaseMs: 2000 }, hooks: { duringFence: () => caller.abort() } });
    await c.start();
    for (const p of ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET"] as const) {
      await c.setPhase(p, true);
      await waitFor(async () => c!.isActive(), `${p} active`);
    }
    await c.setPhase("TARGET_PRIMARY", true, signalCaller(caller.signal)).catch(() => undefined); // the client has gone: its answer does not matter
    const rec = await c.control.read<PhaseRecord>(PHASE_KEY);
    expect({ phase: rec?.value.phase, fence: rec?.value.fence }).to.deep.equal({ phase: "TARGET_PRIMARY", fence: false });
  });

  it("a SetPhase(DUAL_WRITE) whose caller cancels right after the commit still raises the current store's fence", async function () {
    const current = new MemoryStore();
    const caller = new AbortController();
    const control = Object.create(current) as Store;
    control.put = async (...args: Parameters<Store["put"]>) => {
      const version = await current.put(...args);
      const committed = args[1] === PHASE_KEY && (JSON.parse(args[2].toString("utf8")) as PhaseRecord).phase === "DUAL_WRITE";
      if (committed) caller.abort(); // the record is committed; the client goes
      return version;
    };
    c = new MigrationController({ current, target: new MemoryStore(), control, replicaId: "r1", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: { heartbeatMs: 20, leaseMs: 2000 } });
    await c.start();
    const before = c.epoch;
    await c.setPhase("DUAL_WRITE", true, signalCaller(caller.signal)).catch(() => undefined);
    expect(caller.signal.aborted).to.equal(true);
    // A SINGLE write still on its way (admitted under the old epoch) is refused by the store.
    const late = await current.put("users", "late", Buffer.from("x"), undefined, before).catch((e: unknown) => e);
    expect(isDecantError(late, "fenced"), String(late)).to.equal(true);
  });
});
