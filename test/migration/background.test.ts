// Background work a request starts (a renewal round from freshView or a fenced write's retry,
// and the housekeeping it starts) is shared by every request: it must not be given the caller
// (src/protocol/call.ts), or one client leaving stops the journal repair.
import { expect } from "chai";
import { MemoryStore } from "../../src/backends/memory.js";
import { signalCaller } from "../../src/protocol/call.js";
import type { Store } from "../../src/protocol/store.js";
import { isDecantError } from "../../src/protocol/errors.js";
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
