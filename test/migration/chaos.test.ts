// Process-level chaos for the migration protocol (issue 12; properties P1–P3 of docs/PROTOCOL.md):
// three real `decant serve` processes on PostgreSQL (current, and the control store) → Redis
// (target), with writers through every sidecar that record each ACKNOWLEDGED (key, version,
// value or tombstone), readers that check every read against what was acknowledged before it
// started, and sidecars frozen with SIGSTOP beyond the replica TTL or killed with SIGKILL.
// The assertions are the safety properties only; how many writes fail (UNAVAILABLE while a
// sidecar fails closed or a fence holds, DEADLINE_EXCEEDED while it is frozen) is reported.
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import pg from "pg";
import { Redis } from "ioredis";
import { openStore } from "../../src/backends/index.js";
import type { Store } from "../../src/protocol/store.js";
import { readAllRaw } from "../../src/migration/compare.js";
import { ControlStore, JOURNAL_PREFIX, type JournalEntry } from "../../src/migration/control.js";
import { DecantClient } from "../../src/client/client.js";
import { compareStores, waitFor } from "../support/migration.js";
import { dropRedisKeys } from "../support/cleanup.js";
import { postgresAvailable, serverAvailable, TEST_URLS } from "../support/servers.js";
import { killAllSidecars, startSidecarProcess, type SidecarProcess } from "../support/processes.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

const NS = "users";
const KEYS = 200;
const TTL_MS = 4500;
/** Every pause outlasts the TTL, so the others count the frozen replica dead while it holds writes. */
const PAUSE_MS = TTL_MS + 1500;
/** Client deadline per store call: a frozen sidecar's calls end as DEADLINE_EXCEEDED (unless a test waits longer). */
const CALL_MS = 4000;
// Store timeouts of 2 s keep the TTL the config demands (lease + store timeout + heartbeat = 4.1 s) short.
const TIMINGS = { DECANT_HEARTBEAT_MS: "100", DECANT_LEASE_MS: "2000", DECANT_REPLICA_TTL_MS: String(TTL_MS), DECANT_BACKFILL_LEASE_MS: "2000", DECANT_FENCE_TIMEOUT_MS: "10000" };

const run = randomBytes(4).toString("hex");
const prefix = `decant_chaos_${run}`;

