// Issue 13 (9): after COMPLETE the old store keeps a COMPLETE control record; `Reset` (decant
// migrate reset) makes it a plain store again, but never while a replica may still migrate.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { startTestSidecar } from "../support/sidecar.js";
import { waitFor } from "../support/migration.js";

const FAST = { DECANT_HEARTBEAT_MS: "50", DECANT_LEASE_MS: "1000", DECANT_REPLICA_TTL_MS: "2000", DECANT_FENCE_TIMEOUT_MS: "5000" };

describe("migration: reset of the old store after COMPLETE", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "decant-reset-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses while a replica with a target heartbeats, then makes the old store serve again", async function () {
    const current = `sqlite:${join(dir, "old.db")}`;
    const migrating = await startTestSidecar({ ...FAST, DECANT_CURRENT: current, DECANT_TARGET: `sqlite:${join(dir, "new.db")}`, DECANT_REPLICA_ID: "migrating" });
    for (const phase of ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET", "TARGET_PRIMARY", "COMPLETE"]) {
      await migrating.client.call("migration", "SetPhase", { phase, force: true });
      await waitFor(async () => (await migrating.client.call<{ active: boolean }>("migration", "GetStatus", {})).active, `${phase} active`);
    }
    const old = await startTestSidecar({ ...FAST, DECANT_CURRENT: current, DECANT_REPLICA_ID: "old" });
    try {
      const refused = (await old.client.put("users", "k", Buffer.from("v")).catch((e) => e)) as grpc.ServiceError;
      expect(refused.code).to.equal(grpc.status.UNAVAILABLE);
      const busy = (await old.client.call("migration", "Reset", {}).catch((e) => e)) as grpc.ServiceError;
      expect(busy.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(busy.details).to.include("migrating");
      await migrating.stop();
      const status = await old.client.call<{ phase: string }>("migration", "Reset", {});
      expect(status.phase).to.equal("SINGLE");
      expect((await old.client.put("users", "k", Buffer.from("v"))).version).to.equal("1");
    } finally {
      await old.stop();
      await migrating.stop();
    }
  });

  it("refuses mid-migration: SetPhase(SINGLE) is the way back there", async function () {
    const s = await startTestSidecar({ ...FAST, DECANT_CURRENT: "memory:", DECANT_TARGET: `sqlite:${join(dir, "t2.db")}` });
    try {
      await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      const err = (await s.client.call("migration", "Reset", {}).catch((e) => e)) as grpc.ServiceError;
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.details).to.include("not COMPLETE");
    } finally {
      await s.stop();
    }
  });
});
