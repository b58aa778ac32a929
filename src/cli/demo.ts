// decant demo: a whole live migration in one command. It starts a sidecar in this process on
// an embedded SQLite `current` store with a second SQLite file as the `target` (a fresh temp
// directory each run), preloads items, runs a load generator through the gRPC client, walks
// every phase through the Migration service, and at the end compares both stores directly
// through their adapters. Exit 0 only if nothing differs and no request failed.
import { describeRaw, readAllRaw } from "../migration/compare.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { DecantClient } from "../client/client.js";
import { dynamodbApi, grpcApi, type DemoApi } from "./demo-api.js";
import { ConfigError, loadConfig, type Config } from "../config/config.js";
import { createLogger } from "../log.js";
import type { Store } from "../protocol/store.js";
import { CONTROL_NAMESPACE, type RawItem } from "../protocol/types.js";
import { startSidecar, type Sidecar } from "../server/sidecar.js";
import { STATUS_NAMES } from "../wire/status.js";
import type { MigrationStatus, VerifyReport, WirePhase } from "../wire/types.js";

const USAGE = `decant demo [--current URL] [--target URL] [--keys N] [--seconds S] [--api grpc|dynamodb]
            [--port P] [--metrics-port P] [--hold]

Runs a whole live migration in this process and prints each step: a sidecar on
--current (default: a fresh SQLite file in a temp directory) migrating to --target
(default: a second SQLite file there), N preloaded items (default 5000) in namespace
"demo", a load generator writing through gRPC the whole time, S seconds of traffic in
each phase (default 2), then a key-by-key comparison of both stores.
--port and --metrics-port pick the gRPC and status-page ports on 127.0.0.1 (default:
free ones). --hold keeps the sidecar and its status page serving after the demo, until
Ctrl-C.
--api dynamodb drives the same load through the sidecar's DynamoDB front with an
unmodified AWS SDK client (only its endpoint points at Decant), table "demo".
Exit 0 if the stores are equal and every request succeeded, 1 otherwise.`;

const NS = "demo";
const WORKERS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

class Output {
  readonly tty = Boolean(process.stdout.isTTY);
  private live = false;
  private lastPlain = 0;

  line(text = ""): void {
    this.clearLive();
    process.stdout.write(`${text}\n`);
  }

  /** A line that updates in place on a terminal; elsewhere printed at most once a second. */
  progress(text: string, force = false): void {
    if (this.tty) {
      process.stdout.write(`\r\x1b[2K${text}`);
      this.live = true;
    } else if (force || Date.now() - this.lastPlain >= 1000) {
      this.lastPlain = Date.now();
      process.stdout.write(`${text}\n`);
    }
  }

  clearLive(): void {
    if (this.live) process.stdout.write("\r\x1b[2K");
    this.live = false;
  }
}

