// The conformance suite: every backend (and the migration layer, which is itself a store)
// runs it unchanged. It is a set of exported groups (keyv's test-suite is the model), so a
// backend's quirks are options, not forks: conformance() runs every group; a test file may run
// some groups on their own with the same options.
import { createServer, type AddressInfo, type Socket } from "node:net";
import { expect } from "chai";
import { openStore } from "../../src/backends/index.js";
import { ITEM_ERROR_KINDS } from "../../src/protocol/batch.js";
import { signalCaller } from "../../src/protocol/call.js";
import { DecantError, isDecantError, type ErrorKind } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";
import type { RawItem, ScanPage, ValueSize } from "../../src/protocol/types.js";
import { buf, freshNamespace } from "../support/names.js";
import { CLOSED_PORT } from "../support/servers.js";

export interface ConformanceOptions {
  /** Creates a store (called once for the suite). */
  open: () => Promise<Store>;
  /** Called after the suite; close what open() created. */
  close?: (store: Store) => Promise<void>;
  /** Opens the data of `store` again, as a restarted sidecar would (default: open()). */
  reopen?: (store: Store) => Promise<Store>;
  /**
   * The backend's URL for a server at host:port, with a password and timeout_ms, for the fault
   * groups (an unreachable server, a silent one). Absent: the backend has no server (memory,
   * SQLite, the migration layer), and those tests are skipped.
   */
  serverUrl?: (host: string, port: number, password: string, timeoutMs: number) => string;
  /** estimateCount is a planner's estimate, not a count (MySQL): held to a factor of 3. */
  approximateCount?: boolean;
  /** Groups this store is known not to pass yet, each with the reason (shown as a pending test). */
  knownGaps?: Partial<Record<keyof typeof GROUPS, string>>;
}

/** What every group sees: the store under test, a fresh namespace per test, the options. */
export interface Subject {
  readonly store: Store;
  readonly ns: string;
  readonly options: ConformanceOptions;
}

async function rejects(p: Promise<unknown>, kind: ErrorKind): Promise<DecantError> {
  try {
    await p;
  } catch (err) {
    expect(isDecantError(err), `expected a DecantError(${kind}), got ${String(err)}`).to.equal(true);
    expect((err as DecantError).kind, (err as Error).message).to.equal(kind);
    return err as DecantError;
  }
  expect.fail(`expected the call to fail with ${kind}`);
}

/** Every page of a paged read, each at most `limit` long. */
async function allPages<T>(read: (cursor: string | undefined) => Promise<ScanPage<T>>, limit: number, what: string): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await read(cursor);
    expect(page.items.length).to.be.at.most(limit);
    items.push(...page.items);
    cursor = page.cursor;
    if (++pages > 10_000) expect.fail(`${what} does not end`);
  } while (cursor !== undefined);
  return { items, pages };
}

const scanAll = (store: Store, ns: string, limit: number, prefix?: string) => allPages((cursor) => store.scan(ns, { limit, prefix, cursor }), limit, "scan");

async function scanRawAll(store: Store, ns: string, limit: number, segment?: number, totalSegments?: number): Promise<RawItem[]> {
  return (await allPages((cursor) => store.scanRaw(ns, { limit, cursor, segment, totalSegments }), limit, "scanRaw")).items;
}

async function largeValuesAll(store: Store, ns: string, minBytes: number, limit: number): Promise<{ items: ValueSize[]; pages: number }> {
  const { items, pages } = await allPages((cursor) => store.largeValues(ns, { minBytes, limit, cursor }), limit, "largeValues");
  return { items: items.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key))), pages };
}

const shuffle = <T>(xs: T[]): T[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
};

export function basic(t: Subject): void {
  describe("basic", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("reads an absent key as null", async function () {
      expect(await store.get(ns, "nothing")).to.equal(null);
    });

    it("puts and gets a value with version 1", async function () {
      expect(await store.put(ns, "a", buf("hello"))).to.equal(1n);
      const item = await store.get(ns, "a");
      expect(item).to.not.equal(null);
      expect(item!.key).to.equal("a");
      expect(item!.value.toString()).to.equal("hello");
      expect(item!.version).to.equal(1n);
    });

    it("keeps an empty value distinct from absence", async function () {
      await store.put(ns, "empty", Buffer.alloc(0));
      const item = await store.get(ns, "empty");
      expect(item).to.not.equal(null);
      expect(item!.value.length).to.equal(0);
    });

    it("round-trips arbitrary bytes and unicode keys", async function () {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const key = "ключ/键/🔑 with spaces";
      await store.put(ns, key, bytes);
      expect((await store.get(ns, key))!.value.equals(bytes)).to.equal(true);
    });

    it("holds a key of 1024 bytes", async function () {
      const key = "k".repeat(1024);
      await store.put(ns, key, buf("v"));
      expect((await store.get(ns, key))!.key).to.equal(key);
    });

    it("holds a value of 64 KiB", async function () {
      const value = Buffer.alloc(64 * 1024, 7);
      await store.put(ns, "big", value);
      expect((await store.get(ns, "big"))!.value.equals(value)).to.equal(true);
    });

    it("keeps namespaces apart", async function () {
      const other = freshNamespace();
      await store.put(ns, "k", buf("one"));
      await store.put(other, "k", buf("two"));
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("one");
      expect((await store.get(other, "k"))!.value.toString()).to.equal("two");
    });

    it("lists namespaces that hold items", async function () {
      await store.put(ns, "k", buf("v"));
      expect(await store.namespaces()).to.include(ns);
    });
  });
}

