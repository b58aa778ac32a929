// deploy/prometheus and deploy/grafana, checked statically: promtool checks the rules, the
// scrape config, and runs the rules' unit tests (one firing and one quiet case per alert);
// the dashboard's structure is checked; and every metric, label and function the PromQL of
// the dashboard and the rules uses is checked against the metrics the sidecar really
// registers (src/metrics), so a renamed metric breaks this test rather than a dashboard.
// test/deploy/prometheus.test.ts then runs all of that PromQL against a real Prometheus.
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { parse as parseYaml } from "yaml";
import { Metrics } from "../../src/metrics/metrics.js";
import { MigrationMetrics } from "../../src/metrics/migration-metrics.js";

const ROOT = resolve(new URL("../../", import.meta.url).pathname);
const PROM_DIR = join(ROOT, "deploy/prometheus");
const RULES = join(PROM_DIR, "decant-rules.yml");
const RULES_TEST = join(PROM_DIR, "decant-rules.test.yml");
const SCRAPE = join(PROM_DIR, "prometheus.yml");
const DASHBOARD = join(ROOT, "deploy/grafana/decant-dashboard.json");
const run = promisify(execFile);

type Obj = Record<string, any>;

/** The path of a binary on PATH, or undefined (CI=true makes a missing one an error). */
function tool(name: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    if (process.env.CI === "true" || process.env.CI === "1") throw new Error(`${name} is not installed and CI is set (Debian: apt-get install prometheus)`);
    console.warn(`\n!!! SKIPPING the ${name} checks: ${name} is not installed (Debian: apt-get install prometheus). Set CI=true to make this fail.\n`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// PromQL, read with regular expressions: enough for the selectors, groupings and functions
// these files use.

export interface PromQLUse {
  metrics: Set<string>;
  selectors: { metric: string; labels: string[] }[];
  groupings: string[];
  functions: { fn: string; metric: string }[];
}

export function readPromQL(expr: string): PromQLUse {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  // Metric names: identifiers not followed by "(" once label matchers, groupings and ranges are gone.
  const bare = noStrings
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ");
  const metrics = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(?!\s*\(|[\w:])/g)) {
    if (/^(and|or|unless|bool|offset|inf|nan)$/i.test(m[1]!)) continue;
    metrics.add(m[1]!);
  }
  const selectors: PromQLUse["selectors"] = [];
  for (const m of expr.matchAll(/([a-zA-Z_:][\w:]*)\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}/g)) {
    const labels = [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*"/g)].map((l) => l[1]!);
    selectors.push({ metric: m[1]!, labels });
  }
  const groupings = [...noStrings.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()).filter(Boolean));
  const functions = [...noStrings.matchAll(/\b(rate|irate|increase|delta|idelta|deriv|min_over_time|max_over_time)\(\s*([a-zA-Z_:][\w:]*)/g)].map((m) => ({ fn: m[1]!, metric: m[2]! }));
  return { metrics, selectors, groupings, functions };
}

/** Substitutes Grafana's variables with concrete values, as Grafana would before querying. */
export function grafanaToPromQL(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}|\$__range|\$\{__range\}/g, "1m")
    .replace(/\$\{?job\}?/g, "decant")
    .replace(/\$\{?instance\}?/g, ".*");
}

export function dashboardTargets(dashboard: Obj): { panel: string; expr: string }[] {
  const panels = (dashboard.panels as Obj[]).flatMap((p) => [p, ...((p.panels ?? []) as Obj[])]);
  return panels.flatMap((p) => ((p.targets ?? []) as Obj[]).map((t) => ({ panel: `${p.title} (${t.refId})`, expr: String(t.expr) })));
}

export function ruleList(): Obj[] {
  const doc = parseYaml(readFileSync(RULES, "utf8")) as Obj;
  return (doc.groups as Obj[]).flatMap((g) => g.rules as Obj[]);
}

// The series the sidecar registers: name → type and label names.
async function registered(): Promise<Map<string, { type: string; labels: string[] }>> {
  const m = new Metrics();
  new MigrationMetrics(m.registry);
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const metric of m.registry.getMetricsAsArray() as unknown as { name: string; type: string; labelNames?: string[] }[]) {
    const type = String(metric.type);
    out.set(metric.name, { type, labels: metric.labelNames ?? [] });
    if (type === "histogram") {
      out.set(`${metric.name}_bucket`, { type: "counter", labels: [...(metric.labelNames ?? []), "le"] });
      out.set(`${metric.name}_count`, { type: "counter", labels: metric.labelNames ?? [] });
      out.set(`${metric.name}_sum`, { type: "counter", labels: metric.labelNames ?? [] });
    }
  }
  out.set("up", { type: "gauge", labels: [] });
  return out;
}
// Labels the scrape adds (job, instance; namespace, pod, app from prometheus.yml's relabelling).
const TARGET_LABELS = ["job", "instance", "namespace", "pod", "app"];

// ---------------------------------------------------------------------------------------

