// The DynamoDB adapter against the answers a busy DynamoDB gives and dynalite never does:
// throttles, 5xx, unprocessed batch items, lost answers, slow answers, and the old item returned
// with a failed condition. A fault-injecting HTTP proxy (test/support/dynamo-faults.ts) sits
// between the adapter and dynalite.
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { openStore } from "../../src/backends/index.js";
import { itemAttrs } from "../../src/backends/dynamodb.js";
import type { Store } from "../../src/protocol/store.js";
import { codeOf } from "../../src/server/status.js";
import { startDynalite, writeItems, type Dynalite } from "../support/dynalite.js";
import { internalError, serviceUnavailable, startFaultProxy, throttle, throttling, type FaultProxy } from "../support/dynamo-faults.js";
import { failure } from "../support/errors.js";
import { waitFor } from "../support/migration.js";
import { buf, freshNamespace } from "../support/names.js";
import { serverAvailable } from "../support/servers.js";

let server: Dynalite | undefined;
let proxy: FaultProxy | undefined;
const ok = await serverAvailable("dynamodb (dynalite)", async () => {
  server = await startDynalite();
  proxy = await startFaultProxy(server.endpoint);
});
after(async () => {
  await proxy?.stop();
  await server?.stop();
});

const freshTable = () => `decant_faults_${randomBytes(5).toString("hex")}`;