export function conditions(t: Subject): void {
  describe("conditions and versions", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("increments the version on every write", async function () {
      for (let i = 1n; i <= 5n; i++) expect(await store.put(ns, "k", buf(`v${i}`))).to.equal(i);
      expect((await store.get(ns, "k"))!.version).to.equal(5n);
    });

    it("writes when expected_version matches", async function () {
      await store.put(ns, "k", buf("a"));
      expect(await store.put(ns, "k", buf("b"), { kind: "expected_version", version: 1n })).to.equal(2n);
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("b");
    });

    it("refuses a stale expected_version, reports the current version and writes nothing", async function () {
      await store.put(ns, "k", buf("a"));
      await store.put(ns, "k", buf("b"));
      const err = await rejects(store.put(ns, "k", buf("c"), { kind: "expected_version", version: 1n }), "version_mismatch");
      expect(err.currentVersion).to.equal(2n);
      const item = await store.get(ns, "k");
      expect(item!.value.toString()).to.equal("b");
      expect(item!.version).to.equal(2n);
    });

    it("refuses expected_version on an absent key with current version 0", async function () {
      const err = await rejects(store.put(ns, "k", buf("c"), { kind: "expected_version", version: 1n }), "version_mismatch");
      expect(err.currentVersion).to.equal(0n);
      expect(await store.get(ns, "k")).to.equal(null);
    });

    it("must_not_exist creates once, then refuses", async function () {
      expect(await store.put(ns, "k", buf("a"), { kind: "must_not_exist" })).to.equal(1n);
      const err = await rejects(store.put(ns, "k", buf("b"), { kind: "must_not_exist" }), "version_mismatch");
      expect(err.currentVersion).to.equal(1n);
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("a");
    });

    it("conditional delete refuses a stale version and deletes on a match", async function () {
      await store.put(ns, "k", buf("a"));
      await store.put(ns, "k", buf("b"));
      const err = await rejects(store.delete(ns, "k", { kind: "expected_version", version: 1n }), "version_mismatch");
      expect(err.currentVersion).to.equal(2n);
      expect(await store.get(ns, "k")).to.not.equal(null);
      expect(await store.delete(ns, "k", { kind: "expected_version", version: 2n })).to.deep.equal({ deleted: true, version: 3n });
      expect(await store.get(ns, "k")).to.equal(null);
    });

    it("gives concurrent unconditional puts of one key distinct, consecutive versions", async function () {
      await store.put(ns, "k", buf("start"));
      await store.delete(ns, "k"); // version 2, a tombstone: puts continue above it
      const versions = await Promise.all(Array.from({ length: 12 }, (_, i) => store.put(ns, "k", buf(`w${i}`))));
      expect([...versions].sort((a, b) => (a < b ? -1 : 1))).to.deep.equal(Array.from({ length: 12 }, (_, i) => BigInt(i + 3)));
      const last = versions.indexOf(14n);
      expect(await store.get(ns, "k")).to.deep.equal({ key: "k", value: buf(`w${last}`), version: 14n });
    });

    it("never loses an update among concurrent conditional writers", async function () {
      await store.put(ns, "counter", buf("0"));
      const writers = 6;
      const incrementsEach = 5;
      const worker = async () => {
        let done = 0;
        while (done < incrementsEach) {
          const cur = (await store.get(ns, "counter"))!;
          const next = String(Number(cur.value.toString()) + 1);
          try {
            await store.put(ns, "counter", buf(next), { kind: "expected_version", version: cur.version });
            done++;
          } catch (err) {
            if (!isDecantError(err, "version_mismatch")) throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: writers }, worker));
      const final = (await store.get(ns, "counter"))!;
      expect(final.value.toString()).to.equal(String(writers * incrementsEach));
      expect(final.version).to.equal(BigInt(writers * incrementsEach + 1));
    });
  });
}

export function tombstones(t: Subject): void {
  describe("tombstones and re-create", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("delete leaves a tombstone that keeps the version; reads treat it as absent", async function () {
      await store.put(ns, "k", buf("a"));
      expect(await store.delete(ns, "k")).to.deep.equal({ deleted: true, version: 2n });
      expect(await store.get(ns, "k")).to.equal(null);
      const raw = await store.getRaw(ns, "k");
      expect(raw).to.deep.equal({ key: "k", value: null, version: 2n });
    });

    it("re-create continues the version sequence after a delete", async function () {
      await store.put(ns, "k", buf("a"));
      await store.delete(ns, "k");
      expect(await store.put(ns, "k", buf("b"))).to.equal(3n);
      expect((await store.get(ns, "k"))!.version).to.equal(3n);
    });

    it("must_not_exist succeeds on a deleted key and keeps the sequence", async function () {
      await store.put(ns, "k", buf("a"));
      await store.delete(ns, "k");
      expect(await store.put(ns, "k", buf("b"), { kind: "must_not_exist" })).to.equal(3n);
    });

    it("expected_version of a deleted key's tombstone is refused (the key is absent)", async function () {
      await store.put(ns, "k", buf("a"));
      await store.delete(ns, "k");
      const err = await rejects(store.put(ns, "k", buf("b"), { kind: "expected_version", version: 2n }), "version_mismatch");
      expect(err.currentVersion).to.equal(0n);
    });

    it("deleting an absent key writes nothing", async function () {
      expect(await store.delete(ns, "never")).to.deep.equal({ deleted: false, version: 0n });
      expect(await store.getRaw(ns, "never")).to.equal(null);
    });

    it("deleting twice leaves the first tombstone", async function () {
      await store.put(ns, "k", buf("a"));
      await store.delete(ns, "k");
      expect(await store.delete(ns, "k")).to.deep.equal({ deleted: false, version: 2n });
      expect((await store.getRaw(ns, "k"))!.version).to.equal(2n);
    });

    it("scan and batchGet skip tombstones", async function () {
      await store.put(ns, "a", buf("1"));
      await store.put(ns, "b", buf("2"));
      await store.delete(ns, "a");
      expect((await scanAll(store, ns, 10)).items.map((i) => i.key)).to.deep.equal(["b"]);
      expect((await store.batchGet(ns, ["a", "b"])).map((i) => i.key)).to.deep.equal(["b"]);
    });

    it("purgeTombstones removes tombstones only, or is refused where not declared", async function () {
      await store.put(ns, "a", buf("1"));
      await store.put(ns, "b", buf("2"));
      await store.delete(ns, "a");
      if (store.capabilities.purgeTombstones === false) {
        await rejects(store.purgeTombstones(ns), "failed_precondition");
        expect((await store.getRaw(ns, "a"))!.version).to.equal(2n);
        return;
      }
      expect(await store.purgeTombstones(ns)).to.equal(1);
      expect(await store.getRaw(ns, "a")).to.equal(null);
      expect((await store.get(ns, "b"))!.version).to.equal(1n);
    });
  });
}