const pgOk = await postgresAvailable();
const redisOk = await serverAvailable("redis", async () => {
  const r = new Redis(TEST_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  r.on("error", () => undefined);
  try {
    await r.connect();
    await r.ping();
  } finally {
    r.disconnect();
  }
});

const withParams = (base: string, params: Record<string, string>): string => {
  const url = new URL(base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
};

const urls = (name: string) => ({
  current: withParams(TEST_URLS.postgres, { table: `${prefix}_${name}`, timeout_ms: "2000" }),
  target: withParams(TEST_URLS.redis, { prefix: `${prefix}_${name}`, timeout_ms: "2000" }),
});

async function cleanUp(): Promise<void> {
  const c = new pg.Client({ connectionString: TEST_URLS.postgres });
  await c.connect();
  try {
    const rows = await c.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1", [`${prefix}%`]);
    for (const { t } of rows.rows) await c.query(`DROP TABLE IF EXISTS public.${t}`);
  } finally {
    await c.end();
  }
  await dropRedisKeys(prefix);
}

/** A value or a tombstone (null). */
type Val = string | null;
const show = (v: Val) => (v === null ? "tombstone" : JSON.stringify(v));
const keyName = (i: number) => `k${String(i).padStart(3, "0")}`;
const randomKey = () => keyName(Math.floor(Math.random() * KEYS));
const code = (err: unknown) => (err as grpc.ServiceError).code;

interface Counts {
  acked: number;
  puts: number;
  conditional: number;
  preconditionFailed: number;
  deletes: number;
  reads: number;
  unavailable: number;
  deadline: number;
}

/**
 * What the clients were told, and what reads saw. P2: one version, one value. P3: a read never
 * returns less than the highest version acknowledged before it started. P1: checked against a
 * store at the end (`checkHolds`).
 */
class Ledger {
  private readonly acked = new Map<string, Map<bigint, Val>>();
  private readonly highest = new Map<string, { version: bigint; value: Val; issuedAt: number }>();
  /** Values of writes that were not acknowledged (errors): they may have landed, or land later. */
  private readonly unacked = new Map<string, Set<Val>>();
  /** Deletes per key: when issued, and when they could last have landed (Infinity: unknown). */
  private readonly deletes = new Map<string, { issuedAt: number; settledAt: number }[]>();
  /** What reads returned: key → version → values. */
  private readonly seen = new Map<string, Map<bigint, Set<string>>>();
  readonly p2: string[] = [];
  readonly p3: string[] = [];
  readonly unexpected: string[] = [];
  readonly counts: Counts = { acked: 0, puts: 0, conditional: 0, preconditionFailed: 0, deletes: 0, reads: 0, unavailable: 0, deadline: 0 };
  /** Errors by the step of the walk they happened in. */
  readonly errorsBy: Record<string, number> = {};
  step = "SINGLE";
  /** Per sidecar (client address): every write, when it was issued and answered, and the answer. */
  readonly writesBy = new Map<string, { issuedAt: number; settledAt: number; outcome: string }[]>();

  /** Writes issued and not answered yet, per sidecar: key → their wall-clock issue times. */
  readonly pending = new Map<string, Map<string, { at: number }[]>>();

  /** Marks a write in flight on `client`; the returned function ends it. */
  private inFlight(client: DecantClient, key: string): () => void {
    let m = this.pending.get(client.address);
    if (!m) this.pending.set(client.address, (m = new Map()));
    const mark = { at: Date.now() };
    m.set(key, [...(m.get(key) ?? []), mark]);
    return () => {
      const left = (m.get(key) ?? []).filter((x) => x !== mark);
      if (left.length) m.set(key, left);
      else m.delete(key);
    };
  }

  /** True if `client` has a write of `key` in flight that was issued before `at` (wall clock). */
  pendingBefore(client: DecantClient, key: string, at: number): boolean {
    return (this.pending.get(client.address)?.get(key) ?? []).some((x) => x.at <= at);
  }

  private record(client: DecantClient, issuedAt: number, outcome: string): void {
    let list = this.writesBy.get(client.address);
    if (!list) this.writesBy.set(client.address, (list = []));
    list.push({ issuedAt, settledAt: now(), outcome });
  }

  ack(key: string, version: bigint, value: Val, issuedAt: number, client?: DecantClient): void {
    this.counts.acked++;
    if (client) this.record(client, issuedAt, `acked v${version}`);
    let m = this.acked.get(key);
    if (!m) this.acked.set(key, (m = new Map()));
    if (m.has(version) && m.get(version) !== value) this.p2.push(`${key} v${version}: acknowledged ${show(m.get(version)!)} and ${show(value)}`);
    m.set(version, value);
    const h = this.highest.get(key);
    if (!h || version > h.version) this.highest.set(key, { version, value, issuedAt });
  }

  /** A write whose outcome the client does not know. */
  private unknown(key: string, value: Val): void {
    let s = this.unacked.get(key);
    if (!s) this.unacked.set(key, (s = new Set()));
    s.add(value);
  }

  /** Counts an error: only UNAVAILABLE and DEADLINE_EXCEEDED are expected, anything else is kept to fail the test. */
  failed(err: unknown, client: DecantClient, what: string, write?: { key: string; value: Val; issuedAt: number }): void {
    const c = code(err);
    if (write) {
      this.unknown(write.key, write.value);
      this.record(client, write.issuedAt, `${grpc.status[c]} ${(err as grpc.ServiceError).details ?? ""}`.slice(0, 120));
    }
    this.errorsBy[this.step] = (this.errorsBy[this.step] ?? 0) + 1;
    if (c === grpc.status.UNAVAILABLE) this.counts.unavailable++;
    else if (c === grpc.status.DEADLINE_EXCEEDED) this.counts.deadline++;
    else if (this.unexpected.length < 20) this.unexpected.push(`${what}: ${c} ${(err as grpc.ServiceError).details ?? String(err)}`);
  }

  /** A checked Get: undefined when it failed (counted). */
  async read(client: DecantClient, key: string): Promise<{ found: boolean; version?: bigint } | undefined> {
    const before = this.highest.get(key);
    let res;
    try {
      res = await client.call("store", "Get", { namespace: NS, key });
    } catch (err) {
      this.failed(err, client, `Get ${key}`);
      return undefined;
    }
    this.counts.reads++;
    if (res.found) {
      const version = BigInt(res.item.version);
      let m = this.seen.get(key);
      if (!m) this.seen.set(key, (m = new Map()));
      let s = m.get(version);
      if (!s) m.set(version, (s = new Set()));
      s.add(Buffer.from(res.item.value).toString());
      if (before && version < before.version) this.p3.push(`${key}: read v${version} (${this.step}) after v${before.version} was acknowledged`);
      return { found: true, version };
    }
    if (before && before.value !== null && !this.maybeDeleted(key, before.issuedAt, now())) {
      this.p3.push(`${key}: read "not found" (${this.step}) after v${before.version} was acknowledged, with no delete issued since`);
    }
    return { found: false };
  }

  private maybeDeleted(key: string, after: number, before: number): boolean {
    return (this.deletes.get(key) ?? []).some((d) => d.issuedAt < before && d.settledAt > after);
  }

  /** Values acknowledged at a version must be the only values reads saw at it. */
  readsAgree(): string[] {
    const out: string[] = [];
    for (const [key, versions] of this.seen) {
      for (const [version, values] of versions) {
        const m = this.acked.get(key);
        if (!m?.has(version)) continue;
        const want = m.get(version)!;
        for (const v of values) if (v !== want) out.push(`${key} v${version}: a read returned ${show(v)}, the acknowledged write was ${show(want)}`);
      }
    }
    return out;
  }

  /**
   * P1 against a store read through its own adapter: every key at its highest acknowledged
   * version with that value, or at a higher version holding a write whose outcome its client
   * never learned; no value that nobody wrote.
   */
  async checkHolds(store: Store): Promise<{ violations: string[]; landedUnacked: number }> {
    const held = await readAllRaw(store, NS);
    const violations: string[] = [];
    let landedUnacked = 0;
    for (const key of new Set([...held.keys(), ...this.highest.keys()])) {
      const r = held.get(key);
      const h = this.highest.get(key);
      const got: Val | undefined = r ? (r.value === null ? null : r.value.toString()) : undefined;
      if (h && (!r || r.version < h.version)) {
        violations.push(`${key}: holds ${r ? `v${r.version}` : "nothing"}, v${h.version} ${show(h.value)} was acknowledged`);
      } else if (h && r!.version === h.version) {
        if (got !== h.value) violations.push(`${key} v${h.version}: holds ${show(got!)}, ${show(h.value)} was acknowledged`);
      } else if (r) {
        if (this.unacked.get(key)?.has(got!)) landedUnacked++;
        else violations.push(`${key}: holds v${r.version} ${show(got!)}, which no unacknowledged write of this key carried`);
      }
    }
    return { violations, landedUnacked };
  }

  summary(): string {
    const c = this.counts;
    return `acked ${c.acked} (puts ${c.puts}, conditional ${c.conditional} + ${c.preconditionFailed} FAILED_PRECONDITION, deletes ${c.deletes}), reads ${c.reads}; errors UNAVAILABLE ${c.unavailable}, DEADLINE_EXCEEDED ${c.deadline}, other ${this.unexpected.length}; errors by step ${JSON.stringify(this.errorsBy)}`;
  }

  // ---- the clients ---------------------------------------------------------------------------

  async put(client: DecantClient, key: string, value: string, condition?: { expected_version?: string; must_not_exist?: boolean }): Promise<void> {
    const issuedAt = now();
    const end = this.inFlight(client, key);
    try {
      const res = await client.call("store", "Put", { namespace: NS, key, value: Buffer.from(value), condition });
      this.ack(key, BigInt(res.version), value, issuedAt, client);
      this.counts.puts++;
      if (condition) this.counts.conditional++;
    } catch (err) {
      // A failed condition wrote nothing (the store checks it atomically with the write).
      if (condition && code(err) === grpc.status.FAILED_PRECONDITION) this.counts.preconditionFailed++;
      else this.failed(err, client, `Put ${key}`, { key, value, issuedAt });
    } finally {
      end();
    }
  }

  async delete(client: DecantClient, key: string): Promise<void> {
    const d = { issuedAt: now(), settledAt: Infinity };
    let list = this.deletes.get(key);
    if (!list) this.deletes.set(key, (list = []));
    list.push(d);
    const end = this.inFlight(client, key);
    try {
      const res = await client.call("store", "Delete", { namespace: NS, key });
      d.settledAt = now();
      if (res.deleted) this.ack(key, BigInt(res.version), null, d.issuedAt, client);
      this.counts.deletes++;
    } catch (err) {
      this.failed(err, client, `Delete ${key}`, { key, value: null, issuedAt: d.issuedAt }); // settledAt stays Infinity: it may still land
    } finally {
      end();
    }
  }
}

/** Writers and readers on some sidecars, until stopped. */
class Traffic {
  private stopped = false;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly ledger: Ledger) {}

  writers(client: DecantClient, tag: string, n: number): this {
    for (let w = 0; w < n; w++) this.loops.push(this.writer(client, `${tag}${w}`));
    return this;
  }

  readers(client: DecantClient, n: number): this {
    for (let r = 0; r < n; r++) {
      this.loops.push(
        (async () => {
          while (!this.stopped) {
            if ((await this.ledger.read(client, randomKey())) === undefined) await sleep(50);
            else await sleep(1);
          }
        })(),
      );
    }
    return this;
  }

  private async writer(client: DecantClient, tag: string): Promise<void> {
    const l = this.ledger;
    for (let n = 1; !this.stopped; n++) {
      const key = randomKey();
      const value = `${tag}/${n}`;
      const before = l.counts.unavailable + l.counts.deadline;
      const r = Math.random();
      if (r < 0.45) await l.put(client, key, value);
      else if (r < 0.75) {
        const got = await l.read(client, key);
        if (got) await l.put(client, key, value, got.found ? { expected_version: String(got.version) } : { must_not_exist: true });
      } else await l.delete(client, key);
      // A refused or frozen sidecar is not hammered in a tight loop.
      await sleep(l.counts.unavailable + l.counts.deadline > before ? 50 : 2);
    }
  }

  /**
   * Resolves once `n` more writes (of `client`, or of anyone) have been acknowledged: traffic
   * between two steps is counted in writes, since a loaded machine may do none in a fixed time.
   */
  async acked(n: number, client?: DecantClient): Promise<void> {
    const from = now();
    const count = () =>
      client ? (this.ledger.writesBy.get(client.address) ?? []).filter((w) => w.settledAt >= from && w.outcome.startsWith("acked")).length : this.ledger.counts.acked;
    const target = client ? n : count() + n;
    await waitFor(async () => count() >= target, `${n} more acknowledged writes${client ? ` through ${client.address}` : ""}`, 30_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

// ---- the sidecars and the migration service ------------------------------------------------------

interface Cluster {
  procs: SidecarProcess[];
  /** Traffic clients with short deadlines (one per sidecar). */
  clients: DecantClient[];
  current: Store;
  target: Store;
  control: ControlStore;
  stop(): Promise<void>;
}

/** `deadlines`: per sidecar, its traffic client's deadline per call (default CALL_MS). */
async function cluster(name: string, ids: string[], deadlines: number[] = []): Promise<Cluster> {
  const { current: currentUrl, target: targetUrl } = urls(name);
  // The test's own adapters wait longer than the sidecars' (the first call creates the table, on a busy machine).
  const current = await openStore(withParams(currentUrl, { timeout_ms: "10000" }));
  const target = await openStore(withParams(targetUrl, { timeout_ms: "10000" }));
  // A preloaded current store, for the backfill to copy (version 1 each).
  await current.applyIfNewer(NS, Array.from({ length: KEYS }, (_, i) => ({ key: keyName(i), value: Buffer.from(`preload/${i}`), version: 1n })));
  const env = { DECANT_CURRENT: currentUrl, DECANT_TARGET: targetUrl, ...TIMINGS };
  const procs = await Promise.all(ids.map((id) => startSidecarProcess({ ...env, DECANT_REPLICA_ID: `${name}-${id}` })));
  const clients = procs.map((p, i) => new DecantClient(`127.0.0.1:${p.port}`, { deadlineMs: deadlines[i] ?? CALL_MS }));
  return {
    procs,
    clients,
    current,
    target,
    control: new ControlStore(current),
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(procs.map((p) => p.stop()));
      await current.close();
      await target.close();
    },
  };
}

const preloaded = (ledger: Ledger) => {
  for (let i = 0; i < KEYS; i++) ledger.ack(keyName(i), 1n, `preload/${i}`, -Infinity);
};

async function status(p: SidecarProcess): Promise<any> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await p.client.call("migration", "GetStatus", {}, 10_000);
    } catch (err) {
      if (attempt >= 3 || (code(err) !== grpc.status.DEADLINE_EXCEEDED && code(err) !== grpc.status.UNAVAILABLE)) throw err;
    }
  }
}