if (ok) {
  describe("dynamodb under faults (a fault-injecting proxy in front of dynalite)", function () {
    const table = freshTable();
    const url = (timeoutMs: number) => `dynamodb://${table}?region=us-east-1&endpoint=${proxy!.endpoint}&timeout_ms=${timeoutMs}`;
    let store: Store;
    let ns: string;
    before(async function () {
      store = await openStore(url(3000));
      ns = freshNamespace();
      await store.put(ns, "warm", buf("up")); // creates the table and registers ns: later faults hit only the call under test
    });
    beforeEach(async () => {
      // The store re-registers ns once a minute (an UpdateItem); a write here renews that first,
      // so within a test every UpdateItem counted or faulted is the call under test's.
      await store.put(ns, "renew_registry", buf(""));
      proxy!.clear();
    });
    after(async () => store?.close());

    it("retries throttled reads and writes until they pass, and applies the write once", async function () {
      proxy!.inject("UpdateItem", throttle(), 2);
      proxy!.inject("GetItem", throttling(), 2);
      expect(await store.put(ns, "throttled", buf("v"))).to.equal(1n);
      expect((await store.get(ns, "throttled"))?.version).to.equal(1n);
      expect(proxy!.requests).to.include({ UpdateItem: 3, GetItem: 3 });
      expect(proxy!.forwarded).to.include({ UpdateItem: 1, GetItem: 1 });
    });

    it("retries throttled and failed scan pages, and the scan still sees every key once", async function () {
      const sns = freshNamespace();
      const keys = Array.from({ length: 40 }, (_, i) => `s_${String(i).padStart(2, "0")}`);
      await writeItems(server!.endpoint, table, keys.map((key) => itemAttrs("buckets", sns, { key, value: buf(key), version: 1n })));
      proxy!.inject("Query", throttle(), 2);
      proxy!.inject("Query", serviceUnavailable(), 1);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.scan(sns, { limit: 7, cursor });
        seen.push(...page.items.map((i) => i.key));
        cursor = page.cursor;
      } while (cursor);
      expect(seen.sort()).to.deep.equal(keys);
      expect(proxy!.requests.Query! - proxy!.forwarded.Query!).to.equal(3); // the three faults, each asked again
    });

    it("reports a persistent throttle as UNAVAILABLE, in bounded time, and writes nothing", async function () {
      proxy!.inject("GetItem", throttle(), Infinity);
      proxy!.inject("UpdateItem", throttle(), Infinity);
      proxy!.inject("BatchGetItem", throttle(), Infinity);
      for (const call of [() => store.get(ns, "k"), () => store.put(ns, "never", buf("v")), () => store.batchGet(ns, ["a", "b"])]) {
        const began = Date.now();
        const err = await failure(call());
        expect(err.kind, err.message).to.equal("unavailable");
        expect(codeOf(err)).to.equal(grpc.status.UNAVAILABLE);
        expect(err.message).to.match(/throughput|throttl/i);
        expect(Date.now() - began).to.be.below(3000); // within the call's timeout: the retries gave up, not the clock
      }
      expect(proxy!.requests.GetItem).to.be.within(2, 10); // retried, a bounded number of times
      expect(proxy!.forwarded.UpdateItem ?? 0).to.equal(0);
      proxy!.clear();
      expect(await store.getRaw(ns, "never")).to.equal(null);
    });

    it("reports a throttle that outlasts a short timeout_ms as UNAVAILABLE (throttled), not as a store that did not answer", async function () {
      // Shorter than the retries' backoff: the deadline falls while they wait out a throttle.
      const short = await openStore(url(150));
      try {
        // The table is checked once (a loaded machine may need more than one try in 150 ms).
        await waitFor(() => short.get(ns, "warm").then(() => true, () => false), "a first read through the short-timeout store", 10_000);
        proxy!.inject("GetItem", throttle(), Infinity);
        const kinds: string[] = [];
        for (let i = 0; i < 5; i++) {
          const began = Date.now();
          const err = await failure(short.get(ns, "warm"));
          expect(Date.now() - began).to.be.below(1500);
          kinds.push(err.kind);
          if (err.kind === "unavailable") expect(err.message).to.match(/throughput/i);
        }
        // A deadline that falls while an attempt is in flight is still deadline_exceeded (that
        // attempt's fate is unknown); one that falls while backing off from a throttle is not.
        expect(kinds.every((k) => k === "unavailable" || k === "deadline_exceeded"), kinds.join()).to.equal(true);
        expect(kinds, kinds.join()).to.include("unavailable");
      } finally {
        await short.close();
      }
    });

    it("retries 500 and 503 on reads, but never repeats a write whose outcome it cannot know", async function () {
      proxy!.inject("GetItem", internalError(), 1);
      proxy!.inject("GetItem", serviceUnavailable(), 1);
      expect((await store.get(ns, "warm"))?.value.toString()).to.equal("up");
      expect(proxy!.requests.GetItem).to.equal(3);

      proxy!.inject("UpdateItem", internalError(), 1);
      const err = await failure(store.put(ns, "five_hundred", buf("v")));
      expect(err.kind).to.equal("unavailable");
      expect(proxy!.requests.UpdateItem).to.equal(1);
      expect(await store.put(ns, "five_hundred", buf("v"))).to.equal(1n);
    });

    it("checks every answer's x-amz-crc32: a damaged read is retried, a damaged write's answer is UNAVAILABLE and not repeated", async function () {
      proxy!.inject("GetItem", { kind: "damage" }, 2);
      expect((await store.get(ns, "warm"))?.value.toString()).to.equal("up");
      expect(proxy!.requests.GetItem).to.equal(3);

      proxy!.inject("UpdateItem", { kind: "damage" }, 1);
      const err = await failure(store.put(ns, "damaged", buf("v")));
      expect(err.kind).to.equal("unavailable");
      expect(err.message).to.match(/x-amz-crc32/);
      expect(proxy!.requests.UpdateItem).to.equal(1); // it landed; the answer was what was lost
      expect((await store.get(ns, "damaged"))?.version).to.equal(1n);
      expect(await store.put(ns, "damaged", buf("w"))).to.equal(2n);
    });

    it("retries a read whose connection was reset before it reached the store", async function () {
      proxy!.inject("GetItem", { kind: "reset", when: "before" }, 2);
      expect((await store.get(ns, "warm"))?.version).to.equal(1n);
      expect(proxy!.requests.GetItem).to.equal(3);
    });

    it("retries unprocessed BatchGetItem keys and loses none", async function () {
      const bns = freshNamespace();
      const keys = Array.from({ length: 150 }, (_, i) => `key_${String(i).padStart(3, "0")}`);
      await writeItems(server!.endpoint, table, keys.map((key) => itemAttrs("buckets", bns, { key, value: buf(key), version: 7n })));
      proxy!.inject("BatchGetItem", { kind: "unprocessed", keep: 10 }, 4);
      const got = await store.batchGet(bns, keys);
      expect(got.map((i) => i.key).sort()).to.deep.equal(keys);
      for (const item of got) expect([item.value.toString(), item.version]).to.deep.equal([item.key, 7n]);
      expect(proxy!.requests.BatchGetItem).to.be.above(4); // the four short answers were asked again
    });

    it("gives up on keys and deletes that stay unprocessed as UNAVAILABLE, in bounded time", async function () {
      proxy!.inject("BatchGetItem", { kind: "unprocessed", keep: 0 }, Infinity);
      const began = Date.now();
      const err = await failure(store.batchGet(ns, ["warm", "other"]));
      expect(err.kind).to.equal("unavailable");
      expect(err.message).to.match(/unprocessed/);
      expect(Date.now() - began).to.be.below(10_000);
      expect(proxy!.requests.BatchGetItem).to.be.within(2, 20);

      // Deletes that stay unprocessed (dropNamespace) likewise; the namespace is still there.
      const dns = freshNamespace();
      await writeItems(server!.endpoint, table, ["a", "b", "c"].map((key) => itemAttrs("buckets", dns, { key, value: buf("x"), version: 1n })));
      proxy!.inject("BatchWriteItem", { kind: "unprocessed", keep: 0 }, Infinity);
      const drop = await failure(store.dropNamespace(dns));
      expect(drop.kind, drop.message).to.equal("unavailable");
      expect(drop.message).to.match(/unprocessed/);
      proxy!.clear();
      expect((await store.scanRaw(dns, { limit: 10 })).items).to.have.length(3);
    });

    it("retries unprocessed BatchWriteItem deletes when dropping a namespace and leaves nothing behind", async function () {
      const dns = freshNamespace();
      const keys = Array.from({ length: 60 }, (_, i) => `d_${i}`);
      await writeItems(server!.endpoint, table, keys.map((key) => itemAttrs("buckets", dns, { key, value: buf("x"), version: 1n })));
      proxy!.inject("BatchWriteItem", { kind: "unprocessed", keep: 5 }, 6);
      await store.dropNamespace(dns);
      expect(proxy!.requests.BatchWriteItem).to.be.above(6);
      expect((await store.scanRaw(dns, { limit: 100 })).items).to.deep.equal([]);
    });

    it("reports a failed condition with the current version taken from the returned item, without reading again", async function () {
      const key = "cond";
      await store.put(ns, key, buf("1"));
      await store.put(ns, key, buf("2"));
      proxy!.clear();
      const put = await failure(store.put(ns, key, buf("x"), { kind: "expected_version", version: 1n }));
      expect([put.kind, put.currentVersion]).to.deep.equal(["version_mismatch", 2n]);
      const absent = await failure(store.put(ns, key, buf("x"), { kind: "must_not_exist" }));
      expect([absent.kind, absent.currentVersion]).to.deep.equal(["version_mismatch", 2n]);
      const del = await failure(store.delete(ns, key, { kind: "expected_version", version: 5n }));
      expect([del.kind, del.currentVersion]).to.deep.equal(["version_mismatch", 2n]);
      expect(proxy!.requests.GetItem ?? 0).to.equal(0);

      // A tombstone comes back as the old item too: it counts as absent.
      expect((await store.delete(ns, key)).version).to.equal(3n);
      proxy!.clear();
      const gone = await failure(store.put(ns, key, buf("x"), { kind: "expected_version", version: 2n }));
      expect([gone.kind, gone.currentVersion]).to.deep.equal(["version_mismatch", 0n]);
      expect(await store.delete(ns, key)).to.deep.equal({ deleted: false, version: 3n });
      expect(proxy!.requests.GetItem ?? 0).to.equal(0);
    });

    it("reports the same current version where the store returns no old item (it reads again)", async function () {
      proxy!.returnOldOnConditionFailure = false;
      try {
        await store.put(ns, "cond_reread", buf("1"));
        proxy!.clear();
        const err = await failure(store.put(ns, "cond_reread", buf("x"), { kind: "expected_version", version: 9n }));
        expect([err.kind, err.currentVersion]).to.deep.equal(["version_mismatch", 1n]);
        expect(proxy!.requests.GetItem).to.equal(1);
      } finally {
        proxy!.returnOldOnConditionFailure = true;
      }
    });

    it("applies a write whose answer was lost at most once: the next write gets the next version", async function () {
      const key = "lost";
      expect(await store.put(ns, key, buf("1"))).to.equal(1n);
      proxy!.clear();
      proxy!.inject("UpdateItem", { kind: "reset", when: "after" }, 1);
      const err = await failure(store.put(ns, key, buf("2")));
      expect(err.kind).to.equal("unavailable");
      expect(proxy!.requests.UpdateItem).to.equal(1); // not repeated: it may have applied (it had)
      const stored = await store.get(ns, key);
      expect([stored?.version, stored?.value.toString()]).to.deep.equal([2n, "2"]);
      expect(await store.put(ns, key, buf("3"))).to.equal(3n);

      // A conditional write lost the same way: repeating it fails its condition and says why.
      proxy!.inject("UpdateItem", { kind: "reset", when: "after" }, 1);
      await failure(store.put(ns, key, buf("4"), { kind: "expected_version", version: 3n }));
      const again = await failure(store.put(ns, key, buf("4"), { kind: "expected_version", version: 3n }));
      expect([again.kind, again.currentVersion]).to.deep.equal(["version_mismatch", 4n]);

      // A delete lost the same way left one tombstone; deleting again changes nothing.
      proxy!.inject("UpdateItem", { kind: "reset", when: "after" }, 1);
      expect((await failure(store.delete(ns, key))).kind).to.equal("unavailable");
      expect(await store.getRaw(ns, key)).to.deep.equal({ key, value: null, version: 5n });
      expect(await store.delete(ns, key)).to.deep.equal({ deleted: false, version: 5n });
    });

    it("reports a slow write as deadline_exceeded in time; if it lands later it lands once", async function () {
      const fast = await openStore(url(300));
      try {
        await fast.put(ns, "slow", buf("1"));
        proxy!.clear();
        proxy!.inject("UpdateItem", { kind: "delay", ms: 900 }, 1);
        const began = Date.now();
        const err = await failure(fast.put(ns, "slow", buf("2")));
        expect(err.kind).to.equal("deadline_exceeded");
        expect(Date.now() - began).to.be.below(800);
        await waitFor(async () => (await store.get(ns, "slow"))?.version === 2n, "the abandoned write to land");
        expect(proxy!.forwarded.UpdateItem).to.equal(1);
        expect(await fast.put(ns, "slow", buf("3"))).to.equal(3n);
      } finally {
        await fast.close();
      }
    });

    it("applyIfNewer retried after a lost answer reports the item as applied, not as refused", async function () {
      proxy!.inject("PutItem", { kind: "reset", when: "after" }, 1);
      proxy!.inject("PutItem", throttle(), 1);
      const applied = await store.applyIfNewer(ns, [{ key: "replica", value: buf("r"), version: 5n }]);
      expect(proxy!.requests.PutItem).to.equal(3);
      expect(applied).to.deep.equal([true]);
      expect((await store.getRaw(ns, "replica"))?.version).to.equal(5n);
      // A genuinely older copy is still refused, and so is the same copy again after a throttle
      // (a throttled attempt never ran, so the item found is not this call's doing).
      expect(await store.applyIfNewer(ns, [{ key: "replica", value: buf("old"), version: 4n }])).to.deep.equal([false]);
      proxy!.inject("PutItem", throttle(), 1);
      expect(await store.applyIfNewer(ns, [{ key: "replica", value: buf("r"), version: 5n }])).to.deep.equal([false]);
    });
  });
}