function bar(done: number, total: number, width = 28): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(1).padStart(5)}%`;
}

const keyName = (i: number) => `item-${String(i).padStart(6, "0")}`;

/**
 * The load generator: WORKERS loops through the gRPC client, each owning its own keys (so it
 * knows what every key must hold): reads, puts (overwrites and new keys), deletes and
 * delete-then-recreate. UNAVAILABLE (a write held past a fence) is retried once after a short
 * sleep; it counts as an error only if the retry fails too.
 */
class LoadGenerator {
  requests = 0;
  retried = 0;
  errors = 0;
  staleReads = 0;
  readonly problems: string[] = [];
  /** Per key, the value the last acknowledged write left (null = deleted). */
  readonly expected = new Map<string, string | null>();
  /** Keys whose last write failed: their state is unknown. */
  readonly uncertain = new Set<string>();
  private stopping = false;
  private loops: Promise<void>[] = [];
  private samples: { at: number; requests: number }[] = [];
  private sampler?: NodeJS.Timeout;

  constructor(
    private readonly api: DemoApi,
    private readonly keySpace: number,
  ) {}

  start(): void {
    this.stopping = false;
    this.loops = Array.from({ length: WORKERS }, (_, w) => this.worker(w));
    this.sampler = setInterval(() => this.sample(), 250);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sampler);
    await Promise.all(this.loops);
    this.loops = [];
    this.samples = [];
  }

  private sample(): void {
    const now = Date.now();
    this.samples.push({ at: now, requests: this.requests });
    this.samples = this.samples.filter((s) => now - s.at <= 2000);
  }

  /** Requests per second over the last ~2 s. */
  rate(): number {
    const first = this.samples[0];
    const dt = first ? Date.now() - first.at : 0;
    return first && dt >= 200 ? ((this.requests - first.requests) * 1000) / dt : 0;
  }

  summary(): string {
    return `${fmt(this.requests)} requests (${fmt(this.rate())}/s), ${fmt(this.retried)} retried after UNAVAILABLE, errors: ${this.errors}`;
  }

  private problem(text: string): void {
    if (this.problems.length < 20) this.problems.push(text);
  }

  /** One request, retried once on UNAVAILABLE. Returns undefined if it failed. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    this.requests++;
    try {
      return await fn();
    } catch (err) {
      if (this.api.retryable(err)) {
        this.retried++;
        await sleep(200);
        try {
          return await fn();
        } catch (again) {
          err = again;
        }
      }
      this.errors++;
      this.problem(`${what}: ${this.api.describe(err)}`);
      return undefined;
    }
  }

  private async worker(w: number): Promise<void> {
    const owned = Math.floor((this.keySpace - w - 1) / WORKERS) + 1;
    let n = 0;
    while (!this.stopping) {
      const key = keyName(w + WORKERS * Math.floor(Math.random() * owned));
      const roll = Math.random();
      const value = `w${w}-${n++}-${Date.now()}`;
      if (roll < 0.2) {
        const r = await this.call(`get ${key}`, async () => ({ value: await this.api.get(key) }));
        if (r && !this.uncertain.has(key)) {
          const want = this.expected.get(key) ?? null;
          const got = r.value;
          if (want !== got) {
            this.staleReads++;
            this.problem(`get ${key}: read ${JSON.stringify(got)}, but the last acknowledged write left ${JSON.stringify(want)}`);
          }
        }
      } else if (roll < 0.65) {
        this.track(key, value, await this.call(`put ${key}`, () => this.api.put(key, value).then(() => true)));
      } else if (roll < 0.85) {
        this.track(key, null, await this.call(`delete ${key}`, () => this.api.delete(key)));
      } else {
        // Delete, then re-create: the new item's version must outrank the tombstone's.
        const deleted = await this.call(`delete ${key}`, () => this.api.delete(key));
        this.track(key, null, deleted);
        if (deleted !== undefined) this.track(key, value, await this.call(`re-create ${key}`, () => this.api.put(key, value).then(() => true)));
      }
      await sleep(1);
    }
  }

  private track(key: string, value: string | null, result: unknown): void {
    if (result === undefined) this.uncertain.add(key);
    else {
      this.expected.set(key, value);
      this.uncertain.delete(key);
    }
  }
}

/** Both stores read directly through their adapters: every key's presence, version and value, tombstones included. */
async function compareStores(current: Store, target: Store) {
  const namespaces = [...new Set([...(await current.namespaces()), ...(await target.namespaces())])].filter((ns) => ns !== CONTROL_NAMESPACE).sort();
  const diffs: string[] = [];
  let keys = 0;
  let tombstones = 0;
  let targetDemo = new Map<string, RawItem>();
  for (const ns of namespaces) {
    const [a, b] = await Promise.all([readAllRaw(current, ns), readAllRaw(target, ns)]);
    if (ns === NS) targetDemo = b;
    for (const key of new Set([...a.keys(), ...b.keys()])) {
      keys++;
      const l = a.get(key);
      const r = b.get(key);
      if (l?.value === null) tombstones++;
      if (describeRaw(l) !== describeRaw(r)) diffs.push(`${ns}/${key}: current ${describeRaw(l)}, target ${describeRaw(r)}`);
    }
  }
  return { namespaces, keys, tombstones, diffs, targetDemo };
}

interface DemoOptions {
  keys: number;
  seconds: number;
  api: "grpc" | "dynamodb";
  port: number;
  metricsPort: number;
  current?: string;
  target?: string;
  hold: boolean;
}

/** The flags, checked: the options, or the exit code once the usage (or an error) is printed. */
function parseOptions(args: string[]): DemoOptions | number {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      current: { type: "string" },
      target: { type: "string" },
      keys: { type: "string" },
      seconds: { type: "string" },
      port: { type: "string" },
      "metrics-port": { type: "string" },
      hold: { type: "boolean" },
      api: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const refuse = (message: string) => {
    process.stderr.write(`decant: ${message}\n${USAGE}\n`);
    return 2;
  };
  const keys = Number(values.keys ?? 5000);
  const seconds = Number(values.seconds ?? 2);
  if (!Number.isInteger(keys) || keys < 100 || keys > 1_000_000) return refuse("--keys takes a whole number from 100 to 1000000");
  const api = values.api ?? "grpc";
  if (api !== "grpc" && api !== "dynamodb") return refuse("--api takes grpc or dynamodb");
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 600) return refuse("--seconds takes a number from 0 to 600");
  const ports: Record<string, number> = {};
  for (const flag of ["port", "metrics-port"] as const) {
    const port = Number(values[flag] ?? 0);
    if (!Number.isInteger(port) || port < 0 || port > 65535) return refuse(`--${flag} takes a port number from 0 (a free one) to 65535`);
    ports[flag] = port;
  }
  return { keys, seconds, api, port: ports.port!, metricsPort: ports["metrics-port"]!, current: values.current, target: values.target, hold: Boolean(values.hold) };
}

/** The sidecar's configuration: the demo's stores, its ports, and fast timings. */
function demoConfig(o: DemoOptions, currentUrl: string, targetUrl: string): Config {
  return loadConfig(undefined, {
    DECANT_CURRENT: currentUrl,
    DECANT_TARGET: targetUrl,
    DECANT_LISTEN: `127.0.0.1:${o.port}`,
    DECANT_METRICS_LISTEN: `127.0.0.1:${o.metricsPort}`,
    DECANT_REPLICA_ID: "demo",
    DECANT_LOG_LEVEL: "warn",
    DECANT_DRAIN_TIMEOUT_MS: "2000",
    // Fast timings: a demo does not wait for production heartbeats.
    DECANT_HEARTBEAT_MS: "100",
    DECANT_LEASE_MS: "2000",
    DECANT_REPLICA_TTL_MS: "4000",
    DECANT_FENCE_HOLD_MS: "3000",
    DECANT_FENCE_TIMEOUT_MS: "5000",
    DECANT_BACKFILL_LEASE_MS: "2000",
    ...(o.api === "dynamodb" ? { DECANT_DYNAMODB_LISTEN: "127.0.0.1:0" } : {}),
  });
}

/** What the demo runs on: a sidecar (its stores in a fresh temp directory unless given), a client, and the API the load speaks. */
interface Stage {
  sidecar: Sidecar;
  client: DecantClient;
  api: DemoApi;
  currentUrl: string;
  /** Removes the temp directory, if the demo made one. */
  removeDir(): void;
}

/** Starts the stage, or prints why it could not and returns the exit code. */
async function setUp(o: DemoOptions): Promise<Stage | number> {
  const dir = !o.current || !o.target ? mkdtempSync(join(tmpdir(), "decant-demo-")) : undefined;
  const removeDir = () => dir && rmSync(dir, { recursive: true, force: true });
  const currentUrl = o.current ?? `sqlite:${join(dir!, "current.db")}`;
  let config: Config;
  try {
    config = demoConfig(o, currentUrl, o.target ?? `sqlite:${join(dir!, "target.db")}`);
  } catch (err) {
    removeDir();
    if (err instanceof ConfigError) {
      process.stderr.write(`decant: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let sidecar: Sidecar;
  try {
    sidecar = await startSidecar(config, createLogger({ level: "warn" }));
  } catch (err) {
    removeDir();
    process.stderr.write(`decant: the demo sidecar could not start: ${(err as Error).message}\n`);
    return 3;
  }
  const client = new DecantClient(`127.0.0.1:${sidecar.grpcPort}`, { deadlineMs: 15_000 });
  try {
    const api = o.api === "dynamodb" ? await dynamodbApi(`http://127.0.0.1:${sidecar.dynamodbPort}`, NS) : grpcApi(client, NS);
    return { sidecar, client, api, currentUrl, removeDir };
  } catch (err) {
    client.close();
    await sidecar.stop();
    removeDir();
    process.stderr.write(`decant: the demo could not set up its ${o.api} client: ${(err as Error).message}\n`);
    return 3;
  }
}

