// Stored records carry a schema version per kind, and a sidecar that reads a newer one than it
// understands refuses to act on it (a rolling upgrade must never let an old replica misread a
// new record): one test per kind of record, on in-process controllers over memory stores.
import { expect } from "chai";
import { MemoryStore } from "../../src/backends/memory.js";
import { BACKFILL_KEY, ControlStore, JOURNAL_PREFIX, PHASE_KEY, SCHEMAS, VERIFY_KEY, heartbeatKey, journalKey, type PhaseRecord } from "../../src/migration/control.js";
import { MigrationController, type Timings } from "../../src/migration/controller.js";
import { MigratingStore } from "../../src/migration/migrating-store.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { silentLogger } from "../../src/log.js";
import { CONTROL_NAMESPACE } from "../../src/protocol/types.js";
import { isDecantError } from "../../src/protocol/errors.js";
import { waitFor } from "../support/migration.js";

const TIMINGS: Partial<Timings> = { heartbeatMs: 20, leaseMs: 2000, replicaTtlMs: 4000, fenceHoldMs: 1000, fenceTimeoutMs: 2000, backfillLeaseMs: 400, storeTimeoutMs: 0 };
const NEWER = 99;

const started: MigrationController[] = [];

async function replica(id: string, current: MemoryStore, target?: MemoryStore): Promise<MigrationController> {
  const c = new MigrationController({ current, target, control: current, replicaId: id, metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: TIMINGS });
  await c.start();
  started.push(c);
  return c;
}

/** Writes a record as a newer Decant would: the same fields (or these), a newer schema. */
async function writeNewer(store: MemoryStore, key: string, value: Record<string, unknown>): Promise<Buffer> {
  const raw = Buffer.from(JSON.stringify({ ...value, schema: NEWER }));
  await store.put(CONTROL_NAMESPACE, key, raw);
  return raw;
}

/** Waits until replica `id` has heartbeat `n` more times (each round of it renews, then housekeeps). */
async function heartbeats(store: MemoryStore, id: string, n: number): Promise<void> {
  const version = async () => (await store.get(CONTROL_NAMESPACE, heartbeatKey(id)))?.version ?? 0n;
  const from = await version();
  await waitFor(async () => (await version()) >= from + BigInt(n), `${n} heartbeats of ${id}`);
}

async function rawValue(store: MemoryStore, key: string): Promise<Record<string, unknown>> {
  return JSON.parse((await store.get(CONTROL_NAMESPACE, key))!.value.toString("utf8")) as Record<string, unknown>;
}

