// Issue 13 (8): a sidecar without a migration says its store is unreachable (not "the migration
// phase"), accepts writes again soon after the store returns, logs the return, and heartbeats
// into the user's store only as often as liveness needs.
import { expect } from "chai";
import { MemoryStore } from "../../src/backends/memory.js";
import { MigrationController } from "../../src/migration/controller.js";
import { MigratingStore } from "../../src/migration/migrating-store.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { isDecantError } from "../../src/protocol/errors.js";
import type { Logger } from "../../src/log.js";
import { silentLogger } from "../../src/log.js";
import { CONTROL_NAMESPACE } from "../../src/protocol/types.js";
import { waitFor } from "../support/migration.js";
import { faulty } from "../support/faulty-store.js";

describe("migration: a store outage without a migration", function () {
  this.timeout(20_000);

  async function solo(logger: Logger = silentLogger()) {
    const f = faulty(new MemoryStore());
    const metrics = new MigrationMetrics(new Metrics(false).registry);
    const c = new MigrationController({ current: f.store, control: f.store, replicaId: "solo", metrics, logger, timings: { heartbeatMs: 50, leaseMs: 300, replicaTtlMs: 1500, storeTimeoutMs: 0 } });
    await c.start();
    /** Renewals of the view so far: one per tick that reached the store. */
    const renewals = async () => (await metrics.renewal.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value ?? 0;
    return { c, s: new MigratingStore(c), f, renewals };
  }

  it("names the store, resumes writes within a few hundred ms of its return, and logs the return", async function () {
    const lines: string[] = [];
    const logger = { ...silentLogger(), info: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m) } as Logger;
    const { c, s, f } = await solo(logger);
    try {
      f.faults.get = f.faults.put = true;
      await waitFor(async () => c.isFailClosed(), "fail closed");
      const err = await s.put("users", "k", Buffer.from("v")).catch((e) => e);
      expect(isDecantError(err, "unavailable")).to.equal(true);
      expect(err.message).to.include("the store memory: is unreachable").and.not.include("migration phase");
      f.faults.get = f.faults.put = false;
      const back = performance.now();
      await waitFor(async () => (await s.put("users", "k", Buffer.from("v")).then(() => true, () => false)), "writes accepted again");
      expect(performance.now() - back).to.be.below(600);
      expect(lines.some((l) => l.includes("answers again"))).to.equal(true);
    } finally {
      await c.stop();
    }
  });

  it("heartbeats every third of the TTL, not every tick, while SINGLE with no target", async function () {
    const { c, f, renewals } = await solo();
    // The heartbeat records only: each heartbeat also touches the binding record (housekeeping),
    // which a count of every control write took for a second heartbeat.
    let heartbeats = 0;
    const put = f.store.put;
    f.store.put = (...args: Parameters<typeof put>) => {
      if (args[0] === CONTROL_NAMESPACE && args[1].startsWith("replica/")) heartbeats++;
      return put(...args);
    };
    try {
      const before = heartbeats;
      const ticks = await renewals();
      const began = performance.now();
      // Counted in ticks, not milliseconds: a loaded machine ticks late, and then fewer times.
      await waitFor(async () => (await renewals()) - ticks >= 40, "40 ticks");
      const writes = heartbeats - before;
      const elapsed = performance.now() - began;
      // 40 ticks (about 2 s; a timer may fire a little early, so not always quite 2 s): a heartbeat
      // every 500 ms is 3 to 5 writes, far fewer than one a tick.
      expect(writes, `${writes} heartbeats in ${Math.round(elapsed)} ms`).to.be.at.least(3);
      expect(writes, `${writes} heartbeats in ${Math.round(elapsed)} ms`).to.be.at.most(Math.min(10, Math.ceil(elapsed / 500) + 1));
    } finally {
      await c.stop();
    }
  });
});
