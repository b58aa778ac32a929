// A sidecar configured without migration timings must use the defaults of DESIGN (heartbeat
// 1 s, lease 5 s), not undefined ones.
import { expect } from "chai";
import { startTestSidecar } from "../support/sidecar.js";

describe("migration: default timings", function () {
  this.timeout(30_000);

  it("a sidecar given no timings heartbeats once a second", async function () {
    const s = await startTestSidecar({ DECANT_CURRENT: "memory:" });
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const text = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
      // The control record lives in the current store here: each heartbeat writes one item.
      const line = text.split("\n").find((l) => l.startsWith('decant_store_operation_duration_seconds_count{store="current:memory",op="put"}'));
      const puts = Number(line?.split(" ").at(-1));
      expect(puts).to.be.within(2, 5); // at start, 1 s and 2 s (plus the first control record)
    } finally {
      await s.stop();
    }
  });
});