export function batch(t: Subject): void {
  describe("batch", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("batchGet returns only the keys found, each once", async function () {
      await store.put(ns, "a", buf("1"));
      await store.put(ns, "c", buf("3"));
      const items = await store.batchGet(ns, ["a", "b", "c", "a"]);
      expect(items.map((i) => i.key).sort()).to.deep.equal(["a", "c"]);
      expect(items.find((i) => i.key === "c")!.value.toString()).to.equal("3");
    });

    it("batchGet of no keys is empty", async function () {
      expect(await store.batchGet(ns, [])).to.deep.equal([]);
    });

    it("batchGet reads many keys", async function () {
      const keys = Array.from({ length: 150 }, (_, i) => `key${i}`);
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      const items = await store.batchGet(ns, keys);
      expect(items.length).to.equal(150);
      for (const it of items) expect(it.value.toString()).to.equal(it.key);
    });

    it("batchGetRaw returns items and tombstones of the keys found, each once", async function () {
      await store.put(ns, "a", buf("1"));
      await store.put(ns, "gone", buf("x"));
      await store.delete(ns, "gone");
      expect(await store.batchGetRaw(ns, [])).to.deep.equal([]);
      const keys = ["a", "gone", "never", "a", ...Array.from({ length: 130 }, (_, i) => `absent${i}`)]; // more than one DynamoDB batch
      const items = await store.batchGetRaw(ns, keys);
      expect([...items].sort((x, y) => (x.key < y.key ? -1 : 1))).to.deep.equal([
        { key: "a", value: buf("1"), version: 1n },
        { key: "gone", value: null, version: 2n },
      ]);
    });

    it("batchWrite applies each write on its own and reports per item", async function () {
      await store.put(ns, "x", buf("old"));
      const results = await store.batchWrite(ns, [
        { type: "put", key: "a", value: buf("1") },
        { type: "put", key: "x", value: buf("new"), condition: { kind: "expected_version", version: 9n } },
        { type: "delete", key: "x" },
        { type: "put", key: "b", value: buf("2"), condition: { kind: "must_not_exist" } },
        { type: "delete", key: "none" },
      ]);
      expect(results.map((r) => r.key)).to.deep.equal(["a", "x", "x", "b", "none"]);
      expect(results[0]).to.deep.include({ ok: true, version: 1n });
      expect(results[1]!.ok).to.equal(false);
      if (!results[1]!.ok) {
        expect(results[1]!.error.kind).to.equal("version_mismatch");
        expect(results[1]!.error.currentVersion).to.equal(1n);
      }
      expect(results[2]).to.deep.include({ ok: true, version: 2n, deleted: true });
      expect(results[3]).to.deep.include({ ok: true, version: 1n });
      expect(results[4]).to.deep.include({ ok: true, deleted: false });
      expect(await store.get(ns, "x")).to.equal(null);
      expect((await store.get(ns, "b"))!.value.toString()).to.equal("2");
    });

    it("batchWrite applies writes to one key in order", async function () {
      const results = await store.batchWrite(ns, [
        { type: "put", key: "k", value: buf("1") },
        { type: "put", key: "k", value: buf("2"), condition: { kind: "expected_version", version: 1n } },
        { type: "delete", key: "k" },
        { type: "put", key: "k", value: buf("4") },
      ]);
      expect(results.map((r) => r.ok && r.version)).to.deep.equal([1n, 2n, 3n, 4n]);
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("4");
    });

    it("batchWrite of nothing is empty", async function () {
      expect(await store.batchWrite(ns, [])).to.deep.equal([]);
    });
  });
}