const backfillOf = (s: MigrationStatus) => {
  if (!s.backfill) throw new Error("the sidecar's status has no backfill section");
  return s.backfill;
};

/** The walk through every phase, one method a step, with the load running. */
class Walk {
  private step = 0;
  private static readonly STEPS = 8;
  private readonly controller: Sidecar["controller"];

  constructor(
    private readonly o: DemoOptions,
    private readonly stage: Stage,
    private readonly out: Output,
    private readonly load: LoadGenerator,
  ) {
    this.controller = stage.sidecar.controller;
  }

  /** Every step in order; the exit code before the load generator's summary (1 when the stores differ). */
  async run(): Promise<number> {
    await this.preload();
    await this.single();
    await this.dualWrite();
    await this.backfill();
    await this.shadowRead();
    if (!(await this.verify())) return 1;
    await this.readTarget();
    await this.targetPrimary();
    await this.complete();
    return this.finalComparison();
  }

  private status = () => this.stage.client.status();

  private async setPhase(phase: WirePhase): Promise<number> {
    const t = performance.now();
    await this.stage.client.request("migration", "SetPhase", { phase, force: false }, 60_000);
    return performance.now() - t;
  }

  /** Lets the traffic run, with the live request and error counts. */
  private async hold(secs: number): Promise<void> {
    const end = Date.now() + secs * 1000;
    while (Date.now() < end) {
      if (this.out.tty) this.out.progress(`   traffic: ${this.load.summary()}`);
      await sleep(Math.min(200, Math.max(0, end - Date.now())));
    }
    this.out.line(`   traffic: ${this.load.summary()}`);
  }