const waitActive = (p: SidecarProcess, phase: string, timeoutMs = 30_000) =>
  waitFor(async () => {
    const s = await status(p);
    return s.phase === phase && s.active;
  }, `${phase} active (asked ${p.replicaId})`, timeoutMs);

/**
 * SetPhase. A switch that could not complete (a fence rolled back: "stayed in …", or a store call
 * that timed out on the busy machine) is tried again, a bounded number of times; a retry that
 * finds the phase already set means the first call committed before its answer was lost.
 */
async function setPhase(p: SidecarProcess, phase: string, stats: { retries: number }, force = false): Promise<number> {
  const began = now();
  for (let attempt = 1; ; attempt++) {
    try {
      await p.client.call("migration", "SetPhase", { phase, force }, 60_000);
      return Math.round(now() - began);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (attempt > 1 && e.code === grpc.status.FAILED_PRECONDITION && String(e.details).includes(`already in ${phase}`)) return Math.round(now() - began);
      if (attempt >= 4 || (e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED)) throw err;
      stats.retries++;
      await sleep(200);
    }
  }
}

interface VerifyMsg {
  checked: string;
  missing: string;
  stale: string;
  extra: string;
  done: boolean;
  sample_keys: string[];
}

function runVerify(client: DecantClient): Promise<VerifyMsg> {
  return new Promise((resolve, reject) => {
    let last: VerifyMsg | undefined;
    const stream = client.stream("Verify", {});
    stream.on("data", (r: VerifyMsg) => (last = r));
    stream.on("end", () => (last ? resolve(last) : reject(new Error("Verify sent no report"))));
    stream.on("error", reject);
  });
}