export function scan(t: Subject): void {
  describe("scan and pagination", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    const keys = Array.from({ length: 23 }, (_, i) => `item/${String(i).padStart(3, "0")}`);

    it("pages through every key exactly once with tiny pages", async function () {
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      const { items, pages } = await scanAll(store, ns, 3);
      expect(pages).to.be.at.least(8);
      expect(items.map((i) => i.key).sort()).to.deep.equal(keys);
      for (const it of items) {
        expect(it.value.toString()).to.equal(it.key);
        expect(it.version).to.equal(1n);
      }
    });

    it("filters by prefix", async function () {
      await store.batchWrite(ns, [...keys, "other/1", "item", "iten/1"].map((key) => ({ type: "put" as const, key, value: buf("v") })));
      const { items } = await scanAll(store, ns, 4, "item/");
      expect(items.map((i) => i.key).sort()).to.deep.equal(keys);
    });

    it("scans an empty or unknown namespace as empty and done", async function () {
      const page = await store.scan(ns, { limit: 5 });
      expect(page.items).to.deep.equal([]);
      expect(page.cursor).to.equal(undefined);
    });

    it("sees keys that exist for the whole scan exactly once while others change", async function () {
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf("v") })));
      const seen: string[] = [];
      let cursor: string | undefined;
      let n = 0;
      do {
        const page = await store.scan(ns, { limit: 4, cursor });
        seen.push(...page.items.map((i) => i.key));
        cursor = page.cursor;
        await store.put(ns, `zz/new${n}`, buf("late"));
        await store.put(ns, `aa/new${n++}`, buf("late"));
      } while (cursor !== undefined);
      const stable = seen.filter((k) => k.startsWith("item/"));
      expect(stable.sort()).to.deep.equal(keys);
      expect(new Set(seen).size).to.equal(seen.length);
    });

    it("orders keys by UTF-8 bytes when it declares orderedScan", async function () {
      if (!store.capabilities.orderedScan) this.skip();
      const odd = ["b", "a", "A", "é", "z", "ab", "😀", "\uffff", "a/b"];
      await store.batchWrite(ns, odd.map((key) => ({ type: "put" as const, key, value: buf("v") })));
      const { items } = await scanAll(store, ns, 2);
      expect(items.map((i) => i.key)).to.deep.equal([...odd].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    });
  });
}

