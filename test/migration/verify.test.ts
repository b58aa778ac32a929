// The verifier must find every kind of difference (rule 6), by both of its strategies: a merge
// join when both stores scan in key order, per-key lookups when one does not (DynamoDB).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import type { Store } from "../../src/protocol/store.js";
import { startDynalite, type Dynalite } from "../support/dynalite.js";
import { waitFor } from "../support/migration.js";
import { buf } from "../support/names.js";
import { postgresAvailable, serverAvailable, TEST_URLS } from "../support/servers.js";
import { startTestSidecar } from "../support/sidecar.js";

const dir = mkdtempSync(join(tmpdir(), "decant-verify-"));
const run = Math.random().toString(36).slice(2, 8);
let dynalite: Dynalite | undefined;
const dynamoOk = await serverAvailable("dynamodb (dynalite)", async () => (dynalite = await startDynalite()));
const pgOk = await postgresAvailable();

const PAIRS = [
  { name: "sqlite → sqlite (merge join)", ok: true, current: () => `sqlite:${join(dir, "a.db")}`, target: () => `sqlite:${join(dir, "b.db")}` },
  { name: "postgres → redis (merge join across technologies)", ok: pgOk, current: () => `${TEST_URLS.postgres}?table=verify_${run}`, target: () => `${TEST_URLS.redis}?prefix=verify_${run}` },
  { name: "sqlite → dynamodb (lookups: DynamoDB scans are unordered)", ok: dynamoOk, current: () => `sqlite:${join(dir, "c.db")}`, target: () => `dynamodb://verify_${run}?region=us-east-1&endpoint=${dynalite!.endpoint}` },
];

const NS = "users";
const KEYS = 2_500; // spans several merge pages (1,000) and lookup pages (200)
const key = (i: number) => `k${String(i).padStart(5, "0")}`;

interface Report {
  checked: string;
  in_sync: string;
  missing: string;
  stale: string;
  extra: string;
  repaired: string;
  done: boolean;
  sample_keys: string[];
}

after(async () => {
  await dynalite?.stop();
  rmSync(dir, { recursive: true, force: true });
  if (pgOk) {
    const c = new pg.Client({ connectionString: TEST_URLS.postgres });
    await c.connect();
    await c.query(`DROP TABLE IF EXISTS verify_${run}`);
    await c.end();
  }
});

for (const pair of PAIRS) {
  if (!pair.ok) continue;
  describe(`verify: ${pair.name}`, function () {
    this.timeout(120_000);
    let sidecar: Awaited<ReturnType<typeof startTestSidecar>>;
    let current: Store;
    let target: Store;

    const verify = (repair = false) =>
      new Promise<Report>((resolve, reject) => {
        let last: Report | undefined;
        const stream = sidecar.client.stream("Verify", { repair });
        stream.on("data", (r: Report) => (last = r));
        stream.on("end", () => (last ? resolve(last) : reject(new Error("no report"))));
        stream.on("error", reject);
      });

    before(async () => {
      sidecar = await startTestSidecar({ DECANT_CURRENT: pair.current(), DECANT_TARGET: pair.target(), DECANT_CONTROL: `sqlite:${join(dir, `control-${Math.random()}.db`)}`, DECANT_HEARTBEAT_MS: "50" });
      await sidecar.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
      await waitFor(async () => (await sidecar.client.call("migration", "GetStatus", {})).active, "DUAL_WRITE active");
      current = await openStore(pair.current());
      target = await openStore(pair.target());
      // The same items on both sides (a finished backfill), tombstones included...
      for (let i = 0; i < KEYS; i += 500) {
        const items = Array.from({ length: 500 }, (_, j) => ({ key: key(i + j), value: i + j === 700 ? null : buf(`value ${i + j}`), version: BigInt(1 + ((i + j) % 3)) }));
        await current.applyIfNewer(NS, items);
        await target.applyIfNewer(NS, items);
      }
      // ...then one difference of each kind, planted behind the sidecar's back.
      await current.applyIfNewer(NS, [
        { key: "only-in-source", value: buf("new"), version: 1n }, // missing
        { key: "tombstone-not-copied", value: null, version: 4n }, // missing (tombstones are copied too)
        { key: key(10), value: buf("newer"), version: 9n }, // stale: the copy holds an older version
        { key: "same-version-other-value", value: buf("right"), version: 5n },
      ]);
      await target.applyIfNewer(NS, [
        { key: "same-version-other-value", value: buf("wrong"), version: 5n }, // stale: same version, other bytes
        { key: "only-in-copy", value: buf("?"), version: 3n }, // extra
      ]);
    });
    after(async () => {
      await sidecar?.stop();
      await current?.dropNamespace(NS);
      await target?.dropNamespace(NS);
      await current?.close();
      await target?.close();
    });

    it("finds each planted difference and nothing else", async function () {
      const r = await verify();
      expect(r.done).to.equal(true);
      expect({ checked: r.checked, missing: r.missing, stale: r.stale, extra: r.extra, repaired: r.repaired }).to.deep.equal({
        checked: String(KEYS + 4),
        missing: "2",
        stale: "2",
        extra: "1",
        repaired: "0",
      });
      expect(r.in_sync).to.equal(String(KEYS - 1));
      expect([...r.sample_keys].sort()).to.deep.equal(
        [`${NS}/only-in-source (missing)`, `${NS}/tombstone-not-copied (missing)`, `${NS}/${key(10)} (stale)`, `${NS}/same-version-other-value (stale)`, `${NS}/only-in-copy (extra)`].sort(),
      );
    });

    it("counts each Verify in decant_requests_total", async function () {
      const before = await verifyCount();
      await verify();
      expect(await verifyCount()).to.equal(before + 1);
    });

    const verifyCount = async () => {
      const text = await (await fetch(`http://127.0.0.1:${sidecar.sidecar.metricsPort}/metrics`)).text();
      return Number(/^decant_requests_total\{rpc="Migration\/Verify",code="OK"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
    };

    it("repairs what the source can overwrite, reports what it cannot, and a second run agrees", async function () {
      const repaired = await verify(true);
      // applyIfNewer cannot overwrite the same version, nor delete a key the source never had.
      expect({ missing: repaired.missing, stale: repaired.stale, extra: repaired.extra, repaired: repaired.repaired }).to.deep.equal({ missing: "0", stale: "1", extra: "1", repaired: "3" });
      expect(await target.getRaw(NS, "tombstone-not-copied")).to.deep.equal({ key: "tombstone-not-copied", value: null, version: 4n });
      expect((await target.getRaw(NS, key(10)))?.version).to.equal(9n);
      const again = await verify();
      expect({ missing: again.missing, stale: again.stale, extra: again.extra, repaired: again.repaired }).to.deep.equal({ missing: "0", stale: "1", extra: "1", repaired: "0" });
      expect(again.sample_keys).to.have.members([`${NS}/same-version-other-value (stale)`, `${NS}/only-in-copy (extra)`]);
    });
  });
}