  private say(title: string, words: string): void {
    this.out.line(`\nStep ${++this.step}/${Walk.STEPS}  ${title}: ${words}`);
  }

  introduce(): void {
    const { sidecar } = this.stage;
    this.out.line("Decant demo: a live migration, start to finish, with traffic running the whole time.");
    this.out.line(`  current store: ${sidecar.store.description.split(" → ")[0]}`);
    this.out.line(`  target store:  ${this.controller.target!.description}`);
    this.out.line(`  status page:   http://127.0.0.1:${sidecar.metricsPort}/   (open it to watch; metrics at /metrics)`);
    this.out.line(`  gRPC:          127.0.0.1:${sidecar.grpcPort}`);
    if (sidecar.dynamodbPort) this.out.line(`  DynamoDB API:  http://127.0.0.1:${sidecar.dynamodbPort}   (the load generator is an unmodified AWS SDK client pointed here)`);
  }

  /** Through the served store (in SINGLE, that is the current store), with some tombstones. */
  private async preload(): Promise<void> {
    const { keys } = this.o;
    const preloadStart = performance.now();
    const items: [string, string][] = Array.from({ length: keys }, (_, j) => [keyName(j), `preloaded-${j}`]);
    const deletes = items.filter((_, j) => j % 10 === 0).map(([key]) => key);
    await this.stage.api.preload(items, deletes, this.stage.sidecar.store);
    for (const [key, value] of items) this.load.expected.set(key, value);
    for (const key of deletes) this.load.expected.set(key, null);
    this.out.line(`\nPreloaded ${fmt(keys)} items into ${this.o.api === "dynamodb" ? `table "${NS}"` : `namespace "${NS}"`} of the current store and deleted ${fmt(deletes.length)} of them (tombstones) in ${((performance.now() - preloadStart) / 1000).toFixed(1)} s.`);
  }