describe("deploy: Prometheus rules and scrape config, Grafana dashboard", function () {
  this.timeout(120_000);
  const promtool = tool("promtool");

  describe("promtool", () => {
    if (!promtool) {
      it.skip("needs promtool");
      return;
    }
    it("promtool check rules: the alert rules are valid", async () => {
      const { stdout } = await run(promtool, ["check", "rules", RULES]);
      expect(stdout).to.match(/SUCCESS: \d+ rules found/);
    });

    it("promtool test rules: every unit test passes", async () => {
      const r = await run(promtool, ["test", "rules", RULES_TEST], { cwd: PROM_DIR }).catch((e: { stdout: string; stderr: string }) => e);
      expect(`${r.stdout}${r.stderr}`).to.include("SUCCESS");
      expect(`${r.stdout}${r.stderr}`).to.not.include("FAILED");
    });

    it("promtool check config: the scrape config is valid and loads the rules", async () => {
      const tmp = mkdtempSync(join(tmpdir(), "decant-promcfg-"));
      try {
        let result = await run(promtool, ["check", "config", SCRAPE]).then((r) => ({ ok: true, out: r.stdout + r.stderr }), (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stdout + e.stderr }));
        if (!result.ok && /field kubernetes_sd_configs not found/.test(result.out)) {
          // Debian's Prometheus is built without Kubernetes service discovery: check the rest of
          // the file (relabelling, rule files) with static targets in its place.
          console.warn("\n!!! This promtool has no Kubernetes service discovery (Debian's build): checking prometheus.yml with static_configs in place of kubernetes_sd_configs.\n");
          const text = readFileSync(SCRAPE, "utf8").replace(/kubernetes_sd_configs:\n(\s+)- role: pod/, 'static_configs:\n$1- targets: ["127.0.0.1:9464"]');
          expect(text).to.not.include("kubernetes_sd_configs:");
          writeFileSync(join(tmp, "prometheus.yml"), text);
          copyFileSync(RULES, join(tmp, "decant-rules.yml"));
          result = await run(promtool, ["check", "config", join(tmp, "prometheus.yml")]).then((r) => ({ ok: true, out: r.stdout + r.stderr }), (e: { stdout: string; stderr: string }) => ({ ok: false, out: e.stdout + e.stderr }));
        }
        expect(result.ok, result.out).to.equal(true);
        expect(result.out).to.match(/SUCCESS: \d+ rules found/);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });

  describe("alert rules", () => {
    const rules = ruleList();
    const alerts = rules.filter((r) => r.alert);

    it("alert on the conditions the migration needs watched", () => {
      const exprs = alerts.map((a) => String(a.expr)).join("\n");
      for (const needle of ["decant_secondary_write_failures_total", "decant_repair_journal_depth", "decant_backfill_running", "decant_backfill_items_total", 'decant_verify_items{job="decant", result!="in_sync"}', 'decant_migration_replicas{job="decant", state="pending"}', 'up{job="decant"} == 0', "decant_fail_closed"]) {
        expect(exprs, needle).to.include(needle);
      }
    });

    it("every alert has a severity, a summary and a description", () => {
      for (const a of alerts) {
        expect(["critical", "warning", "info"], `${a.alert} severity`).to.include(a.labels?.severity);
        expect(a.annotations?.summary, `${a.alert} summary`).to.be.a("string").and.not.equal("");
        expect(a.annotations?.description, `${a.alert} description`).to.be.a("string").and.not.equal("");
        expect(String(a.expr), `${a.alert} selects job="decant"`).to.include('job="decant"');
      }
    });

    it("every alert has a unit test where it fires and one where it does not", () => {
      const tests = (parseYaml(readFileSync(RULES_TEST, "utf8")) as Obj).tests as Obj[];
      const cases = tests.flatMap((t) => (t.alert_rule_test ?? []) as Obj[]);
      for (const c of cases) expect(alerts.map((a) => a.alert), `the test names an alert that does not exist: ${c.alertname}`).to.include(c.alertname);
      for (const a of alerts) {
        expect(cases.some((c) => c.alertname === a.alert && (c.exp_alerts ?? []).length > 0), `${a.alert}: a firing case`).to.equal(true);
        expect(cases.some((c) => c.alertname === a.alert && (c.exp_alerts ?? []).length === 0), `${a.alert}: a quiet case`).to.equal(true);
      }
    });
  });

  describe("dashboard", () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Obj;
    const panels = (dashboard.panels as Obj[]).flatMap((p) => [p, ...((p.panels ?? []) as Obj[])]);
    const targets = dashboardTargets(dashboard);

    it("is a Grafana dashboard (schemaVersion 39) with a ${DS_PROMETHEUS} data source variable that every panel and query uses", () => {
      expect(dashboard.schemaVersion).to.equal(39);
      expect(dashboard.uid).to.match(/^[\w-]{1,40}$/);
      expect(dashboard.title).to.be.a("string");
      const ds = (dashboard.templating.list as Obj[]).find((v) => v.name === "DS_PROMETHEUS");
      expect(ds?.type).to.equal("datasource");
      expect(ds?.query).to.equal("prometheus");
      for (const p of panels.filter((p) => p.type !== "row")) {
        expect(p.datasource, p.title).to.deep.equal({ type: "prometheus", uid: "${DS_PROMETHEUS}" });
        for (const t of (p.targets ?? []) as Obj[]) expect(t.datasource, `${p.title} ${t.refId}`).to.deep.equal({ type: "prometheus", uid: "${DS_PROMETHEUS}" });
        expect((p.targets ?? []).length, `${p.title} has queries`).to.be.greaterThan(0);
      }
      // Every other variable a query uses is defined.
      const vars = new Set((dashboard.templating.list as Obj[]).map((v) => v.name as string));
      for (const { panel, expr } of targets) {
        for (const m of expr.matchAll(/\$\{?(\w+)/g)) if (!m[1]!.startsWith("__")) expect(vars.has(m[1]!), `${panel}: $${m[1]}`).to.equal(true);
      }
    });

    it("has unique panel ids and refIds, and panels that do not overlap on the 24-column grid", () => {
      const ids = panels.map((p) => p.id);
      expect(new Set(ids).size).to.equal(ids.length);
      for (const p of panels) {
        const refs = ((p.targets ?? []) as Obj[]).map((t) => t.refId);
        expect(new Set(refs).size, p.title).to.equal(refs.length);
        const g = p.gridPos;
        expect(g.x + g.w, `${p.title} fits in 24 columns`).to.be.at.most(24);
      }
      for (let i = 0; i < panels.length; i++) {
        for (let j = i + 1; j < panels.length; j++) {
          const a = panels[i]!.gridPos;
          const b = panels[j]!.gridPos;
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect(overlap, `${panels[i]!.title} overlaps ${panels[j]!.title}`).to.equal(false);
        }
      }
    });

    it("shows requests, latency, errors, store latency and every migration metric", () => {
      const all = targets.map((t) => t.expr).join("\n");
      expect(all).to.match(/histogram_quantile\(0\.\d+, sum by \(rpc, le\) \(rate\(decant_request_duration_seconds_bucket\{/);
      expect(all).to.match(/histogram_quantile\(0\.\d+, sum by \(store, le\) \(rate\(decant_store_operation_duration_seconds_bucket\{/);
      expect(all).to.match(/sum by \(rpc, code\) \(rate\(decant_requests_total\{[^}]*code!="OK"/);
      expect(all).to.match(/by \(store, le\)/);
      const source = readFileSync(join(ROOT, "src/metrics/migration-metrics.ts"), "utf8");
      const migrationMetrics = [...source.matchAll(/name: "(decant_\w+)"/g)].map((m) => m[1]!);
      expect(migrationMetrics.length).to.be.greaterThan(10);
      const readme = readFileSync(join(ROOT, "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("## Metrics and logs"), readme.indexOf("\n## ", readme.indexOf("## Metrics and logs") + 5));
      const documented = [...section.matchAll(/`(decant_\w+)/g)].map((m) => m[1]!);
      expect(documented.length).to.be.greaterThan(10);
      for (const name of new Set([...migrationMetrics, ...documented])) expect(all, `the dashboard shows ${name}`).to.match(new RegExp(`\\b${name}(_bucket|_count|_sum)?\\b`));
    });
  });

  it("the dashboard and the rules use only metrics and labels the sidecar registers, and rate() only counters", async () => {
    const known = await registered();
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Obj;
    const exprs = [...dashboardTargets(dashboard).map((t) => ({ where: `dashboard: ${t.panel}`, expr: grafanaToPromQL(t.expr) })), ...ruleList().map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: String(r.expr) }))];
    for (const { where, expr } of exprs) {
      const use = readPromQL(expr);
      const names = [...use.metrics];
      expect(names.length, `${where}: no metric found in ${expr}`).to.be.greaterThan(0);
      const labelsInExpr = new Set<string>([...TARGET_LABELS]);
      for (const n of names) {
        expect(known.has(n), `${where}: ${n} is not a metric the sidecar registers`).to.equal(true);
        for (const l of known.get(n)!.labels) labelsInExpr.add(l);
      }
      for (const s of use.selectors) for (const l of s.labels) expect([...TARGET_LABELS, ...(known.get(s.metric)?.labels ?? [])], `${where}: ${s.metric} has no label ${l}`).to.include(l);
      for (const g of use.groupings) expect([...labelsInExpr], `${where}: grouping by ${g}, which none of its metrics has`).to.include(g);
      for (const f of use.functions) {
        const type = known.get(f.metric)?.type;
        if (["rate", "irate", "increase"].includes(f.fn)) expect(type, `${where}: ${f.fn}(${f.metric}) needs a counter`).to.equal("counter");
        if (["delta", "idelta", "deriv"].includes(f.fn)) expect(type, `${where}: ${f.fn}(${f.metric}) needs a gauge`).to.equal("gauge");
      }
    }
  });
});
