// Every PromQL expression of the Grafana dashboard and of the alert rules, evaluated by a
// real Prometheus that scrapes a real sidecar in the middle of a migration: an in-process
// sidecar (memory current store, SQLite target) gets traffic and one bad request, goes to
// DUAL_WRITE, has its target locked for a moment (so secondary writes fail, go to the repair
// journal and are repaired, and the target's store errors are counted), backfills and
// verifies; Prometheus scrapes it every second with the rules loaded. Then each dashboard
// query must return at least one series, each rule expression must evaluate, name only
// metrics that exist, and be healthy in Prometheus's rule manager, and the secondary-write
// alert must be pending or firing.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import * as grpc from "@grpc/grpc-js";
import { parse as parseYaml } from "yaml";
import { startTestSidecar } from "../support/sidecar.js";
import { freePort } from "../support/processes.js";
import { waitFor } from "../support/migration.js";

const ROOT = resolve(new URL("../../", import.meta.url).pathname);
const RULES = join(ROOT, "deploy/prometheus/decant-rules.yml");
const DASHBOARD = join(ROOT, "deploy/grafana/decant-dashboard.json");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Obj = Record<string, any>;

function tool(name: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    if (process.env.CI === "true" || process.env.CI === "1") throw new Error(`${name} is not installed and CI is set (Debian: apt-get install prometheus)`);
    console.warn(`\n!!! SKIPPING the real-Prometheus test: ${name} is not installed (Debian: apt-get install prometheus). Set CI=true to make this fail.\n`);
    return undefined;
  }
}

/** Grafana's variables, as Grafana substitutes them before it queries. */
function grafanaToPromQL(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g, "1m")
    .replace(/\$\{?job\}?/g, "decant")
    .replace(/\$\{?instance\}?/g, ".*");
}