export function replication(t: Subject): void {
  describe("replication operations", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("applyIfNewer writes absent keys with their given versions, tombstones too", async function () {
      const applied = await store.applyIfNewer(ns, [
        { key: "a", value: buf("A"), version: 7n },
        { key: "gone", value: null, version: 4n },
      ]);
      expect(applied).to.deep.equal([true, true]);
      expect(await store.get(ns, "a")).to.deep.include({ key: "a", version: 7n });
      expect(await store.get(ns, "gone")).to.equal(null);
      expect(await store.getRaw(ns, "gone")).to.deep.equal({ key: "gone", value: null, version: 4n });
    });

    it("applyIfNewer keeps the highest version, in any order", async function () {
      const versions = shuffle(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
      for (const v of versions) await store.applyIfNewer(ns, [{ key: "k", value: buf(`v${v}`), version: v }]);
      const item = (await store.get(ns, "k"))!;
      expect(item.version).to.equal(20n);
      expect(item.value.toString()).to.equal("v20");
    });

    it("applyIfNewer does not overwrite an equal version", async function () {
      await store.applyIfNewer(ns, [{ key: "k", value: buf("first"), version: 3n }]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("second"), version: 3n }])).to.deep.equal([false]);
      expect((await store.get(ns, "k"))!.value.toString()).to.equal("first");
    });

    it("a tombstone with a higher version is never overwritten by an older value", async function () {
      await store.applyIfNewer(ns, [{ key: "k", value: null, version: 5n }]);
      expect(await store.applyIfNewer(ns, [{ key: "k", value: buf("old"), version: 4n }])).to.deep.equal([false]);
      expect(await store.get(ns, "k")).to.equal(null);
      expect((await store.getRaw(ns, "k"))!.version).to.equal(5n);
    });

    it("8 concurrent appliers of versions 1..N in random order leave the highest", async function () {
      const n = 40;
      const keys = ["r1", "r2", "r3"];
      const appliers = Array.from({ length: 8 }, async () => {
        for (const v of shuffle(Array.from({ length: n }, (_, i) => BigInt(i + 1)))) {
          const batch = keys.map((key) => ({ key, value: v % 7n === 0n ? null : buf(`${key}@${v}`), version: v }));
          await store.applyIfNewer(ns, shuffle(batch));
        }
      });
      await Promise.all(appliers);
      for (const key of keys) {
        const raw = (await store.getRaw(ns, key))!;
        expect(raw.version).to.equal(BigInt(n));
        expect(raw.value!.toString()).to.equal(`${key}@${n}`);
      }
      // n=42 would be a tombstone: apply it and older values concurrently; the tombstone wins.
      await Promise.all([
        store.applyIfNewer(ns, [{ key: "r1", value: null, version: 42n }]),
        ...Array.from({ length: 8 }, (_, i) => store.applyIfNewer(ns, [{ key: "r1", value: buf("older"), version: BigInt(41 - i) }])),
      ]);
      expect(await store.getRaw(ns, "r1")).to.deep.equal({ key: "r1", value: null, version: 42n });
    });

    it("applyIfNewer applies a batch and reports per item", async function () {
      await store.put(ns, "b", buf("x"));
      await store.put(ns, "b", buf("y"));
      const items = Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: buf(String(i)), version: BigInt(i + 1) }));
      const applied = await store.applyIfNewer(ns, [...items, { key: "b", value: buf("z"), version: 1n }]);
      expect(applied.length).to.equal(61);
      expect(applied.slice(0, 60).every((a) => a)).to.equal(true);
      expect(applied[60]).to.equal(false);
      expect((await store.get(ns, "k59"))!.version).to.equal(60n);
    });

    it("applyIfNewer of nothing is empty", async function () {
      expect(await store.applyIfNewer(ns, [])).to.deep.equal([]);
    });

    it("a client write after applyIfNewer continues from the applied version", async function () {
      await store.applyIfNewer(ns, [{ key: "k", value: buf("a"), version: 10n }]);
      expect(await store.put(ns, "k", buf("b"))).to.equal(11n);
    });

    it("scanRaw pages through items and tombstones with their versions", async function () {
      const live = Array.from({ length: 11 }, (_, i) => `k${String(i).padStart(2, "0")}`);
      await store.batchWrite(ns, live.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      await store.delete(ns, "k03");
      await store.delete(ns, "k07");
      const items = await scanRawAll(store, ns, 2);
      expect(items.map((i) => i.key).sort()).to.deep.equal(live);
      const tomb = items.find((i) => i.key === "k03")!;
      expect(tomb.value).to.equal(null);
      expect(tomb.version).to.equal(2n);
      expect(items.find((i) => i.key === "k05")!.value!.toString()).to.equal("k05");
    });

    it("scanRaw with keysOnly pages through the same keys, versions and cursors (values may be left out)", async function () {
      await store.batchWrite(ns, Array.from({ length: 7 }, (_, i) => ({ type: "put" as const, key: `k${i}`, value: buf(`v${i}`) })));
      await store.delete(ns, "k2");
      let cursor: string | undefined;
      do {
        const [full, keys] = [await store.scanRaw(ns, { limit: 3, cursor }), await store.scanRaw(ns, { limit: 3, cursor, keysOnly: true })];
        expect(keys.items.map((i) => [i.key, i.version])).to.deep.equal(full.items.map((i) => [i.key, i.version]));
        expect(keys.cursor).to.equal(full.cursor);
        for (const [i, item] of keys.items.entries()) if (item.value !== null) expect(item.value.equals(full.items[i]!.value!)).to.equal(true);
        cursor = full.cursor;
      } while (cursor !== undefined);
    });

    it("scanRaw splits into segments when it declares segmentedScan, and refuses them otherwise", async function () {
      const keys = Array.from({ length: 40 }, (_, i) => `s${i}`);
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf(key) })));
      if (store.capabilities.segmentedScan) {
        const parts = await Promise.all([0, 1, 2, 3].map((s) => scanRawAll(store, ns, 3, s, 4)));
        const all = parts.flat().map((i) => i.key);
        expect(all.sort()).to.deep.equal([...keys].sort());
      } else {
        await rejects(store.scanRaw(ns, { limit: 3, segment: 1, totalSegments: 4 }), "unimplemented");
      }
    });

    it("largeValues pages through the live values longer than a size: keys and sizes", async function () {
      const sizes: Record<string, number> = { a: 10, b: 300, c: 301, "dé": 5000, e: 299, f: 4096, gone: 400, empty: 0 };
      await store.batchWrite(ns, Object.entries(sizes).map(([key, n]) => ({ type: "put" as const, key, value: Buffer.alloc(n, 1) })));
      await store.delete(ns, "gone");
      const { items, pages } = await largeValuesAll(store, ns, 300, 1);
      expect(items).to.deep.equal([
        { key: "c", bytes: 301 },
        { key: "dé", bytes: 5000 },
        { key: "f", bytes: 4096 },
      ]);
      expect(pages).to.be.at.least(3);
      expect((await largeValuesAll(store, ns, 0, 3)).items.map((i) => i.key)).to.deep.equal(["a", "b", "c", "dé", "e", "f"]);
      expect((await largeValuesAll(store, ns, 5000, 2)).items).to.deep.equal([]);
    });

    it("largeValues of an empty namespace is empty", async function () {
      expect((await largeValuesAll(store, ns, 0, 10)).items).to.deep.equal([]);
    });

    it("estimateCount counts items and tombstones (exactly, or within a factor of 3 where approximate), and dropNamespace", async function () {
      if (!t.options.approximateCount) expect(await store.estimateCount(ns)).to.equal(0);
      const keys = Array.from({ length: 60 }, (_, i) => `c${i}`);
      await store.batchWrite(ns, keys.map((key) => ({ type: "put" as const, key, value: buf("v") })));
      await store.batchWrite(ns, keys.slice(0, 20).map((key) => ({ type: "delete" as const, key })));
      const estimate = await store.estimateCount(ns);
      if (t.options.approximateCount) expect(estimate).to.be.within(20, 180);
      else expect(estimate).to.equal(60);
      await store.dropNamespace(ns);
      if (!t.options.approximateCount) expect(await store.estimateCount(ns)).to.equal(0);
      expect(await store.getRaw(ns, "c30")).to.equal(null);
      expect(await store.namespaces()).to.not.include(ns);
    });
  });
}

  // A store that declares fencing refuses, in the same atomic step as the write, a write whose
  // epoch is below its fence. One that does not has no raiseFence (so no caller can believe a
  // fence holds) and ignores the fence argument: such writes are applied as unfenced ones.
