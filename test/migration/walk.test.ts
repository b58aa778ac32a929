// A whole migration through the gRPC Migration service on two in-process sidecars that
// share one control record (SQLite files), with traffic running.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { openStore } from "../../src/backends/index.js";
import type { Store } from "../../src/protocol/store.js";
import { startTestSidecar } from "../support/sidecar.js";
import { compareStores, waitFor } from "../support/migration.js";

const FAST = { DECANT_HEARTBEAT_MS: "50", DECANT_LEASE_MS: "1000", DECANT_REPLICA_TTL_MS: "2000", DECANT_FENCE_TIMEOUT_MS: "5000", DECANT_BACKFILL_LEASE_MS: "1000" };

describe("migration: full walk on two sidecars", function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), "decant-walk-"));
  const currentUrl = `sqlite:${join(dir, "current.db")}`;
  const targetUrl = `sqlite:${join(dir, "target.db")}`;
  let a: Awaited<ReturnType<typeof startTestSidecar>>;
  let b: Awaited<ReturnType<typeof startTestSidecar>>;
  let current: Store;
  let target: Store;

  before(async () => {
    current = await openStore(currentUrl);
    target = await openStore(targetUrl);
    // A preloaded current store, with deletes (tombstones) in it.
    for (let i = 0; i < 300; i++) await current.put("users", `u${i}`, Buffer.from(`v${i}`));
    for (let i = 0; i < 300; i += 10) await current.delete("users", `u${i}`);
    const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, ...FAST };
    a = await startTestSidecar({ ...env, DECANT_REPLICA_ID: "a" });
    b = await startTestSidecar({ ...env, DECANT_REPLICA_ID: "b" });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await current?.close();
    await target?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = (s = a) => s.client.call("migration", "GetStatus", {});
  // Writes that succeeded on either sidecar, so far.
  let ops = 0;
  /** Waits until traffic has made `n` more writes: writes really cross every phase boundary. */
  const moreWrites = (n: number) => {
    const from = ops;
    return waitFor(async () => ops >= from + n, `${n} more writes`);
  };
  const setPhase = async (phase: string, force = false, s = a) => {
    const r = await s.client.call("migration", "SetPhase", { phase, force });
    await moreWrites(10);
    return r;
  };

  it("walks SINGLE → … → COMPLETE with traffic on both sidecars, rolls back from TARGET_PRIMARY, and loses nothing", async function () {
    let stop = false;
    const errors: string[] = [];
    const traffic = async (s: typeof a, tag: string) => {
      let n = 0;
      while (!stop) {
        const key = `u${n % 350}`;
        try {
          if (n % 7 === 3) await s.client.call("store", "Delete", { namespace: "users", key });
          else await s.client.call("store", "Put", { namespace: "users", key, value: Buffer.from(`${tag}${n}`) });
          ops++;
        } catch (err) {
          const e = err as grpc.ServiceError;
          // Writes held beyond a fence are refused with UNAVAILABLE by design; anything else is a bug.
          if (e.code !== grpc.status.UNAVAILABLE) errors.push(`${e.code} ${e.details}`);
        }
        n++;
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    const writers = [traffic(a, "a"), traffic(b, "b")];
    try {
      expect((await status()).phase).to.equal("SINGLE");
      const illegal = await setPhase("READ_TARGET").catch((e) => e as grpc.ServiceError);
      expect(illegal.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(illegal.details).to.include("next step is DUAL_WRITE");

      await setPhase("DUAL_WRITE");
      await waitFor(async () => (await status()).active, "DUAL_WRITE active");
      await a.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
      await waitFor(async () => (await status()).backfill.state === "done", "backfill done");
      await setPhase("SHADOW_READ");
      const early = await setPhase("READ_TARGET").catch((e) => e as grpc.ServiceError);
      expect(early.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(early.details).to.include("Verify");

      const reports: { done: boolean; missing: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = b.client.stream("Verify", {});
        stream.on("data", (r) => reports.push(r));
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      const last = reports[reports.length - 1]!;
      expect(last.done).to.equal(true);
      expect(last.missing).to.equal("0");
      await setPhase("READ_TARGET");
      await setPhase("TARGET_PRIMARY");
      expect((await status(b)).phase).to.equal("TARGET_PRIMARY");
      // Rollback: back to SHADOW_READ moves the primary to the current store again (fenced);
      // DUAL_WRITE only once every replica reads the current store again (SHADOW_READ active).
      const direct = (await a.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }).catch((e) => e)) as grpc.ServiceError;
      expect(direct.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(direct.details).to.include("through SHADOW_READ");
      await setPhase("SHADOW_READ");
      await setPhase("DUAL_WRITE");
      await moreWrites(20);
      stop = true;
      await Promise.all(writers);
      await a.sidecar.controller!.repairJournal("DUAL_WRITE", true);
      const diff = await compareStores(current, target, ["users"]);
      expect(diff, JSON.stringify(diff.slice(0, 5))).to.deep.equal([]);
      // And forward again to the end.
      stop = false;
      const again = [traffic(a, "a"), traffic(b, "b")];
      await setPhase("SHADOW_READ");
      await new Promise<void>((resolve, reject) => {
        const stream = a.client.stream("Verify", {});
        stream.on("data", () => undefined);
        stream.on("end", resolve);
        stream.on("error", reject);
      });
      await setPhase("READ_TARGET", true);
      await setPhase("TARGET_PRIMARY");
      await setPhase("COMPLETE");
      stop = true;
      await Promise.all(again);
      expect((await status()).phase).to.equal("COMPLETE");
      const back = await setPhase("TARGET_PRIMARY").catch((e) => e as grpc.ServiceError);
      expect(back.code).to.equal(grpc.status.FAILED_PRECONDITION);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(errors).to.deep.equal([]);
    expect(ops).to.be.greaterThan(100);
    expect(Number((await status()).epoch)).to.be.greaterThan(8);
  });
});