/** DUAL_WRITE, the backfill, SHADOW_READ: the steps every test here starts with. */
async function toShadowRead(c: Cluster, ledger: Ledger, stats: { retries: number }): Promise<void> {
  const [a, b] = c.procs as [SidecarProcess, SidecarProcess];
  ledger.step = "DUAL_WRITE";
  await setPhase(a, "DUAL_WRITE", stats);
  await waitActive(b, "DUAL_WRITE");
  ledger.step = "backfill";
  await b.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
  await waitFor(async () => {
    const bf = (await status(a)).backfill;
    if (bf.state === "failed") throw new Error(`backfill failed: ${bf.error}`);
    return bf.state === "done";
  }, "backfill done");
  ledger.step = "SHADOW_READ";
  await setPhase(a, "SHADOW_READ", stats);
  await waitActive(a, "SHADOW_READ");
}

/**
 * Freezes a sidecar at a moment it holds an ADMITTED write: an intent of its own in the journal
 * (written after admission, before the primary write), for a key its client has a write in
 * flight on, issued before the intent was written. The freeze is held 300 ms before looking, so
 * intents whose removal was already on its way are gone. Tried a bounded number of times.
 */
async function pauseWithWritesInFlight(c: Cluster, p: SidecarProcess, client: DecantClient, ledger: Ledger): Promise<{ intents: number; admitted: number; tries: number; at: number }> {
  for (let tries = 1; tries <= 30; tries++) {
    const at = now();
    p.pause();
    await sleep(300);
    const mine = (await c.control.list<JournalEntry>(JOURNAL_PREFIX)).filter((e) => e.value.owner === p.replicaId && !e.value.failed);
    const admitted = mine.filter((e) => ledger.pendingBefore(client, e.value.key, e.value.at)).length;
    if (admitted > 0) return { intents: mine.length, admitted, tries, at };
    p.resume();
    await sleep(20 + Math.random() * 200);
  }
  throw new Error(`${p.replicaId} never had an admitted write in flight when frozen (30 tries)`);
}