export function fence(t: Subject): void {
  describe("write fence", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    let raise: (epoch: number) => Promise<number>;
    /** The fence in force now (it persists across tests and runs, so tests work above it). */
    let base: number;

    beforeEach(async function () {
      if (!store.capabilities.fencing) return;
      raise = store.raiseFence!.bind(store);
      base = await raise(0);
    });

    it("has raiseFence exactly when it declares fencing; without it, a fence argument changes nothing", async function () {
      if (store.capabilities.fencing) {
        expect(store.raiseFence).to.be.a("function");
        return;
      }
      expect(store.raiseFence).to.equal(undefined);
      expect(await store.put(ns, "k", buf("a"), undefined, 0)).to.equal(1n);
      expect(await store.applyIfNewer(ns, [{ key: "r", value: buf("r"), version: 3n }], 0)).to.deep.equal([true]);
      expect(await store.delete(ns, "k", undefined, 0)).to.deep.equal({ deleted: true, version: 2n });
    });

    it("raiseFence returns the highest fence asked for and never lowers it", async function () {
      if (!store.capabilities.fencing) this.skip();
      expect(await raise(base + 3)).to.equal(base + 3);
      expect(await raise(base + 1)).to.equal(base + 3);
      expect(await raise(base + 3)).to.equal(base + 3);
      expect(await raise(base + 4)).to.equal(base + 4);
      expect(await raise(0)).to.equal(base + 4);
    });

    it("refuses a bad epoch as invalid_argument naming the fence", async function () {
      if (!store.capabilities.fencing) this.skip();
      for (const bad of [-1, 1.5, Number.NaN]) {
        expect((await rejects(raise(bad), "invalid_argument")).field).to.equal("fence");
        expect((await rejects(store.put(ns, "k", buf("v"), undefined, bad), "invalid_argument")).field).to.equal("fence");
      }
      expect(await store.getRaw(ns, "k")).to.equal(null);
      expect(await raise(0)).to.equal(base);
    });

    it("refuses put, delete and applyIfNewer below the fence and writes nothing", async function () {
      if (!store.capabilities.fencing) this.skip();
      await store.put(ns, "live", buf("kept"));
      await raise(base + 2);
      const stale = base + 1;
      await rejects(store.put(ns, "new", buf("x"), undefined, stale), "fenced");
      await rejects(store.put(ns, "live", buf("x"), undefined, stale), "fenced");
      await rejects(store.put(ns, "live", buf("x"), { kind: "expected_version", version: 1n }, stale), "fenced");
      await rejects(store.put(ns, "new", buf("x"), { kind: "must_not_exist" }, stale), "fenced");
      await rejects(store.delete(ns, "live", undefined, stale), "fenced");
      await rejects(store.delete(ns, "live", { kind: "expected_version", version: 1n }, stale), "fenced");
      await rejects(store.delete(ns, "never", undefined, stale), "fenced");
      const batch = [
        { key: "a1", value: buf("a"), version: 5n },
        { key: "live", value: buf("newer"), version: 9n },
        { key: "a2", value: null, version: 2n },
      ];
      await rejects(store.applyIfNewer(ns, batch, stale), "fenced");
      expect(await store.batchGetRaw(ns, ["new", "never", "a1", "a2"])).to.deep.equal([]);
      expect(await store.getRaw(ns, "live")).to.deep.equal({ key: "live", value: buf("kept"), version: 1n });
    });

    it("writes at or above the fence, and without an epoch", async function () {
      if (!store.capabilities.fencing) this.skip();
      const fence = await raise(base + 2);
      expect(await store.put(ns, "k", buf("at"), undefined, fence)).to.equal(1n);
      expect(await store.put(ns, "k", buf("above"), { kind: "expected_version", version: 1n }, fence + 1)).to.equal(2n);
      expect(await store.put(ns, "k", buf("plain"))).to.equal(3n);
      expect(await store.put(ns, "n", buf("new"), { kind: "must_not_exist" }, fence)).to.equal(1n);
      expect(await store.delete(ns, "k", undefined, fence)).to.deep.equal({ deleted: true, version: 4n });
      expect(await store.delete(ns, "n", { kind: "expected_version", version: 1n }, fence + 7)).to.deep.equal({ deleted: true, version: 2n });
      expect(await store.applyIfNewer(ns, [{ key: "a", value: buf("a"), version: 5n }, { key: "k", value: buf("old"), version: 2n }], fence)).to.deep.equal([true, false]);
      expect(await store.applyIfNewer(ns, [{ key: "b", value: null, version: 3n }])).to.deep.equal([true]);
      expect(await store.getRaw(ns, "a")).to.deep.equal({ key: "a", value: buf("a"), version: 5n });
      expect(await store.getRaw(ns, "k")).to.deep.equal({ key: "k", value: null, version: 4n });
      // A condition still decides as before under a fence that lets the write through.
      const err = await rejects(store.put(ns, "a", buf("x"), { kind: "expected_version", version: 1n }, fence), "version_mismatch");
      expect(err.currentVersion).to.equal(5n);
    });

    it("a fence raised during fenced writes lets through only writes that are visible when it returns", async function () {
      if (!store.capabilities.fencing) this.skip();
      await store.put(ns, "warm", buf("w")); // the namespace exists: no first-write work (Redis registers it) delays the puts
      for (let round = 0; round < 3; round++) await fenceDuringWrites(await raise(base + 5 + round), `r${round}`);
    });

    /**
     * Lanes of puts fenced at `epoch` keep writing until raiseFence(epoch + 1) has returned, so
     * puts are sent before, during and after it; raiseFence starts once some were acknowledged.
     */
    async function fenceDuringWrites(epoch: number, tag: string): Promise<void> {
      const launched: string[] = [];
      const acknowledged: string[] = [];
      let returned = false;
      let someAcknowledged!: () => void;
      const warmedUp = new Promise<void>((resolve) => (someAcknowledged = resolve));
      const lane = async (l: number) => {
        for (let n = 0; n < 5000; n++) {
          const key = `${tag}_${l}_${n}`;
          const sentAfterReturn = returned;
          launched.push(key);
          try {
            expect(await store.put(ns, key, buf(key), undefined, epoch)).to.equal(1n);
            expect(sentAfterReturn, `${key} was written though sent after raiseFence returned`).to.equal(false);
            if (acknowledged.push(key) === 16) someAcknowledged();
          } catch (err) {
            if (!isDecantError(err, "fenced")) throw err;
            if (sentAfterReturn) return;
          }
        }
        expect.fail("the fence never stopped the writes");
      };
      const lanes = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(lane));
      await Promise.race([warmedUp, lanes]);
      expect(await raise(epoch + 1)).to.equal(epoch + 1);
      returned = true;
      const seenAtReturn = (await store.batchGetRaw(ns, [...launched])).map((i) => i.key).sort();
      await lanes;
      const seenAfter = (await store.batchGetRaw(ns, [...launched])).map((i) => i.key).sort();
      // Nothing lands after raiseFence returned, and exactly the acknowledged writes are there.
      expect(seenAfter).to.deep.equal(seenAtReturn);
      expect(seenAfter).to.deep.equal([...acknowledged].sort());
      expect(acknowledged.length).to.be.at.least(16);
    }
  });
}

