// A sidecar configured without migration timings must use the defaults of DESIGN (heartbeat
// 1 s, lease 5 s), not undefined ones (a heartbeat every millisecond, a lease that never lapses).
import { expect } from "chai";
import { DEFAULT_TIMINGS } from "../../src/migration/controller.js";
import { startTestSidecar } from "../support/sidecar.js";
import { waitFor } from "../support/migration.js";

/** Renewals of the view so far (one per heartbeat round), from the sidecar's /metrics. */
async function renewals(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("decant_control_renewal_seconds_count"));
  return Number(line?.split(" ").at(-1) ?? 0);
}

describe("migration: default timings", function () {
  this.timeout(30_000);

  it("a sidecar given no timings uses DESIGN's, and renews its view no faster than once a second", async function () {
    const s = await startTestSidecar({ DECANT_CURRENT: "memory:" });
    try {
      expect(s.sidecar.controller.timings).to.deep.equal({ ...DEFAULT_TIMINGS, storeTimeoutMs: s.config.storeTimeoutMs });
      expect(s.sidecar.controller.timings).to.include({ heartbeatMs: 1000, leaseMs: 5000 });
      // Two more rounds, waited for (not slept for): at a 1 s heartbeat they take at least ~2 s.
      const first = await renewals(s.sidecar.metricsPort);
      const since = performance.now();
      await waitFor(async () => (await renewals(s.sidecar.metricsPort)) >= first + 2, "two heartbeat rounds", 20_000);
      expect(performance.now() - since).to.be.greaterThan(900); // one full interval between the two, less timer slack
    } finally {
      await s.stop();
    }
  });
});