/** GetStatus reports no journal depth and the control store holds no entry at all. */
async function journalDrained(c: Cluster, p: SidecarProcess): Promise<void> {
  let left: { key: string; value: JournalEntry }[] = [];
  let depth = "";
  await waitFor(async () => {
    depth = (await status(p)).repair_journal_depth;
    left = await c.control.list<JournalEntry>(JOURNAL_PREFIX);
    return depth === "0" && left.length === 0;
  }, "the repair journal to drain", 30_000).catch((err: Error) => {
    throw new Error(`${err.message}: GetStatus depth ${depth}, entries ${JSON.stringify(left.slice(0, 5))}`);
  });
}

function expectSafe(ledger: Ledger, held: { violations: string[] }): void {
  expect(ledger.p2, `P2: ${ledger.p2.slice(0, 10).join("\n")}`).to.deep.equal([]);
  const reads = ledger.readsAgree();
  expect(reads, `P2 (reads): ${reads.slice(0, 10).join("\n")}`).to.deep.equal([]);
  expect(ledger.p3, `P3: ${ledger.p3.slice(0, 10).join("\n")}`).to.deep.equal([]);
  expect(held.violations, `P1: ${held.violations.slice(0, 10).join("\n")}`).to.deep.equal([]);
  expect(ledger.unexpected, `only UNAVAILABLE / DEADLINE_EXCEEDED: ${ledger.unexpected.join("\n")}`).to.deep.equal([]);
}

