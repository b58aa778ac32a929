// `decant migrate status` output: what a person reads about the backfill.
import { expect } from "chai";
import { formatStatus } from "../../src/cli/migrate.js";

describe("decant migrate status output", function () {
  it("never shows the backfill's estimated total below what is done (tombstones and live writes are not in the estimate)", () => {
    const text = formatStatus({
      phase: "DUAL_WRITE",
      active: true,
      epoch: "2",
      current_store: "sqlite:a.db",
      target_store: "sqlite:b.db",
      replicas: [],
      backfill: { state: "running", scanned: "5471", copied: "5000", skipped: "0", estimated_total: "5310", items_per_second: 100, error: "", runner: "r1" },
      repair_journal_depth: "0",
    } as unknown as Parameters<typeof formatStatus>[0]);
    expect(text).to.include("scanned 5471/5471");
    expect(text).to.include("100.0%");
  });
});
