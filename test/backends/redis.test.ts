import { createServer, type Server } from "node:net";
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { Redis } from "ioredis";
import { isDecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import { openStore } from "../../src/backends/index.js";
import { conformance } from "../conformance/suite.js";
import { buf, freshNamespace } from "../support/names.js";
import { failure } from "../support/errors.js";
import { CLOSED_PORT, TEST_URLS, serverAvailable } from "../support/servers.js";
import { startPausableProxy } from "../support/proxy.js";

// Every run writes under its own prefixes and deletes its keys afterwards. The start time in the
// prefix lets a later run remove what an interrupted run (killed before after()) left behind.
const TEST_PREFIX = "decant_test_";
const runPrefix = `${TEST_PREFIX}${Date.now()}_${randomBytes(4).toString("hex")}`;
const STALE_MS = 60 * 60 * 1000;
const withOptions = (base: string, options: string): string => `${base}${base.includes("?") ? "&" : "?"}${options}`;
const urlFor = (tag: string, extra = ""): string => withOptions(TEST_URLS.redis, `prefix=${runPrefix}_${tag}${extra}`);

const probe = new Redis(TEST_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
probe.on("error", () => undefined);
const ok = await serverAvailable("redis", async () => {
  await probe.connect();
  await probe.ping();
});


/** Keys of this run in Redis (the prefix has no glob characters). */
async function keysOf(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await probe.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return [...new Set(keys)];
}

if (ok) {
  before(async function () {
    const stale = (await keysOf(TEST_PREFIX)).filter((k) => {
      const started = /^decant_test_(\d{13})_/.exec(k)?.[1];
      return started !== undefined && Date.now() - Number(started) > STALE_MS;
    });
    for (let i = 0; i < stale.length; i += 500) await probe.unlink(...stale.slice(i, i + 500));
  });
  after(async function () {
    const keys = await keysOf(runPrefix);
    if (keys.length > 0) await probe.unlink(...keys);
    await probe.quit();
  });

  conformance("redis", {
    open: () => openStore(urlFor("conf")),
    serverUrl: (host, port, password, timeoutMs) => `redis://:${password}@${host}:${port}/0?timeout_ms=${timeoutMs}`,
  });

  describe("redis specifics", function () {
    const opened: Store[] = [];
    const open = async (url: string): Promise<Store> => {
      const store = await openStore(url);
      opened.push(store);
      return store;
    };
    afterEach(async function () {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it("reports a server that is down as unavailable within the timeout, without the password", async function () {
      const store = await open(`redis://:s3cret@127.0.0.1:${CLOSED_PORT}/0?timeout_ms=1500`);
      expect(store.description).to.not.include("s3cret");
      for (const call of [() => store.get("ns", "k"), () => store.put("ns", "k", buf("v")), () => store.applyIfNewer("ns", [{ key: "k", value: null, version: 3n }]), () => store.namespaces()]) {
        const started = Date.now();
        const err = await failure(call());
        expect(Date.now() - started).to.be.below(1500);
        expect(err.kind, err.message).to.equal("unavailable");
        expect(err.message).to.not.include("s3cret");
        expect(err.message).to.match(/ECONNREFUSED/);
      }
    });

    it("bounds a server that accepts but never answers by timeout_ms", async function () {
      const silent: Server = createServer(() => undefined); // accepts and says nothing
      await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
      try {
        const port = (silent.address() as { port: number }).port;
        const store = await open(`redis://127.0.0.1:${port}/0?timeout_ms=300`);
        for (const call of [() => store.get("ns", "k"), () => store.put("ns", "k", buf("v"))]) {
          const started = Date.now();
          const err = await failure(call());
          expect(Date.now() - started).to.be.below(2000);
          expect(["deadline_exceeded", "unavailable"]).to.include(err.kind);
        }
      } finally {
        silent.close();
      }
    });

    it("does not connect when created, and reconnects after the connection is lost", async function () {
      // The server behind a proxy that counts connections and can cut them.
      const server = new URL(TEST_URLS.redis);
      const proxy = await startPausableProxy({ host: server.hostname, port: Number(server.port || 6379) });
      try {
        const store = await open(urlFor("reconnect").replace(server.host, proxy.address));
        expect(await proxy.settled(), "connections opened by openStore").to.equal(0);
        const ns = freshNamespace();
        await store.put(ns, "k", buf("v"));
        expect(proxy.accepted).to.be.above(0);
        const before = proxy.accepted;
        proxy.drop(); // a server restart or a network blip
        expect((await store.get(ns, "k"))!.value.toString()).to.equal("v");
        expect(await store.put(ns, "k", buf("w"))).to.equal(2n);
        expect(proxy.accepted, "a new connection after the drop").to.be.above(before);
      } finally {
        await proxy.close();
      }
    });

    it("two stores on one prefix (two sidecars) never lose a conditional update", async function () {
      const url = urlFor("shared");
      const [a, b] = [await open(url), await open(url)];
      const ns = freshNamespace();
      await a.put(ns, "counter", buf("0"));
      const worker = async (store: Store) => {
        for (let done = 0; done < 10; ) {
          const cur = (await store.get(ns, "counter"))!;
          try {
            await store.put(ns, "counter", buf(String(Number(cur.value.toString()) + 1)), { kind: "expected_version", version: cur.version });
            done++;
          } catch (err) {
            if (!isDecantError(err, "version_mismatch")) throw err;
          }
        }
      };
      await Promise.all([a, b, a, b].map(worker));
      expect(await b.get(ns, "counter")).to.deep.include({ version: 41n, value: buf("40") });
    });

    it("keeps versions above 2^53 exact", async function () {
      const store = await open(urlFor("big"));
      const ns = freshNamespace();
      const big = 2n ** 60n;
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("a"), version: big + 1n }])).to.deep.equal([true]);
      expect(await store.put(ns, "k", buf("b"))).to.equal(big + 2n);
      // Neighbours that a double cannot tell apart from big + 2.
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("old"), version: big + 1n }])).to.deep.equal([false]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("old"), version: big + 2n }])).to.deep.equal([false]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("c"), version: big + 3n }])).to.deep.equal([true]);
      expect(await store.put(ns, "k", buf("d"), { kind: "expected_version", version: big + 3n })).to.equal(big + 4n);
      const err = await failure(store.put(ns, "k", buf("e"), { kind: "expected_version", version: big + 3n }));
      expect(err.currentVersion).to.equal(big + 4n);
      expect(await store.delete(ns, "k")).to.deep.equal({ deleted: true, version: big + 5n });
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: null, version: big + 5n });
      // Carries across digits and lengths: 9…9 + 1, and a shorter number is smaller.
      const nines = 10n ** 19n - 1n;
      await store.applyIfNewer(ns, [{ key: "n", value: buf("x"), version: nines }]);
      expect(await store.put(ns, "n", buf("y"))).to.equal(10n ** 19n);
      expect(await store.applyIfNewer(ns, [{ key: "n", value: buf("z"), version: nines + 1n - 1n }])).to.deep.equal([false]);
      expect(await store.applyIfNewer(ns, [{ key: "n", value: buf("z"), version: 2n ** 64n - 1n }])).to.deep.equal([true]);
      expect((await store.get(ns, "n"))!.version).to.equal(2n ** 64n - 1n);
    });

    it("refuses versions outside uint64 in applyIfNewer", async function () {
      const store = await open(urlFor("badver"));
      expect((await failure(store.applyIfNewer("ns", [{ key: "k", value: null, version: 2n ** 64n }]))).kind).to.equal("invalid_argument");
      expect((await failure(store.applyIfNewer("ns", [{ key: "k", value: null, version: 0n }]))).kind).to.equal("invalid_argument");
    });

    it("keeps every key under the prefix, one hash tag per namespace", async function () {
      const prefix = `${runPrefix}_layout`;
      const store = await open(withOptions(TEST_URLS.redis, `prefix=${prefix}`));
      const ns = freshNamespace();
      await store.put(ns, "a", buf("1"));
      await store.put(ns, "b", buf("2"));
      await store.delete(ns, "b");
      const keys = (await keysOf(`${prefix}:`)).sort();
      expect(keys).to.deep.equal([`${prefix}:namespaces`, `${prefix}:{${ns}}:live`, `${prefix}:{${ns}}:tomb`, `${prefix}:{${ns}}:val`, `${prefix}:{${ns}}:ver`]);
      await store.dropNamespace(ns);
      expect(await keysOf(`${prefix}:{`)).to.deep.equal([]);
    });

    it("keeps stores with different prefixes apart on one server", async function () {
      const a = await open(urlFor("pa"));
      const b = await open(urlFor("pb"));
      const ns = freshNamespace();
      await a.put(ns, "k", buf("from a"));
      expect(await b.get(ns, "k")).to.equal(null);
      expect(await b.namespaces()).to.not.include(ns);
      await b.put(ns, "k", buf("from b"));
      expect((await a.get(ns, "k"))!.value.toString()).to.equal("from a");
      await b.dropNamespace(ns);
      expect((await a.get(ns, "k"))!.value.toString()).to.equal("from a");
      expect(await a.namespaces()).to.include(ns);
    });

    it("fills scan pages past many tombstones, and scanRaw merges them in byte order", async function () {
      const store = await open(urlFor("tombs"));
      const ns = freshNamespace();
      const keys = Array.from({ length: 60 }, (_, i) => `k${String(i).padStart(2, "0")}`);
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      await store.batchWrite(ns, keys.filter((_, i) => i % 10 !== 0).map((key) => ({ type: "delete" as const, key })));
      const first = await store.scan(ns, { limit: 3 });
      expect(first.items.map((i) => i.key)).to.deep.equal(["k00", "k10", "k20"]);
      const second = await store.scan(ns, { limit: 3, cursor: first.cursor });
      expect(second.items.map((i) => i.key)).to.deep.equal(["k30", "k40", "k50"]);
      expect(second.cursor).to.equal(undefined);
      const raw: string[] = [];
      let cursor: string | undefined;
      do {
        const p = await store.scanRaw(ns, { limit: 7, cursor });
        raw.push(...p.items.map((i) => `${i.key}${i.value === null ? "-" : "+"}`));
        cursor = p.cursor;
      } while (cursor);
      expect(raw).to.deep.equal(keys.map((k, i) => `${k}${i % 10 === 0 ? "+" : "-"}`));
      expect(await store.estimateCount(ns)).to.equal(60);
      expect(await store.purgeTombstones(ns)).to.equal(54);
      expect(await store.estimateCount(ns)).to.equal(6);
    });

    it("scans a prefix with a cursor, and a namespace emptied by purge leaves namespaces()", async function () {
      const store = await open(urlFor("prefix"));
      const ns = freshNamespace();
      await store.batchWrite(ns, ["a/1", "a/2", "a/3", "a0", "b/1", "a"].map((key) => ({ type: "put" as const, key, value: buf("v") })));
      const p1 = await store.scan(ns, { limit: 2, prefix: "a/" });
      const p2 = await store.scan(ns, { limit: 2, prefix: "a/", cursor: p1.cursor });
      expect([...p1.items, ...p2.items].map((i) => i.key)).to.deep.equal(["a/1", "a/2", "a/3"]);
      expect(p2.cursor).to.equal(undefined);
      const other = freshNamespace();
      await store.put(other, "k", buf("v"));
      await store.delete(other, "k");
      expect(await store.namespaces()).to.include(other);
      await store.purgeTombstones(other);
      expect(await store.namespaces()).to.not.include(other);
    });

    it("applies a large batch in chunks with per-item results", async function () {
      const store = await open(urlFor("chunks"));
      const ns = freshNamespace();
      const items = Array.from({ length: 450 }, (_, i) => ({ key: `k${i}`, value: i % 3 === 0 ? null : buf(String(i)), version: BigInt(i + 1) }));
      expect((await store.applyIfNewer(ns, items)).every((a) => a)).to.equal(true);
      const again = await store.applyIfNewer(ns, items.map((it, i) => ({ ...it, version: i % 2 === 0 ? it.version + 1n : it.version })));
      expect(again).to.deep.equal(items.map((_, i) => i % 2 === 0));
      const results = await store.batchWrite(ns, items.map((it) => ({ type: "put" as const, key: it.key, value: buf("x") })));
      expect(results.every((r) => r.ok)).to.equal(true);
      expect(await store.estimateCount(ns)).to.equal(450);
    });

    it("refuses bad options naming them, without connecting", async function () {
      const bad: [string, RegExp][] = [
        ["redis://127.0.0.1:6379/0?prefx=a", /prefx/],
        ["redis://127.0.0.1:6379/0?prefix=a{b}", /prefix/],
        ["redis://127.0.0.1:6379/0?timeout_ms=soon", /timeout_ms/],
        ["redis://127.0.0.1:6379/zero", /database/],
        ["redis://127.0.0.1:6379/0?tls=yes", /tls/],
      ];
      for (const [url, named] of bad) {
        const err = await failure(openStore(url));
        expect(err.kind).to.equal("invalid_argument");
        expect(err.message).to.match(named);
      }
      const store = await open(`redis://:pw@127.0.0.1:${CLOSED_PORT}/3?prefix=svc&timeout_ms=100&tls=false`);
      expect(store.kind).to.equal("redis");
      expect(store.description).to.equal(`redis://:***@127.0.0.1:${CLOSED_PORT}/3?prefix=svc&timeout_ms=100&tls=false`);
    });

    it("refuses calls after close", async function () {
      const store = await openStore(urlFor("closed"));
      await store.put(freshNamespace(), "k", buf("v"));
      await store.close();
      expect((await failure(store.get("ns", "k"))).kind).to.equal("unavailable");
    });
  });
}