const figures: string[] = [];

if (pgOk && redisOk) {
  describe("migration chaos: SIGSTOP / SIGKILL of real sidecar processes (PostgreSQL → Redis)", function () {
    this.timeout(90_000);
    let c: Cluster | undefined;
    let traffic: Traffic | undefined;

    afterEach(async function () {
      this.timeout(30_000);
      for (const p of c?.procs ?? []) p.resume();
      await traffic?.stop();
      await c?.stop();
      c = undefined;
      traffic = undefined;
    });
    after(async function () {
      this.timeout(30_000);
      await killAllSidecars();
      await cleanUp().catch((err) => console.warn("cleanup failed:", err));
      if (figures.length) console.log(`\n  chaos figures:\n${figures.map((f) => `    ${f}`).join("\n")}\n`);
    });

    it("a full walk with a rollback across the fence, a replica frozen beyond the TTL across each fenced switch: P1, P2, P3 hold", async function () {
      const began = now();
      c = await cluster("walk", ["a", "b", "c"]);
      const [a, b, cc] = c.procs as [SidecarProcess, SidecarProcess, SidecarProcess];
      const ledger = new Ledger();
      preloaded(ledger);
      const stats = { retries: 0, verifyRuns: 0 };
      traffic = new Traffic(ledger);
      c.clients.forEach((client, i) => traffic!.writers(client, "abc"[i]!, 2).readers(client, 1));
      await traffic.acked(50);

      await toShadowRead(c, ledger, stats);
      // The gate wants a verification of this SHADOW_READ with no secondary failure since it
      // started; under load one may have failed meanwhile (then verify again, a bounded number of times).
      ledger.step = "Verify";
      let report: VerifyMsg | undefined;
      for (;;) {
        stats.verifyRuns++;
        report = await runVerify(c.clients[2]!);
        try {
          await setPhase(a, "READ_TARGET", stats);
          break;
        } catch (err) {
          if (code(err) !== grpc.status.FAILED_PRECONDITION || stats.verifyRuns >= 4) throw err;
        }
      }
      ledger.step = "READ_TARGET";
      await waitActive(a, "READ_TARGET");

      const pauses: string[] = [];
      /** Freezes `victim`, runs the fenced switch on `by`, keeps it frozen beyond the TTL, continues it. */
      const acrossFence = async (victim: SidecarProcess, by: SidecarProcess, phase: string) => {
        ledger.step = `${phase} (${victim.replicaId} frozen)`;
        victim.pause();
        const frozenAt = now();
        const fenceMs = await setPhase(by, phase, stats);
        while (now() - frozenAt < PAUSE_MS) await sleep(50);
        victim.resume();
        pauses.push(`${victim.replicaId} frozen ${Math.round(now() - frozenAt)} ms across → ${phase} (switch took ${fenceMs} ms)`);
        ledger.step = phase;
        await waitActive(by, phase); // the continued replica acknowledges the new epoch too
      };
      await acrossFence(cc, a, "TARGET_PRIMARY");
      await traffic.acked(30);
      await acrossFence(b, a, "READ_TARGET"); // the rollback: the primary moves back to the current store
      await traffic.acked(30);
      ledger.step = "TARGET_PRIMARY again";
      await setPhase(cc, "TARGET_PRIMARY", stats);
      await waitActive(cc, "TARGET_PRIMARY");
      await traffic.acked(30);
      ledger.step = "COMPLETE";
      await setPhase(a, "COMPLETE", stats);
      await waitActive(a, "COMPLETE");
      await traffic.acked(30);
      await traffic.stop();

      const held = await ledger.checkHolds(c.target);
      const line = `walk: ${ledger.summary()}; ${pauses.join("; ")}; verify runs ${stats.verifyRuns} (last checked ${report!.checked}), SetPhase retries ${stats.retries}; target holds ${held.landedUnacked} keys at a version written by an unacknowledged write; violations P1 ${held.violations.length} P2 ${ledger.p2.length + ledger.readsAgree().length} P3 ${ledger.p3.length}; ${((now() - began) / 1000).toFixed(1)} s`;
      console.log(`      ${line}`);
      figures.push(line);
      expectSafe(ledger, held);
      expect(ledger.counts.acked, "writes were acknowledged").to.be.greaterThan(KEYS + 100);
      expect((await status(b)).phase).to.equal("COMPLETE");
    });

    it("a sidecar frozen with writes admitted while another performs READ_TARGET → TARGET_PRIMARY: its writes are refused or re-admitted, never acknowledged twice", async function () {
      const began = now();
      // The victim's clients wait out the freeze, so its frozen writes get their real answer.
      c = await cluster("stop", ["a", "b", "v"], [CALL_MS, CALL_MS, 4 * PAUSE_MS]);
      const [a, , victim] = c.procs as [SidecarProcess, SidecarProcess, SidecarProcess];
      const ledger = new Ledger();
      preloaded(ledger);
      const stats = { retries: 0 };
      await toShadowRead(c, ledger, stats);
      await setPhase(a, "READ_TARGET", stats, true); // the verify gate is the walk's subject; this test is about the fence
      await waitActive(a, "READ_TARGET");
      ledger.step = "READ_TARGET";
      // The victim under constant write load (three writers), the others lighter.
      traffic = new Traffic(ledger).writers(c.clients[0]!, "a", 1).writers(c.clients[1]!, "b", 1).writers(c.clients[2]!, "v", 3).readers(c.clients[0]!, 1);
      await traffic.acked(50);

      const frozen = await pauseWithWritesInFlight(c, victim, c.clients[2]!, ledger);
      const frozenAt = frozen.at;
      ledger.step = "TARGET_PRIMARY (victim frozen)";
      const fenceMs = await setPhase(a, "TARGET_PRIMARY", stats);
      while (now() - frozenAt < PAUSE_MS) await sleep(50);
      victim.resume();
      const resumedAt = now();
      const frozenMs = Math.round(now() - frozenAt);
      ledger.step = "TARGET_PRIMARY";
      await waitActive(a, "TARGET_PRIMARY");
      await traffic.acked(30, c.clients[2]!); // the victim's writes resume, now under TARGET_PRIMARY
      await traffic.stop();

      await journalDrained(c, a);
      const diff = await compareStores(c.current, c.target, [NS]);
      const held = await ledger.checkHolds(c.target);
      // The writes frozen in flight: issued before the freeze, answered after SIGCONT.
      const frozenWrites = (ledger.writesBy.get(c.clients[2]!.address) ?? []).filter((w) => w.issuedAt < frozenAt && w.settledAt > resumedAt);
      const outcomes: Record<string, number> = {};
      for (const w of frozenWrites) outcomes[w.outcome.replace(/v\d+/, "vN")] = (outcomes[w.outcome.replace(/v\d+/, "vN")] ?? 0) + 1;
      const line =
        `SIGSTOP with writes admitted: frozen with ${frozen.intents} intents of its own in the journal, ${frozen.admitted} of them for writes its client awaited (try ${frozen.tries}); frozen ${frozenMs} ms, the switch took ${fenceMs} ms (SetPhase retries ${stats.retries}); ` +
        `the victim's ${frozenWrites.length} frozen writes answered after SIGCONT: ${JSON.stringify(outcomes)}; ` +
        `${ledger.summary()}; current vs target differences ${diff.length}; target keys at an unacknowledged version ${held.landedUnacked}; ${((now() - began) / 1000).toFixed(1)} s`;
      console.log(`      ${line}`);
      figures.push(line);
      expectSafe(ledger, held);
      expect(frozenWrites.length, "writes frozen in flight were answered after SIGCONT").to.be.at.least(1);
      expect(diff, `stores equal at the end: ${diff.slice(0, 10).join("\n")}`).to.deep.equal([]);
    });

    it("a sidecar SIGKILLed mid-DUAL_WRITE with writes in flight: the others repair its intents, the journal drains, verify finds the stores equal", async function () {
      const began = now();
      c = await cluster("kill", ["a", "b", "v"]);
      const [a, b, victim] = c.procs as [SidecarProcess, SidecarProcess, SidecarProcess];
      const ledger = new Ledger();
      preloaded(ledger);
      const stats = { retries: 0 };
      ledger.step = "DUAL_WRITE";
      await setPhase(a, "DUAL_WRITE", stats);
      await waitActive(b, "DUAL_WRITE");
      await b.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
      await waitFor(async () => (await status(a)).backfill.state === "done", "backfill done");
      traffic = new Traffic(ledger).writers(c.clients[0]!, "a", 1).writers(c.clients[1]!, "b", 1).writers(c.clients[2]!, "v", 3).readers(c.clients[0]!, 1);
      await traffic.acked(50);

      // Frozen first, so the kill lands while its intents are provably in the journal.
      const frozen = await pauseWithWritesInFlight(c, victim, c.clients[2]!, ledger);
      await victim.kill();
      const killedAt = now();
      ledger.step = "DUAL_WRITE (victim killed)";
      let maxDepth = 0;
      await waitFor(async () => {
        maxDepth = Math.max(maxDepth, Number((await status(a)).repair_journal_depth));
        return (await c!.control.list<JournalEntry>(JOURNAL_PREFIX)).every((e) => e.value.owner !== victim.replicaId);
      }, "the killed replica's intents to be repaired by the others", 30_000);
      const repairedMs = Math.round(now() - killedAt);
      await traffic.acked(30);
      await traffic.stop();
      await journalDrained(c, a);
      const report = await runVerify(c.clients[1]!);
      const diff = await compareStores(c.current, c.target, [NS]);
      const held = await ledger.checkHolds(c.target);
      const line =
        `SIGKILL mid-DUAL_WRITE: ${frozen.intents} intents of the victim in the journal at the kill, ${frozen.admitted} of them for writes its client awaited (try ${frozen.tries}); repaired by the others ${repairedMs} ms after the kill (TTL ${TTL_MS} ms), GetStatus depth peak ${maxDepth}; ` +
        `verify checked ${report.checked} missing ${report.missing} stale ${report.stale} extra ${report.extra}; direct differences ${diff.length}; ${ledger.summary()}; ${((now() - began) / 1000).toFixed(1)} s`;
      console.log(`      ${line}`);
      figures.push(line);
      expectSafe(ledger, held);
      expect(report.done).to.equal(true);
      expect({ missing: report.missing, stale: report.stale, extra: report.extra }, report.sample_keys.join(", ")).to.deep.equal({ missing: "0", stale: "0", extra: "0" });
      expect(diff, diff.slice(0, 10).join("\n")).to.deep.equal([]);
    });
  });
}