export function badInput(t: Subject): void {
  describe("bad input", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("refuses a malformed scan cursor", async function () {
      await rejects(store.scan(ns, { limit: 2, cursor: "not-a-cursor!" }), "invalid_argument");
      await rejects(store.scanRaw(ns, { limit: 2, cursor: "bm9wZQ" }), "invalid_argument");
      await rejects(store.largeValues(ns, { minBytes: 0, limit: 2, cursor: "bm9wZQ" }), "invalid_argument");
    });

    it("refuses a value over the backend's declared limit and writes nothing", async function () {
      const max = store.capabilities.maxValueBytes("k");
      await rejects(store.put(ns, "k", Buffer.alloc(max + 1)), "invalid_argument");
      expect(await store.getRaw(ns, "k")).to.equal(null);
    });

    it("a failed condition in a batch writes nothing for that item", async function () {
      const r = await store.batchWrite(ns, [{ type: "put", key: "k", value: buf("v"), condition: { kind: "expected_version", version: 3n } }]);
      expect(r[0]!.ok).to.equal(false);
      expect(await store.getRaw(ns, "k")).to.equal(null);
    });
  });
}

/**
 * The batch rule (README, "The protocol"): a write's own input or condition is that write's
 * result and the others go on; a failure of the store or the call fails the whole BatchWrite.
 */
export function batchRule(t: Subject): void {
  describe("batch rule", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("one write's own errors are item results: only invalid_argument and version_mismatch", function () {
      expect([...ITEM_ERROR_KINDS].sort()).to.deep.equal(["invalid_argument", "version_mismatch"]);
    });

    it("a value this store cannot hold is that write's invalid_argument; the others are written", async function () {
      const tooBig = Buffer.alloc(store.capabilities.maxValueBytes("big") + 1);
      const results = await store.batchWrite(ns, [
        { type: "put", key: "a", value: buf("1") },
        { type: "put", key: "big", value: tooBig },
        { type: "put", key: "c", value: buf("3"), condition: { kind: "must_not_exist" } },
      ]);
      expect(results.map((r) => r.ok)).to.deep.equal([true, false, true]);
      if (!results[1]!.ok) expect(results[1]!.error.kind).to.equal("invalid_argument");
      expect(await store.getRaw(ns, "big")).to.equal(null);
      expect((await store.batchGet(ns, ["a", "c"])).length).to.equal(2);
    });

    it("a failed condition is that write's version_mismatch, and a later write of the key still runs", async function () {
      await store.put(ns, "k", buf("v1"));
      const results = await store.batchWrite(ns, [
        { type: "put", key: "k", value: buf("x"), condition: { kind: "must_not_exist" } },
        { type: "put", key: "k", value: buf("v2"), condition: { kind: "expected_version", version: 1n } },
      ]);
      expect(results[0]!.ok).to.equal(false);
      if (!results[0]!.ok) expect(results[0]!.error).to.deep.include({ kind: "version_mismatch", currentVersion: 1n });
      expect(results[1]).to.deep.include({ ok: true, version: 2n });
    });

    it("a caller that has gone fails the whole call (cancelled), and nothing is written", async function () {
      await rejects(store.batchWrite(ns, [{ type: "put", key: "a", value: buf("1") }, { type: "delete", key: "b" }], signalCaller(AbortSignal.abort())), "cancelled");
      expect(await store.batchGetRaw(ns, ["a", "b"])).to.deep.equal([]);
    });

    it("a store that cannot be reached fails the whole call (unavailable), not its items", async function () {
      if (!t.options.serverUrl) this.skip();
      const down = await openStore(t.options.serverUrl(`127.0.0.1`, CLOSED_PORT, "pw", 2000));
      try {
        await rejects(down.batchWrite(ns, [{ type: "put", key: "a", value: buf("1") }, { type: "put", key: "b", value: buf("2") }]), "unavailable");
      } finally {
        await down.close();
      }
    });
  });
}

/** A caller that has gone before a call starts gets `cancelled`, and nothing is written (protocol/call.ts). */
export function cancellation(t: Subject): void {
  describe("cancellation", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("every operation refuses with cancelled once the caller's signal has aborted, writing nothing", async function () {
      await store.put(ns, "live", buf("v"));
      const gone = signalCaller(AbortSignal.abort());
      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => store.get(ns, "live", gone)],
        ["batchGet", () => store.batchGet(ns, ["live"], gone)],
        ["put", () => store.put(ns, "k", buf("v"), undefined, undefined, gone)],
        ["put (conditional)", () => store.put(ns, "live", buf("w"), { kind: "expected_version", version: 1n }, undefined, gone)],
        ["delete", () => store.delete(ns, "live", undefined, undefined, gone)],
        ["applyIfNewer", () => store.applyIfNewer(ns, [{ key: "r", value: buf("r"), version: 5n }], undefined, gone)],
        ["scan", () => store.scan(ns, { limit: 5 }, gone)],
        ["scanRaw", () => store.scanRaw(ns, { limit: 5 }, gone)],
        ["dropNamespace", () => store.dropNamespace(ns, gone)],
      ];
      for (const [what, call] of calls) expect((await rejects(call(), "cancelled")).message, what).to.match(/not started/);
      expect(await store.batchGetRaw(ns, ["k", "r"])).to.deep.equal([]);
      expect(await store.getRaw(ns, "live")).to.deep.equal({ key: "live", value: buf("v"), version: 1n });
    });

    it("a live signal changes nothing", async function () {
      const live = signalCaller(new AbortController().signal);
      expect(await store.put(ns, "k", buf("v"), undefined, undefined, live)).to.equal(1n);
      expect(await store.get(ns, "k", live)).to.deep.include({ version: 1n });
    });
  });
}