  private async single(): Promise<void> {
    this.say("SINGLE", `the service lives on the current store alone. The load generator starts: reads, puts, overwrites, deletes and delete-then-recreate, through the ${this.stage.api.name}.`);
    this.load.start();
    await this.hold(this.o.seconds);
  }

  private async dualWrite(): Promise<void> {
    this.say("DUAL_WRITE", "every write now goes to the current store (which assigns the version) and then to the target (applyIfNewer). Reads still come from current.");
    await this.setPhase("DUAL_WRITE");
    const activeBy = Date.now() + 15_000;
    while (!(await this.status()).active) {
      if (Date.now() > activeBy) throw new Error("DUAL_WRITE was not acknowledged within 15 s");
      await sleep(50);
    }
    this.out.line("   every replica acknowledged DUAL_WRITE.");
    await this.hold(this.o.seconds);
  }

  private async backfill(): Promise<void> {
    const rate = Math.max(1000, Math.round(this.o.keys / 3));
    this.say("Backfill", `copying the existing items (tombstones too) to the target with their versions, rate-limited to ${fmt(rate)} items/s so you can watch it. Live writes keep flowing; a copy never overwrites a newer write.`);
    const bfStart = performance.now();
    let st = await this.stage.client.request("migration", "StartBackfill", { rate_limit: rate, concurrency: 4 });
    for (;;) {
      const b = backfillOf(st);
      // The total is an estimate (tombstones and live writes are not in it): never shown below what is done.
      const bfTotal = b.state === "done" ? Number(b.scanned) : Math.max(Number(b.estimated_total), Number(b.scanned));
      this.out.progress(`   backfill ${bar(Number(b.scanned), bfTotal)} ${fmt(Number(b.scanned))}/${fmt(bfTotal)} items, ${fmt(b.items_per_second)} items/s | ${this.load.summary()}`, b.state !== "running");
      if (b.state !== "running") break;
      await sleep(200);
      st = await this.status();
    }
    const b = backfillOf(st);
    if (b.state !== "done") throw new Error(`the backfill stopped in state ${b.state}${b.error ? `: ${b.error}` : ""}`);
    this.out.line(`   backfill done in ${((performance.now() - bfStart) / 1000).toFixed(1)} s: ${fmt(Number(b.scanned))} scanned, ${fmt(Number(b.copied))} copied, ${fmt(Number(b.skipped))} skipped because the target already held a newer version.`);
  }

  private async shadowRead(): Promise<void> {
    this.say("SHADOW_READ", "reads still come from the current store; the target is read too, off the request path, and compared.");
    await this.setPhase("SHADOW_READ");
    await this.hold(this.o.seconds);
    const mismatches = (await this.controller.metrics.shadowMismatches.get()).values.reduce((n, v) => n + v.value, 0);
    this.out.line(`   shadow reads that disagreed so far: ${fmt(mismatches)} (a write racing its shadow read can cause one; the verifier re-checks such keys).`);
  }

