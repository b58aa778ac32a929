// The DUAL_WRITE gate of DESIGN §1: every stored value must fit the target.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { openStore } from "../../src/backends/index.js";
import { startTestSidecar } from "../support/sidecar.js";

describe("migration: values too large for the target", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "decant-gates-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function withSidecar(targetUrl: string, run: (s: Awaited<ReturnType<typeof startTestSidecar>>) => Promise<void>) {
    const currentUrl = `sqlite:${join(dir, `current-${Math.random().toString(36).slice(2)}.db`)}`;
    const current = await openStore(currentUrl);
    for (let i = 0; i < 50; i++) await current.put("users", `u${i}`, Buffer.from(`v${i}`));
    await current.put("users", "huge", Buffer.alloc(7 * 1024 * 1024, 1)); // sqlite holds 64 MiB, memory 6.25 MiB
    await current.close();
    const s = await startTestSidecar({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_HEARTBEAT_MS: "50" });
    try {
      await run(s);
    } finally {
      await s.stop();
    }
  }

  /** scanRaw calls on the current store so far, from the sidecar's own metrics. */
  async function currentScans(s: Awaited<ReturnType<typeof startTestSidecar>>): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("decant_store_operation_duration_seconds_count") && l.includes('store="current:sqlite"') && l.includes('op="scanRaw"'));
    return line ? Number(line.split(" ").at(-1)) : 0;
  }

  it("refuses DUAL_WRITE naming the item, and accepts once it is gone", async function () {
    await withSidecar("memory:", async (s) => {
      const err = await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }).catch((e) => e as grpc.ServiceError);
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.details).to.include("users/huge").and.include("too large for the memory target");
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("SINGLE");
      expect(await currentScans(s)).to.be.greaterThan(0);
      await s.client.call("store", "Delete", { namespace: "users", key: "huge" });
      await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
    });
  });

  it("does not read the values when the target holds anything the current store can", async function () {
    await withSidecar(`sqlite:${join(dir, "target.db")}`, async (s) => {
      await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
      expect(await currentScans(s)).to.equal(0);
    });
  });
});