/** Every capability a store declares is used here, both ways. */
export function capabilities(t: Subject): void {
  describe("declared capabilities", function () {
    let store: Store;
    let ns: string;
    beforeEach(() => ({ store, ns } = t));

    it("durable: a reopened store finds the data exactly when it declares durable", async function () {
      await store.put(ns, "kept", buf("v"));
      const again = await (t.options.reopen ?? t.options.open)(store);
      try {
        const found = await again.get(ns, "kept");
        if (store.capabilities.durable) expect(found).to.deep.include({ key: "kept", version: 1n });
        else expect(found).to.equal(null);
      } finally {
        await (t.options.close ? t.options.close(again) : again.close());
      }
    });

    it("maxVersion: holds its highest version and refuses one above it, writing nothing", async function () {
      const max = store.capabilities.maxVersion ?? 2n ** 64n - 1n;
      expect(await store.applyIfNewer(ns, [{ key: "top", value: buf("t"), version: max }])).to.deep.equal([true]);
      expect((await store.getRaw(ns, "top"))!.version).to.equal(max);
      expect((await rejects(store.applyIfNewer(ns, [{ key: "over", value: buf("o"), version: max + 1n }]), "invalid_argument")).field).to.equal("version");
      await rejects(store.applyIfNewer(ns, [{ key: "zero", value: buf("z"), version: 0n }]), "invalid_argument");
      expect(await store.batchGetRaw(ns, ["over", "zero"])).to.deep.equal([]);
    });

    it("applyBatch: a call of the declared size is applied whole", async function () {
      const limits = store.capabilities.applyBatch;
      if (!limits) this.skip();
      expect(limits.items).to.be.above(0);
      expect(limits.bytes).to.be.above(0);
      const size = Math.max(1, Math.min(limits.items, Math.floor(limits.bytes / 64)));
      const items = Array.from({ length: size }, (_, i) => ({ key: `b${i}`, value: Buffer.alloc(32, 1), version: 1n }));
      expect(await store.applyIfNewer(ns, items)).to.deep.equal(items.map(() => true));
      expect(await store.estimateCount(ns)).to.be.at.least(t.options.approximateCount ? size / 3 : size);
    });
  });
}

/** A silent TCP server: accepts connections and never answers. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What every store with a server owes when the server fails: a prompt, typed answer that never shows the password. */
export function faults(t: Subject): void {
  describe("server faults", function () {
    const password = "s3cret-conformance-pw";
    beforeEach(function () {
      if (!t.options.serverUrl) this.skip();
    });

    it("a server that is down is unavailable, quickly, with the password redacted", async function () {
      const down = await openStore(t.options.serverUrl!("127.0.0.1", CLOSED_PORT, password, 3000));
      try {
        expect(down.description).to.not.include(password);
        for (const call of [() => down.get("ns", "k"), () => down.put("ns", "k", buf("v"))]) {
          const started = Date.now();
          const err = await rejects(call(), "unavailable");
          expect(Date.now() - started, err.message).to.be.below(2500);
          expect(err.message).to.not.include(password);
        }
      } finally {
        await down.close();
      }
    });

    it("a server that accepts and never answers is deadline_exceeded within timeout_ms", async function () {
      const silent = await silentServer();
      const timeoutMs = 400;
      const store = await openStore(t.options.serverUrl!("127.0.0.1", silent.port, password, timeoutMs));
      try {
        for (const call of [() => store.get("ns", "k"), () => store.put("ns", "k", buf("v"))]) {
          const started = Date.now();
          const err = await rejects(call(), "deadline_exceeded");
          expect(Date.now() - started, err.message).to.be.below(timeoutMs + 1000);
          expect(err.message).to.not.include(password);
        }
      } finally {
        await store.close();
        await silent.close();
      }
    });
  });
}

/** Every group, in order. */
export const GROUPS = { basic, conditions, tombstones, batch, batchRule, scan, replication, capabilities, fence, badInput, cancellation, faults };

/** Runs `groups` (default: all) against the store options.open() makes. */
export function conformance(name: string, options: ConformanceOptions, groups: ((t: Subject) => void)[] = Object.values(GROUPS)): void {
  describe(`conformance: ${name}`, function () {
    let store: Store | undefined;
    let ns = "";
    const subject: Subject = {
      get store() {
        return store!;
      },
      get ns() {
        return ns;
      },
      options,
    };

    before(async function () {
      store = await options.open();
    });
    after(async function () {
      if (store) await (options.close ? options.close(store) : store.close());
    });
    beforeEach(function () {
      ns = freshNamespace();
    });

    for (const group of groups) {
      const gap = options.knownGaps?.[group.name as keyof typeof GROUPS];
      if (gap === undefined) group(subject);
      else describe(group.name, () => it.skip(`known gap: ${gap}`));
    }
  });
}