  /** True when the verifier found the stores equal. */
  private async verify(): Promise<boolean> {
    this.say("Verify", "comparing both stores key by key (version and value digest), re-checking any mismatch to rule out writes in flight.");
    let total = 0;
    for (const ns of await this.controller.current.namespaces()) if (ns !== CONTROL_NAMESPACE) total += await this.controller.current.estimateCount(ns);
    const verifyStart = performance.now();
    const last = await this.verifyStream(total);
    const verifyDiffs = last ? Number(last.missing) + Number(last.stale) + Number(last.extra) : -1;
    this.out.line(`   verify took ${((performance.now() - verifyStart) / 1000).toFixed(1)} s: ${fmt(Number(last?.checked ?? 0))} keys checked, ${fmt(Number(last?.in_sync ?? 0))} in sync, ${last?.missing ?? "?"} missing, ${last?.stale ?? "?"} stale, ${last?.extra ?? "?"} extra.`);
    if (verifyDiffs !== 0) {
      this.out.line(`   the verifier found differences; READ_TARGET would be refused:\n${(last?.sample_keys ?? []).map((k) => `     ${k}`).join("\n")}`);
      return false;
    }
    this.out.line("   the stores are equal, so READ_TARGET is allowed.");
    return true;
  }

  /** Runs Verify with a progress bar against the estimated total; the last report. */
  private verifyStream(total: number): Promise<VerifyReport | undefined> {
    let last: VerifyReport | undefined;
    return new Promise((resolve, reject) => {
      const stream = this.stage.client.stream("Verify", {});
      stream.on("data", (r: VerifyReport) => {
        last = r;
        const checked = Number(r.checked);
        this.out.progress(`   verify   ${bar(checked, r.done ? checked : Math.max(total, checked))} ${fmt(checked)} keys checked, ${fmt(Number(r.missing) + Number(r.stale) + Number(r.extra))} differences | ${this.load.summary()}`, r.done);
      });
      stream.on("end", () => resolve(last));
      stream.on("error", reject);
    });
  }

  private async readTarget(): Promise<void> {
    this.say("READ_TARGET", "reads now come from the target; the current store still assigns versions, and a failed target write now fails the request.");
    await this.setPhase("READ_TARGET");
    await this.hold(this.o.seconds);
  }

  private async targetPrimary(): Promise<void> {
    this.say("TARGET_PRIMARY", "the primary moves to the target behind a short write fence: writes are held until every replica acknowledged and the repair journal is empty. The current store now receives the copies, so a way back stays open.");
    const fenceMs = await this.setPhase("TARGET_PRIMARY");
    this.out.line(`   fenced switch took ${fmt(fenceMs)} ms.`);
    await this.hold(this.o.seconds);
  }

  private async complete(): Promise<void> {
    this.say("COMPLETE", "the target is the only store. The demo first stops its traffic and lets the repair journal drain, so both stores can be compared at rest.");
    await this.load.stop();
    const drainBy = Date.now() + 10_000;
    while (Number((await this.status()).repair_journal_depth) > 0) {
      if (Date.now() > drainBy) throw new Error("the repair journal did not drain within 10 s");
      await sleep(100);
    }
    await this.setPhase("COMPLETE");
    this.out.line(`   phase is now ${(await this.status()).phase}.`);
  }

  /** Both stores read directly, and every acknowledged write checked against the target; 0 when nothing differs. */
  private async finalComparison(): Promise<number> {
    this.out.line("\nFinal comparison (both stores read directly through their adapters, not through Decant's verifier):");
    const cmp = await compareStores(this.controller.current, this.controller.target!);
    this.out.line(`   ${fmt(cmp.keys)} keys in ${cmp.namespaces.join(", ") || "no namespaces"} (${fmt(cmp.tombstones)} of them tombstones): ${cmp.diffs.length} differences between current and target.`);
    for (const d of cmp.diffs.slice(0, 10)) this.out.line(`     ${d}`);
    const { lost, samples } = await this.acknowledgedWrites(cmp.targetDemo);
    this.out.line(`   every acknowledged write checked against the target: ${fmt(this.load.expected.size - this.load.uncertain.size)} keys, ${lost} lost or stale.`);
    for (const s of samples) this.out.line(`     ${s}`);
    return cmp.diffs.length === 0 && lost === 0 ? 0 : 1;
  }