/** The refusal names the record, its schema and this sidecar's. */
async function refused(p: Promise<unknown>, key: string, kind = "failed_precondition"): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a refusal naming ${key}`).to.be.instanceOf(Error);
  expect(isDecantError(err, kind as "failed_precondition"), String(err)).to.equal(true);
  expect((err as Error).message).to.include(`control record ${key} has schema ${NEWER}, newer than this sidecar understands`);
}

async function migrating(): Promise<{ current: MemoryStore; target: MemoryStore; c: MigrationController; s: MigratingStore }> {
  const current = new MemoryStore();
  const target = new MemoryStore();
  const c = await replica("a", current, target);
  await c.setPhase("DUAL_WRITE", false);
  await waitFor(() => c.isActive(), "DUAL_WRITE active");
  return { current, target, c, s: new MigratingStore(c) };
}

describe("control records: schema versions", function () {
  this.timeout(20_000);
  afterEach(async () => {
    await Promise.all(started.splice(0).map((c) => c.stop().catch(() => undefined)));
  });

  it("every record is written with its kind's schema; a record without one (written before schemas) is read as schema 1", async () => {
    const { current, c, s } = await migrating();
    await s.put("users", "k", Buffer.from("v"));
    await c.backfill.start(0, 1);
    await waitFor(async () => (await c.backfill.read())?.value.state === "done", "backfill done");
    expect(await rawValue(current, PHASE_KEY)).to.include({ schema: SCHEMAS.phase });
    expect(await rawValue(current, heartbeatKey("a"))).to.include({ schema: SCHEMAS.replica });
    expect(await rawValue(current, BACKFILL_KEY)).to.include({ schema: SCHEMAS.backfill });
    await c.setPhase("SHADOW_READ", false);
    const { verify } = await import("../../src/migration/verify.js");
    await verify(c, { repair: false });
    expect(await rawValue(current, VERIFY_KEY)).to.include({ schema: SCHEMAS.verify });
    const intent = await c.writeIntent("users", "j");
    expect(await rawValue(current, intent.key)).to.include({ schema: SCHEMAS.journal });

    const legacy = { ...(await rawValue(current, PHASE_KEY)) };
    delete legacy.schema;
    await current.put(CONTROL_NAMESPACE, PHASE_KEY, Buffer.from(JSON.stringify(legacy)));
    expect((await new ControlStore(current).read<PhaseRecord>(PHASE_KEY))!.value.phase).to.equal("SHADOW_READ");
  });

  it("phase record: a newer one stops writes at once (UNAVAILABLE saying why), and SetPhase, status and a new replica's start; an older one lets them resume", async () => {
    const { current, target, c, s } = await migrating();
    const old = await rawValue(current, PHASE_KEY);
    await writeNewer(current, PHASE_KEY, old);
    await waitFor(async () => c.isFailClosed(), "the replica refuses writes");
    expect(c.failClosedReason()).to.include(`schema ${NEWER}`);
    await refused(s.put("users", "k", Buffer.from("v")), PHASE_KEY, "unavailable");
    expect(await target.get("users", "k")).to.equal(null);
    expect(await current.get("users", "k")).to.equal(null);
    await refused(c.setPhase("SHADOW_READ", false), PHASE_KEY);
    await refused(c.status(), PHASE_KEY);
    await refused(new MigrationController({ current, target, control: current, replicaId: "b", metrics: new MigrationMetrics(new Metrics(false).registry), logger: silentLogger(), timings: TIMINGS }).start(), PHASE_KEY);
    expect(await rawValue(current, PHASE_KEY)).to.include({ schema: NEWER }); // nothing rewrote it

    await current.put(CONTROL_NAMESPACE, PHASE_KEY, Buffer.from(JSON.stringify(old)));
    await waitFor(async () => !c.isFailClosed(), "writes accepted again");
    await s.put("users", "k", Buffer.from("v"));
    expect((await target.get("users", "k"))?.value.toString()).to.equal("v");
  });

  it("heartbeat: a newer replica's heartbeat stops what judges liveness (activity, the backfill's start, status), not writes", async () => {
    const { current, c, s } = await migrating();
    const mine = await rawValue(current, heartbeatKey("a"));
    await writeNewer(current, heartbeatKey("new"), { ...mine, id: "new" });
    await refused(c.isActive(), heartbeatKey("new"));
    await refused(c.backfill.start(0, 1), heartbeatKey("new"));
    await refused(c.status(), heartbeatKey("new"));
    expect(await current.get(CONTROL_NAMESPACE, BACKFILL_KEY)).to.equal(null);
    await s.put("users", "k", Buffer.from("v")); // the phase record is still one it knows
  });

  it("journal entry: a newer entry is neither repaired nor dropped, nor counted as if understood", async () => {
    const { current, target, c } = await migrating();
    await current.put("users", "k", Buffer.from("only on the current store"));
    const key = `${journalKey("users", "k")}/newer-1`;
    const raw = await writeNewer(current, key, { ns: "users", key: "k", owner: "gone", incarnation: "newer", failed: true, at: Date.now() });
    await refused(c.repairJournal("DUAL_WRITE", true), key);
    await refused(c.journalDepth(), key);
    expect(await target.get("users", "k")).to.equal(null);
    expect((await current.get(CONTROL_NAMESPACE, key))!.value).to.deep.equal(raw);
    expect((await current.scan(CONTROL_NAMESPACE, { prefix: JOURNAL_PREFIX, limit: 100 })).items).to.have.length(1);
  });

  it("backfill record: a newer one is not started, resumed or taken over, and is left as it is; writes go on", async () => {
    const { current, c, s } = await migrating();
    await current.put("users", "k", Buffer.from("v"));
    const raw = await writeNewer(current, BACKFILL_KEY, { state: "paused", attempt: c.attempt, rateLimit: 0, concurrency: 1, pageSize: 10, namespaces: ["users"], nsIndex: 0, segments: [null], scanned: 0, copied: 0, skipped: 0, estimatedTotal: 1, startedAt: Date.now(), activeMs: 0, updatedAt: Date.now() });
    await refused(c.backfill.start(0, 1), BACKFILL_KEY);
    await refused(c.backfill.setPaused(false), BACKFILL_KEY);
    await refused(c.status(), BACKFILL_KEY);
    await heartbeats(current, "a", 3); // housekeeping (which takes over a backfill) ran in between
    expect((await current.get(CONTROL_NAMESPACE, BACKFILL_KEY))!.value).to.deep.equal(raw);
    await s.put("users", "w", Buffer.from("live"));
  });

  it("verify record: a newer one does not open READ_TARGET, and status refuses it", async () => {
    const { current, c } = await migrating();
    await c.backfill.start(0, 1);
    await waitFor(async () => (await c.backfill.read())?.value.state === "done", "backfill done");
    await c.setPhase("SHADOW_READ", false);
    await waitFor(() => c.isActive(), "SHADOW_READ active");
    const rec = (await new ControlStore(current).read<PhaseRecord>(PHASE_KEY))!.value;
    const report = { checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, done: true, sample_keys: [] };
    await writeNewer(current, VERIFY_KEY, { report, namespace: "", attempt: rec.attempt, epoch: rec.epoch, failures: {}, startedAt: Date.now(), finishedAt: Date.now(), by: "newer" });
    await refused(c.setPhase("READ_TARGET", false), VERIFY_KEY);
    await refused(c.status(), VERIFY_KEY);
    expect((await new ControlStore(current).read<PhaseRecord>(PHASE_KEY))!.value.phase).to.equal("SHADOW_READ");
  });
});
