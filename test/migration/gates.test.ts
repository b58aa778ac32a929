// The DUAL_WRITE gate of DESIGN §1: every stored value must fit the target.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { openStore } from "../../src/backends/index.js";
import { startDynalite, type Dynalite } from "../support/dynalite.js";
import { startTestSidecar } from "../support/sidecar.js";

describe("migration: values too large for the target", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "decant-gates-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  type Sidecar = Awaited<ReturnType<typeof startTestSidecar>>;
  async function withSidecar(targetUrl: string, run: (s: Sidecar) => Promise<void>, large: Record<string, number> = { huge: 7 * 1024 * 1024 }) {
    const currentUrl = `sqlite:${join(dir, `current-${Math.random().toString(36).slice(2)}.db`)}`;
    const current = await openStore(currentUrl);
    for (let i = 0; i < 50; i++) await current.put("users", `u${i}`, Buffer.from(`v${i}`));
    // By default one value sqlite holds (64 MiB) and memory does not (6.25 MiB).
    for (const [key, bytes] of Object.entries(large)) await current.put("users", key, Buffer.alloc(bytes, 1));
    await current.close();
    const s = await startTestSidecar({ DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, DECANT_HEARTBEAT_MS: "50" });
    try {
      await run(s);
    } finally {
      await s.stop();
    }
  }

  /** Calls of `op` on the current store so far, from the sidecar's own metrics. */
  async function currentCalls(s: Sidecar, op: "scanRaw" | "largeValues"): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("decant_store_operation_duration_seconds_count") && l.includes('store="current:sqlite"') && l.includes(`op="${op}"`));
    return line ? Number(line.split(" ").at(-1)) : 0;
  }

  it("refuses DUAL_WRITE naming the item, and accepts once it is gone", async function () {
    await withSidecar("memory:", async (s) => {
      const err = await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }).catch((e) => e as grpc.ServiceError);
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.details).to.include("users/huge").and.include("too large for the memory target");
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("SINGLE");
      // Sizes only: not one value was read out of the current store.
      expect(await currentCalls(s, "largeValues")).to.be.greaterThan(0);
      expect(await currentCalls(s, "scanRaw")).to.equal(0);
      await s.client.call("store", "Delete", { namespace: "users", key: "huge" });
      await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
    });
  });

  it("does not read the values when the target holds anything the current store can", async function () {
    await withSidecar(`sqlite:${join(dir, "target.db")}`, async (s) => {
      await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
      expect(await currentCalls(s, "scanRaw")).to.equal(0);
      expect(await currentCalls(s, "largeValues")).to.equal(0);
    });
  });

  describe("a target whose limit depends on the key (DynamoDB)", function () {
    let dynalite: Dynalite;
    before(async () => (dynalite = await startDynalite()));
    after(async () => dynalite?.stop());

    it("refuses only the value too large for its own key", async function () {
      const target = `dynamodb://gates_${Math.random().toString(36).slice(2)}?region=us-east-1&endpoint=${dynalite.endpoint}`;
      const probe = await openStore(target);
      const longKey = "l".repeat(1000);
      const fitsShortKey = probe.capabilities.maxValueBytes("s");
      await probe.close();
      // Both values are the largest a one-letter key can have: the long key's item is 2 KB too big.
      await withSidecar(
        target,
        async (s) => {
          const err = await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }).catch((e) => e as grpc.ServiceError);
          expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
          expect(err.details).to.include(`users/${longKey} (${fitsShortKey} bytes)`).and.not.include("users/s ");
          await s.client.call("store", "Delete", { namespace: "users", key: longKey });
          await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
          expect((await s.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
        },
        { s: fitsShortKey, [longKey]: fitsShortKey },
      );
    });
  });
});