  /** How many keys the target holds differently from the last acknowledged write. */
  private async acknowledgedWrites(targetDemo: Map<string, RawItem>): Promise<{ lost: number; samples: string[] }> {
    let lost = 0;
    const samples: string[] = [];
    for (const [key, want] of this.load.expected) {
      if (this.load.uncertain.has(key)) continue;
      const item = targetDemo.get(key);
      // Through the DynamoDB API the items live in the table's own namespace: read them back through it (COMPLETE reads the target).
      const got = this.o.api === "dynamodb" ? await this.stage.api.get(key) : item === undefined || item.value === null ? null : item.value.toString("utf8");
      if (got !== want) {
        lost++;
        if (samples.length < 10) samples.push(`${key}: target holds ${JSON.stringify(got)}, the last acknowledged write left ${JSON.stringify(want)}`);
      }
    }
    return { lost, samples };
  }
}

/** The load generator's summary and the verdict; the exit code. */
function finish(out: Output, load: LoadGenerator, code: number, started: number): number {
  out.line(`\nload generator: ${fmt(load.requests)} requests, ${fmt(load.retried)} retried after UNAVAILABLE, errors: ${load.errors}, stale reads: ${load.staleReads}`);
  for (const p of load.problems.slice(0, 10)) out.line(`   ${p}`);
  const ok = code === 0 && load.errors === 0 && load.staleReads === 0;
  out.line(ok ? `Migration complete: 0 differences, nothing lost, no failed requests. Took ${((performance.now() - started) / 1000).toFixed(1)} s.` : `The demo FAILED (see above). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  return ok ? 0 : 1;
}

async function holdUntilSignal(out: Output, sidecar: Sidecar): Promise<void> {
  out.line(`\nHolding: the status page at http://127.0.0.1:${sidecar.metricsPort}/ and gRPC at 127.0.0.1:${sidecar.grpcPort} keep serving. Ctrl-C to stop.`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
}

const describeFailure = (err: unknown): string => {
  const e = err as grpc.ServiceError;
  return typeof e.code === "number" && e.details ? `${STATUS_NAMES[e.code] ?? e.code}: ${e.details}` : (err as Error).message;
};

export async function demo(args: string[]): Promise<number> {
  const o = parseOptions(args);
  if (typeof o === "number") return o;
  const started = performance.now();
  const stage = await setUp(o);
  if (typeof stage === "number") return stage;
  const out = new Output();
  const load = new LoadGenerator(stage.api, Math.ceil(o.keys * 1.2));
  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      out.clearLive();
      await load.stop();
      stage.api.close();
      stage.client.close();
      await stage.sidecar.stop();
      stage.removeDir();
    })());
  const onSignal = () => {
    out.line("\ninterrupted: stopping the demo");
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const phase = stage.sidecar.controller.phase;
    if (phase !== "SINGLE") {
      out.line(`The control record on ${stage.currentUrl} says the migration is already in ${phase}; the demo needs stores that have not been migrated (leave out --current/--target for fresh ones).`);
      return 2;
    }
    const walk = new Walk(o, stage, out, load);
    walk.introduce();
    return finish(out, load, await walk.run(), started);
  } catch (err) {
    out.clearLive();
    out.line(`\nThe demo stopped: ${describeFailure(err)}`);
    return finish(out, load, 1, started);
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    if (o.hold) await holdUntilSignal(out, stage.sidecar);
    else if (out.tty) out.line(`(the status page stopped with the demo; decant demo --hold keeps it serving until Ctrl-C)`);
    await cleanup();
  }
}