/** Metric names in an expression (label matchers, groupings and ranges removed first). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ");
  const names = [...bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\(|[\w:])/g)].map((m) => m[1]!);
  return [...new Set(names.filter((n) => !/^(and|or|unless|bool|offset|inf|nan)$/i.test(n)))];
}

describe("deploy: dashboard and alert PromQL against a real Prometheus", function () {
  this.timeout(180_000);
  const prometheusBin = tool("prometheus");
  if (!prometheusBin) {
    it.skip("needs the prometheus binary");
    return;
  }

  let dir: string;
  let side: Awaited<ReturnType<typeof startTestSidecar>> | undefined;
  let prom: ChildProcess | undefined;
  let promLog = "";
  let promUrl = "";
  let lock: Database.Database | undefined;
  const killProm = () => {
    if (prom?.pid && prom.exitCode === null && prom.signalCode === null) {
      try {
        process.kill(prom.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  };

  async function query(expr: string): Promise<{ status: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }; error?: string }> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as never;
  }
  const value = async (expr: string): Promise<number[]> => {
    const r = await query(expr);
    if (r.status !== "success") throw new Error(`${expr}: ${r.error}`);
    return r.data!.result.map((s) => Number(s.value[1]));
  };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "decant-prom-"));
    const targetPath = join(dir, "target.db");
    // The control record lives in the current store (memory:, in this process).
    side = await startTestSidecar({
      DECANT_CURRENT: "memory:",
      DECANT_TARGET: `sqlite:${targetPath}?busy_timeout_ms=20`,
      DECANT_HEARTBEAT_MS: "100",
      DECANT_LEASE_MS: "2000",
      DECANT_REPLICA_TTL_MS: "4000",
      DECANT_BACKFILL_LEASE_MS: "1000",
      DECANT_REPLICA_ID: "prom-test",
    });
    const client = side.client;

    // Prometheus: scrapes the sidecar every second, evaluates the rules every second.
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        "rule_files:",
        `  - ${JSON.stringify(RULES)}`,
        "scrape_configs:",
        "  - job_name: decant",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${side.sidecar.metricsPort}"]`,
        "",
      ].join("\n"),
    );
    prom = spawn(prometheusBin, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "tsdb")}`, `--web.listen-address=127.0.0.1:${promPort}`, "--log.level=warn"], { stdio: ["ignore", "pipe", "pipe"] });
    prom.stdout!.on("data", (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on("data", (d: Buffer) => (promLog += d.toString()));
    process.once("exit", killProm);
    await waitFor(async () => {
      if (prom!.exitCode !== null) throw new Error(`prometheus exited with ${prom!.exitCode}: ${promLog}`);
      return fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false);
    }, "prometheus ready", 60_000);
    await waitFor(async () => (await value('up{job="decant"}')).includes(1), "the first scrape", 30_000);

    // Traffic, and one bad request (INVALID_ARGUMENT).
    for (let i = 0; i < 40; i++) await client.put("users", `u${i}`, Buffer.from(`v${i}`));
    for (let i = 0; i < 20; i++) await client.get("users", `u${i}`);
    await client.delete("users", "u39");
    const bad = await client.call("store", "Put", { namespace: "Not A Namespace", key: "k", value: Buffer.from("x") }).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).to.equal(grpc.status.INVALID_ARGUMENT);

    // DUAL_WRITE, active once this (only) replica acknowledged it.
    await client.call("migration", "SetPhase", { phase: "DUAL_WRITE" });
    await waitFor(async () => (await client.call("migration", "GetStatus", {})).active === true, "DUAL_WRITE active");
    for (let i = 40; i < 60; i++) await client.put("users", `u${i}`, Buffer.from(`v${i}`));

    // A target that refuses writes for a while: another connection holds SQLite's write lock.
    // The writes still succeed (the current store is the primary); their secondary writes
    // fail, go to the repair journal, and the target's store errors are counted.
    lock = new Database(targetPath);
    lock.exec("BEGIN IMMEDIATE");
    for (let i = 60; i < 70; i++) await client.put("users", `u${i}`, Buffer.from(`v${i}`));
    expect(Number((await client.call("migration", "GetStatus", {})).repair_journal_depth)).to.be.greaterThan(0);
    await waitFor(async () => (await value('decant_secondary_write_failures_total{store="target"}')).some((v) => v > 0), "secondary write failures scraped", 30_000);
    lock.exec("ROLLBACK");
    lock.close();
    lock = undefined;
    await waitFor(async () => Number((await client.call("migration", "GetStatus", {})).repair_journal_depth) === 0, "the repair journal drained");

    // Backfill, then verify.
    await client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
    await waitFor(async () => (await client.call("migration", "GetStatus", {})).backfill?.state === "done", "backfill done");
    const reports: Obj[] = [];
    await new Promise<void>((resolveVerify, reject) => {
      const stream = client.stream("Verify", {});
      stream.on("data", (r: Obj) => reports.push(r));
      stream.on("end", () => resolveVerify());
      stream.on("error", reject);
    });
    expect(reports.at(-1)?.done).to.equal(true);

    // Let the gauges reach Prometheus and the rate windows fill: wait for three scrapes that
    // began after the last change (a rate needs two samples; the third is slack for the rules).
    const changedAt = Date.now() / 1000;
    await waitFor(async () => (await value('timestamp(up{job="decant"})')).some((t) => t >= changedAt + 2), "three scrapes after the verify", 30_000);
  });

  after(async () => {
    if (prom?.pid && prom.exitCode === null && prom.signalCode === null) {
      const exited = new Promise<void>((r) => prom!.once("exit", () => r()));
      process.kill(prom.pid, "SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      killProm();
    }
    process.removeListener("exit", killProm);
    try {
      lock?.close();
    } catch {
      /* closed */
    }
    await side?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the scrape works and the migration's metrics carry what happened", async () => {
    expect(await value('up{job="decant"}')).to.deep.equal([1]);
    expect(await value('decant_requests_total{job="decant", rpc="Store/Put", code="INVALID_ARGUMENT"}')).to.deep.equal([1]);
    expect(await value('decant_migration_phase{phase="DUAL_WRITE"}')).to.deep.equal([1]);
    expect(await value('decant_migration_replicas{state="pending"}')).to.deep.equal([0]);
    expect((await value('decant_store_errors_total{store="target:sqlite"}')).reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    expect((await value('decant_secondary_write_failures_total{store="target"}'))[0]).to.be.at.least(10);
    expect((await value("decant_repair_items_total"))[0]).to.be.at.least(1);
    expect(await value("decant_repair_journal_depth")).to.deep.equal([0]);
    expect(await value("decant_backfill_running")).to.deep.equal([0]);
    expect(await value("decant_backfill_progress_ratio")).to.deep.equal([1]);
    expect((await value('decant_verify_items{result="in_sync"}'))[0]).to.be.at.least(60);
    expect(await value('decant_verify_items{result!="in_sync"}')).to.deep.equal([0, 0, 0]);
    expect(await value("decant_migration_in_sync_ratio")).to.deep.equal([1]);
    expect(await value("decant_fail_closed")).to.deep.equal([0]);
  });

  it("promtool check metrics finds nothing wrong with Decant's own metrics", async function () {
    const promtool = tool("promtool");
    if (!promtool) return this.skip();
    const text = await (await fetch(`http://127.0.0.1:${side!.sidecar.metricsPort}/metrics`)).text();
    const r = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
    const problems = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.trim());
    // prom-client's default metrics (decant_nodejs_*, decant_process_*) are not Decant's to name.
    expect(problems.filter((l) => !/^decant_(nodejs|process)_/.test(l))).to.deep.equal([]);
  });

  it("every dashboard query evaluates and returns at least one series", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Obj;
    const panels = (dashboard.panels as Obj[]).flatMap((p) => [p, ...((p.panels ?? []) as Obj[])]);
    const targets = panels.flatMap((p) => ((p.targets ?? []) as Obj[]).map((t) => ({ where: `${p.title} (${t.refId})`, expr: grafanaToPromQL(String(t.expr)) })));
    expect(targets.length).to.be.greaterThan(20);
    const empty: string[] = [];
    for (const { where, expr } of targets) {
      expect(expr, `${where}: a variable left unsubstituted`).to.not.match(/\$/);
      const r = await query(expr);
      expect(r.status, `${where}: ${expr}: ${r.error}`).to.equal("success");
      if (r.data!.result.length === 0) empty.push(`${where}: ${expr}`);
    }
    expect(empty, "dashboard queries without any series").to.deep.equal([]);
  });

  it("every dashboard variable query (label_values) finds values", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Obj;
    const queries = (dashboard.templating.list as Obj[]).filter((v) => v.type === "query");
    expect(queries.length).to.be.greaterThan(0);
    for (const v of queries) {
      const q = String(typeof v.query === "string" ? v.query : v.query.query);
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
      expect(m, `${v.name}: ${q}`).to.not.equal(null);
      const selector = grafanaToPromQL(m![1]!);
      const res = (await (await fetch(`${promUrl}/api/v1/label/${m![2]}/values?match[]=${encodeURIComponent(selector)}`)).json()) as { status: string; data: string[] };
      expect(res.status).to.equal("success");
      expect(res.data.length, `$${v.name}: ${q} finds no values`).to.be.greaterThan(0);
    }
  });

  it("every rule expression evaluates, and every metric it names has series", async () => {
    const rules = ((parseYaml(readFileSync(RULES, "utf8")) as Obj).groups as Obj[]).flatMap((g) => g.rules as Obj[]);
    expect(rules.length).to.be.greaterThan(6);
    for (const rule of rules) {
      const expr = String(rule.expr);
      const r = await query(expr);
      expect(r.status, `${rule.alert}: ${r.error}`).to.equal("success");
      const names = metricNames(expr);
      expect(names.length, `${rule.alert}: no metric in ${expr}`).to.be.greaterThan(0);
      for (const name of names) {
        const res = (await (await fetch(`${promUrl}/api/v1/series?match[]=${encodeURIComponent(`${name}{job="decant"}`)}`)).json()) as { status: string; data: unknown[] };
        expect(res.status).to.equal("success");
        expect(res.data.length, `${rule.alert}: no series named ${name}`).to.be.greaterThan(0);
      }
    }
  });

  it("Prometheus loaded every rule, evaluates it without error, and the secondary-write alert is pending or firing", async () => {
    const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: Obj[] }[] } };
    const loaded = res.data.groups.flatMap((g) => g.rules);
    const expected = ((parseYaml(readFileSync(RULES, "utf8")) as Obj).groups as Obj[]).flatMap((g) => g.rules as Obj[]);
    expect(loaded.map((r) => r.name).sort()).to.deep.equal(expected.map((r) => r.alert ?? r.record).sort());
    for (const r of loaded) {
      expect(r.health, `${r.name}: ${r.lastError}`).to.equal("ok");
      expect(r.lastError ?? "", r.name).to.equal("");
    }
    const alerts = ((await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Obj[] } }).data.alerts;
    const secondary = alerts.find((a) => a.labels.alertname === "DecantSecondaryWriteFailures");
    expect(secondary?.labels.store).to.equal("target");
    expect(["pending", "firing"]).to.include(secondary?.state);
    // Nothing else is wrong with this sidecar.
    const others = alerts.filter((a) => a.labels.alertname !== "DecantSecondaryWriteFailures").map((a) => `${a.labels.alertname} ${a.state}`);
    expect(others).to.deep.equal([]);
  });
});
