// The status page on the metrics port: `/` (and `/status`) is server-rendered HTML that reads
// fine without JavaScript; a small inline script polls `/status.json` every second and updates
// it in place. Three buttons (HTML forms POSTing to /actions/pause, /actions/resume and
// /actions/verify) steer the backfill and run a verification; when an admin token is
// configured they need it. No build step and no external assets.
import { createHash } from "node:crypto";
import { tokenMatches } from "./auth.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { redactUrl } from "../backends/common.js";
import type { Route } from "../metrics/http.js";
import type { Metrics } from "../metrics/metrics.js";
import type { BackfillStatus, MigrationController, MigrationStatus } from "../migration/controller.js";
import { PHASES, type Phase } from "../protocol/phases.js";
import { verify, type VerifyReport } from "../migration/verify.js";
import { describe as describeError } from "../protocol/errors.js";

export interface StatusPageOptions {
  /** Every sidecar has one; without a target there is nothing to steer. */
  controller: MigrationController;
  metrics: Metrics;
  /** When set, every action needs it (form field `token`, or `authorization: Bearer`). */
  adminToken?: string;
}

type Cell = string;

/** What /status.json returns: the raw numbers plus `view`, the texts the page shows. */
export interface StatusSnapshot {
  configured: boolean;
  phase: Phase;
  phases: readonly Phase[];
  active: boolean;
  fence: { pending: string } | null;
  epoch: number;
  current_store: string;
  target_store: string;
  replicas: { id: string; acked_phase: string; acked_epoch: number; age_seconds: number; acknowledged: boolean }[];
  backfill: { state: string; scanned: number; copied: number; skipped: number; estimated_total: number; progress: number; items_per_second: number; runner: string; error: string; segments?: { total: number; done: number; running: number; waiting: number; workers: { id: string; segments: number; items_per_second: number }[] }; eta_seconds?: number | null };
  repair_journal_depth: number;
  last_verify: (Omit<VerifyReport, "sample_keys"> & { sample_keys: string[]; finished_at: string | null; differences: number }) | null;
  verify_running: { checked: number; differences: number; started_at: string } | null;
  requests: { total: number; errors: number; per_second: number | null; errors_per_second: number | null; by_code: Record<string, number>; dynamodb_total: number; dynamodb_per_second: number | null };
  admin_token_required: boolean;
  last_action: { message: string; ok: boolean; at: string } | null;
  generated_at: string;
  view: {
    title: string;
    text: Record<string, string>;
    tables: Record<string, Cell[][]>;
    progress: { value: number; max: number };
    enabled: { pause: boolean; resume: boolean; verify: boolean };
  };
}

/** 1234567 → "1,234,567". Not toLocaleString: it loads ICU's number data, ~7 MB of RSS for the life of the sidecar. */
const fmt = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+$)/g, ",");
const pct = (ratio: number) => `${(ratio * 100).toFixed(1)} %`;
const ago = (seconds: number) => (seconds < 1 ? "just now" : seconds < 120 ? `${seconds.toFixed(0)} s ago` : `${(seconds / 60).toFixed(0)} min ago`);

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** Request counters of the Store service, sampled to derive a rate over the last few seconds. */
class RequestRate {
  private samples: { at: number; total: number; errors: number; dynamodb: number }[] = [];

  constructor(private readonly metrics: Metrics) {}

  async read(): Promise<StatusSnapshot["requests"]> {
    const byCode: Record<string, number> = {};
    let dynamodb = 0; // the DynamoDB-API front's requests (their codes are DynamoDB's error types)
    for (const v of (await this.metrics.requests.get()).values) {
      if (v.labels.front === "dynamodb") {
        dynamodb += v.value;
        continue;
      }
      const rpc = String(v.labels.rpc ?? "");
      if (!rpc.startsWith("Store/")) continue; // client traffic, not the operators' own calls
      const code = String(v.labels.code ?? "UNKNOWN");
      byCode[code] = (byCode[code] ?? 0) + v.value;
    }
    const total = Object.values(byCode).reduce((a, b) => a + b, 0);
    const errors = total - (byCode.OK ?? 0);
    const now = Date.now();
    this.samples.push({ at: now, total, errors, dynamodb });
    // Keep ~10 s; measure against the oldest sample that is at least ~0.8 s old, up to 5 s back.
    this.samples = this.samples.filter((s) => now - s.at <= 10_000);
    const base = this.samples.find((s) => now - s.at <= 5_000 && now - s.at >= 800) ?? this.samples.find((s) => now - s.at >= 800);
    const dt = base ? (now - base.at) / 1000 : 0;
    return {
      total,
      errors,
      per_second: base ? (total - base.total) / dt : null,
      errors_per_second: base ? (errors - base.errors) / dt : null,
      by_code: byCode,
      dynamodb_total: dynamodb,
      dynamodb_per_second: base ? (dynamodb - base.dynamodb) / dt : null,
    };
  }
}

const differences = (r: VerifyReport) => r.missing + r.stale + r.extra;

function backfillSnapshot(b: BackfillStatus | null): StatusSnapshot["backfill"] {
  if (!b) return { state: "idle", scanned: 0, copied: 0, skipped: 0, estimated_total: 0, progress: 0, items_per_second: 0, runner: "", error: "" };
  const total = b.estimatedTotal;
  return {
    state: b.state,
    scanned: b.scanned,
    copied: b.copied,
    skipped: b.skipped,
    estimated_total: total,
    progress: b.state === "done" ? 1 : total > 0 ? Math.min(1, b.scanned / total) : 0,
    items_per_second: b.state === "running" ? b.itemsPerSecond : 0,
    runner: b.runner ?? "",
    error: b.error ?? "",
    segments: { total: b.segmentCount, done: b.segments?.done ?? 0, running: b.segments?.running ?? 0, waiting: b.segments?.waiting ?? 0, workers: (b.segments?.workers ?? []).map((w) => ({ id: w.id, segments: w.segments, items_per_second: w.itemsPerSecond })) },
    eta_seconds: b.segments?.etaSeconds ?? null,
  };
}

function verifySnapshot(v: MigrationStatus["lastVerify"]): StatusSnapshot["last_verify"] {
  if (!v) return null;
  const r = v.report;
  return { ...r, sample_keys: r.sample_keys ?? [], differences: differences(r), finished_at: v.finishedAt ? new Date(v.finishedAt).toISOString() : null };
}

type Snapshot = Omit<StatusSnapshot, "view">;
type Action = "pause" | "resume" | "verify";

/** The texts of the page, computed once here for both the HTML and the polling script. */
export function viewOf(s: Snapshot): StatusSnapshot["view"] {
  const b = s.backfill;
  return {
    title: `Decant — ${s.phase}`,
    text: {
      ...migrationTexts(s),
      ...backfillTexts(b),
      journal: fmt(s.repair_journal_depth),
      "journal-note": s.repair_journal_depth === 0 ? "keys waiting for repair — nothing pending." : "keys waiting for repair (failed secondary writes, retried every heartbeat).",
      ...verifyTexts(s),
      ...requestTexts(s.requests),
      "last-action": s.last_action ? `${s.last_action.message} (${utc(s.last_action.at)})` : "",
      updated: utc(s.generated_at),
    },
    tables: viewTables(s),
    progress: { value: b.state === "done" ? Math.max(1, b.estimated_total, b.scanned) : b.scanned, max: Math.max(1, b.estimated_total, b.scanned) },
    enabled: { pause: s.configured && b.state === "running", resume: s.configured && b.state === "paused", verify: s.configured && s.phase !== "SINGLE" && s.phase !== "COMPLETE" && !s.verify_running },
  };
}

const utc = (iso: string) => `${iso.replace("T", " ").slice(0, 19)} UTC`;

function migrationTexts(s: Snapshot): Record<string, string> {
  const note = !s.configured
    ? "No migration configured: set target (or DECANT_TARGET) on every replica to start one."
    : s.fence
      ? `Write fence: moving the primary to ${s.fence.pending}; writes are held until every replica acknowledges (epoch ${s.epoch}).`
      : s.active
        ? `Active: every live replica acknowledged epoch ${s.epoch}.`
        : `Waiting: not every live replica has acknowledged epoch ${s.epoch} yet.`;
  const replicas = !s.configured ? "No migration configured." : s.replicas.length === 0 ? "No live replicas." : `${s.replicas.filter((r) => r.acknowledged).length} of ${s.replicas.length} live replicas acknowledged epoch ${s.epoch}.`;
  return {
    stores: s.configured ? `${s.current_store} → ${s.target_store}` : `${s.current_store} — no migration configured (no target)`,
    "phase-now": s.phase,
    "phase-note": note,
    "replicas-note": replicas,
  };
}

const STATE_WORDS: Record<string, string> = { idle: "not started", running: "running", paused: "paused", done: "done", failed: "failed" };

function backfillTexts(b: StatusSnapshot["backfill"]): Record<string, string> {
  return {
    "bf-state": STATE_WORDS[b.state] ?? b.state,
    "bf-label": b.state === "idle" ? "not started" : `${fmt(b.scanned)} of ${fmt(Math.max(b.estimated_total, b.scanned))} items (${pct(b.progress)})`,
    "bf-rate": b.state === "running" ? `${fmt(b.items_per_second)} items/s` : "—",
    "bf-copied": `${fmt(b.copied)} copied, ${fmt(b.skipped)} skipped (target already newer)`,
    "bf-runner": b.runner || "—",
    "bf-error": b.error || "none",
    "bf-segments": segmentsText(b.segments),
    "bf-eta": b.state !== "running" || b.eta_seconds === null || b.eta_seconds === undefined ? "—" : `about ${fmt(Math.ceil(b.eta_seconds))} s at the merged rate`,
  };
}

function segmentsText(sg: StatusSnapshot["backfill"]["segments"]): string {
  if (!sg || sg.total === 0) return "—";
  const workers = sg.workers.map((w) => `${w.id}: ${w.segments} at ${fmt(w.items_per_second)} items/s`).join(", ");
  return `${fmt(sg.done)} done, ${fmt(sg.running)} running, ${fmt(sg.waiting)} waiting of ${fmt(sg.total)}${workers ? `; ${workers}` : ""}`;
}

function verifyTexts(s: Snapshot): Record<string, string> {
  const v = s.last_verify;
  const summary = !v
    ? "No verification has run yet."
    : `${v.differences === 0 ? "Equal" : `${fmt(v.differences)} differences`}: ${fmt(v.checked)} keys checked, ${fmt(v.in_sync)} in sync, ${fmt(v.missing)} missing, ${fmt(v.stale)} stale, ${fmt(v.extra)} extra${v.finished_at ? ` (finished ${utc(v.finished_at)})` : ""}.`;
  const running = s.verify_running ? `A verification is running: ${fmt(s.verify_running.checked)} keys checked so far, ${fmt(s.verify_running.differences)} differences.` : "";
  return { "verify-summary": summary, "verify-running": running };
}

function requestTexts(r: StatusSnapshot["requests"]): Record<string, string> {
  const rate = (n: number | null, what: string) => (n === null ? "measuring…" : `${n.toFixed(1)} ${what}`);
  return {
    "req-rate": rate(r.per_second, "requests/s"),
    "req-errors-rate": rate(r.errors_per_second, "errors/s"),
    "req-total": fmt(r.total),
    "ddb-rate": r.dynamodb_per_second === null ? "measuring…" : `${rate(r.dynamodb_per_second, "requests/s")} (${fmt(r.dynamodb_total)} in all)`,
    "req-errors": fmt(r.errors),
  };
}

function viewTables(s: Snapshot): StatusSnapshot["view"]["tables"] {
  const codes = Object.entries(s.requests.by_code).sort(([a], [b]) => (a === "OK" ? -1 : b === "OK" ? 1 : a < b ? -1 : 1));
  return {
    "replica-rows": s.replicas.map((x) => [x.id, x.acked_phase, String(x.acked_epoch), x.acknowledged ? "yes" : "not yet", ago(x.age_seconds)]),
    "code-rows": codes.length ? codes.map(([code, n]) => [code, fmt(n)]) : [["(no requests yet)", "0"]],
    "sample-rows": (s.last_verify?.sample_keys ?? []).slice(0, 10).map((k) => [k]),
  };
}

export class StatusPage {
  private readonly rate: RequestRate;
  private lastAction: StatusSnapshot["last_action"] = null;
  private verifying: { report: VerifyReport; startedAt: number } | null = null;

  constructor(private readonly o: StatusPageOptions) {
    this.rate = new RequestRate(o.metrics);
  }

  /** The routes to register on the metrics port. */
  routes(): Route[] {
    return [(req, res) => this.handle(req, res)];
  }

  private note(message: string, ok = true): void {
    this.lastAction = { message, ok, at: new Date().toISOString() };
  }

  async snapshot(): Promise<StatusSnapshot> {
    const [st, requests] = await Promise.all([this.o.controller.status(), this.rate.read()]);
    const s: Omit<StatusSnapshot, "view"> = {
      configured: st.hasTarget,
      phase: st.phase,
      phases: PHASES,
      active: st.active,
      fence: st.fence,
      epoch: st.epoch,
      current_store: redactUrl(st.currentStore),
      target_store: st.targetStore ? redactUrl(st.targetStore) : "",
      replicas: st.replicas.map((r) => ({ id: r.id, acked_phase: r.phase, acked_epoch: Math.max(0, r.epoch), age_seconds: r.ageSeconds, acknowledged: r.acknowledged })),
      backfill: backfillSnapshot(st.backfill),
      repair_journal_depth: st.journalDepth,
      last_verify: verifySnapshot(st.lastVerify),
      verify_running: this.verifying
        ? { checked: this.verifying.report.checked, differences: differences(this.verifying.report), started_at: new Date(this.verifying.startedAt).toISOString() }
        : null,
      requests,
      admin_token_required: Boolean(this.o.adminToken),
      last_action: this.lastAction,
      generated_at: new Date().toISOString(),
    };
    return { ...s, view: viewOf(s) };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path === "/" || path === "/status" || path === "/status.json") return this.page(req, res, path);
    const action = /^\/actions\/(pause|resume|verify)$/.exec(path)?.[1];
    return action ? this.action(req, res, action as Action) : false;
  }

  private async page(req: IncomingMessage, res: ServerResponse, path: string): Promise<true> {
    if (req.method !== "GET" && req.method !== "HEAD") return this.send(res, 405, "text/plain", "use GET\n", { allow: "GET, HEAD" });
    const snap = await this.snapshot();
    if (path === "/status.json") return this.send(res, 200, "application/json", `${JSON.stringify(snap, null, 2)}\n`, { "cache-control": "no-store" }, req.method === "HEAD");
    return this.send(res, 200, "text/html; charset=utf-8", renderPage(snap), { "cache-control": "no-store", "content-security-policy": CSP }, req.method === "HEAD");
  }

  /** A button: checked (method, origin, size, token), then done, then back to the page (303). */
  private async action(req: IncomingMessage, res: ServerResponse, action: Action): Promise<true> {
    if (req.method !== "POST") return this.send(res, 405, "text/plain", "actions take POST (use the buttons on /)\n", { allow: "POST" });
    // A form on another site must not steer the migration (when no token protects it).
    const origin = req.headers.origin;
    if (origin && origin !== "null" && new URL(origin).host !== req.headers.host) return this.problem(res, 403, "Forbidden", "This action came from another site's page; use the buttons on this status page.");
    const body = await readBody(req, 8192).catch(() => null);
    if (body === null) return this.problem(res, 413, "Request too large", "The form data is larger than expected.");
    const refusal = this.tokenRefusal(req, body);
    if (refusal) return this.problem(res, 401, "Admin token required", refusal);
    const c = this.o.controller;
    if (!c.target) return this.problem(res, 409, "No migration configured", "There is no migration target configured on this sidecar, so there is no backfill to pause or resume and nothing to verify.");
    try {
      if (action === "verify" && this.verifying) return this.problem(res, 409, "A verification is already running", "Wait for it to finish; its progress is on the status page.");
      await this.run(c, action);
    } catch (err) {
      this.note(`${action} failed: ${describeError(err)}`, false);
      return this.problem(res, 409, `Could not ${action === "verify" ? "start the verification" : `${action} the backfill`}`, describeError(err));
    }
    res.writeHead(303, { location: "/", "content-type": "text/plain" }).end("see /\n");
    return true;
  }

  /** Why the request may not act (no or a wrong admin token), or undefined. */
  private tokenRefusal(req: IncomingMessage, body: string): string | undefined {
    if (!this.o.adminToken) return undefined;
    const header = String(req.headers.authorization ?? "");
    const given = /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, "") : (new URLSearchParams(body).get("token") ?? undefined);
    if (tokenMatches(given, this.o.adminToken)) return undefined;
    return given
      ? "The admin token is wrong. Go back, enter the admin token configured for this sidecar (admin_token_file or DECANT_ADMIN_TOKEN) and try again."
      : "This sidecar has an admin token configured: enter it in the “Admin token” field next to the buttons and try again.";
  }

  private async run(c: MigrationController, action: Action): Promise<void> {
    if (action === "verify") {
      this.startVerify(c);
      this.note("Verification started.");
      return;
    }
    await c.backfill.setPaused(action === "pause");
    this.note(action === "pause" ? "Backfill paused." : "Backfill resumed.");
  }

  private startVerify(c: MigrationController): void {
    const startedAt = Date.now();
    this.verifying = { startedAt, report: { checked: 0, in_sync: 0, missing: 0, stale: 0, extra: 0, repaired: 0, done: false, sample_keys: [] } };
    verify(c, { repair: false, onProgress: (r) => this.verifying && (this.verifying.report = r) }).then(
      (r) => {
        const diffs = differences(r);
        this.note(`Verification finished: ${fmt(r.checked)} keys checked, ${diffs === 0 ? "the stores are equal" : `${fmt(diffs)} differences`}.`, diffs === 0);
      },
      (err) => this.note(`Verification failed: ${describeError(err)}`, false),
    ).finally(() => {
      this.verifying = null;
    });
  }

  private send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}, headOnly = false): true {
    res.writeHead(status, { "content-type": type, "x-content-type-options": "nosniff", ...headers });
    res.end(headOnly ? undefined : body);
    return true;
  }

  private problem(res: ServerResponse, status: number, title: string, message: string): true {
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)} — Decant</title><style>${STYLE}</style></head>
<body><main><h1>${escapeHtml(title)}</h1><p role="alert" class="problem">${escapeHtml(message)}</p><p><a href="/">Back to the status page</a></p></main></body></html>
`;
    return this.send(res, status, "text/html; charset=utf-8", html, { "content-security-policy": CSP });
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error("too large"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** The status page's routes for the metrics port. */
export function statusPageRoutes(options: StatusPageOptions): Route[] {
  return new StatusPage(options).routes();
}

// Dark text on white and white on dark blue: contrast well above WCAG AA (4.5:1).
const STYLE = `
:root{color-scheme:light;--fg:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--accent:#0b3d91;--ok:#0f5d2a;--bad:#9b1c1c;--bg:#fff;--panel:#f4f6f9}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(24rem,1fr));gap:0 1rem}
section.wide{grid-column:1/-1}
header{padding-top:1rem}
h1{font-size:1.6rem;margin:.5rem 0 .25rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
section{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;margin:.5rem 0}
.muted{color:var(--muted)}
ol.phases{list-style:none;display:flex;flex-wrap:wrap;gap:.35rem;padding:0;margin:.25rem 0 .5rem}
ol.phases li{border:2px solid var(--line);border-radius:4px;padding:.2rem .6rem;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9rem;background:#fff}
ol.phases li.done{border-color:var(--ok);color:var(--ok)}
ol.phases li.done::before{content:"✓ "}
ol.phases li.current{background:var(--accent);border-color:var(--accent);color:#fff;font-weight:700}
ol.phases li.current::before{content:"▶ "}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:left}
thead th{background:#e6eaf0}
progress{width:100%;height:1.4rem;accent-color:var(--accent)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0 0}
dt{font-weight:600}
dd{margin:0}
.big{font-size:1.4rem;font-weight:700}
form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end}
label.field{display:flex;flex-direction:column;font-weight:600}
input{font:inherit;padding:.3rem .5rem;border:1px solid #767676;border-radius:4px}
button{font:inherit;padding:.4rem .9rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button:disabled{background:#e6e6e6;color:#4a4a4a;border-color:#9a9a9a;cursor:not-allowed}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
a{color:var(--accent)}
.problem{color:var(--bad);font-weight:600}
.ok{color:var(--ok);font-weight:600}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`;

// The polling script: it only copies texts computed by the server (view) into the page.
const SCRIPT = `
(function () {
  "use strict";
  var phases = null;
  function byId(id) { return document.getElementById(id); }
  function setText(id, text) { var el = byId(id); if (el && el.textContent !== text) el.textContent = text; }
  function fillRows(id, rows) {
    var body = byId(id);
    if (!body) return;
    var next = document.createElement("tbody");
    next.id = id;
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (cell, i) {
        var td = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) td.setAttribute("scope", "row");
        td.textContent = cell;
        tr.appendChild(td);
      });
      next.appendChild(tr);
    });
    if (next.innerHTML !== body.innerHTML) body.replaceWith(next);
  }
  function render(s) {
    var v = s.view;
    document.title = v.title;
    Object.keys(v.text).forEach(function (id) { setText(id, v.text[id]); });
    Object.keys(v.tables).forEach(function (id) { fillRows(id, v.tables[id]); });
    var samples = byId("sample-table");
    if (samples) samples.hidden = v.tables["sample-rows"].length === 0;
    var bar = byId("bf-progress");
    if (bar) { bar.max = v.progress.max; bar.value = v.progress.value; bar.textContent = v.text["bf-label"]; }
    var now = s.phases.indexOf(s.phase);
    phases = phases || document.querySelectorAll("ol.phases li");
    Array.prototype.forEach.call(phases, function (li, i) {
      li.className = i < now ? "done" : i === now ? "current" : "todo";
      if (i === now) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
    });
    ["pause", "resume", "verify"].forEach(function (a) { var b = byId("do-" + a); if (b) b.disabled = !v.enabled[a]; });
    var la = byId("last-action");
    if (la) la.className = s.last_action && !s.last_action.ok ? "problem" : "ok";
    setText("conn", "");
  }
  function poll() {
    fetch("/status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(render)
      .catch(function (e) { setText("conn", "Cannot reach the sidecar (" + e.message + "); retrying every second."); })
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
`;

const sha = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;
const CSP = `default-src 'none'; script-src ${sha(SCRIPT)}; style-src ${sha(STYLE)}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

function rows(id: string, cells: Cell[][]): string {
  return `<tbody id="${id}">${cells.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeHtml(c)}</th>` : `<td>${escapeHtml(c)}</td>`)).join("")}</tr>`).join("")}</tbody>`;
}

/** One element holding a text of the view (the script updates it by id). */
type Text = (id: string, tag?: string, cls?: string) => string;

const textOf = (v: StatusSnapshot["view"]): Text => (id, tag = "span", cls = "") => `<${tag} id="${id}"${cls ? ` class="${cls}"` : ""}>${escapeHtml(v.text[id] ?? "")}</${tag}>`;

export function renderPage(s: StatusSnapshot): string {
  const v = s.view;
  const t = textOf(v);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(v.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Decant migration status</h1>
<p class="muted">${t("stores")}</p>
<p id="conn" role="status" class="problem"></p>
</header>
<main>
${phaseSection(s, t)}
${replicaSection(v, t)}
${backfillSection(v, t)}
${journalSection(v, t)}
${verifySection(v, t)}
${requestSection(v, t)}
${actionSection(s)}
</main>
<footer><p class="muted">Updated ${t("updated")}. With JavaScript this page refreshes every second; without it, reload. Raw data: <a href="/status.json">/status.json</a>, <a href="/metrics">/metrics</a>.</p></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function phaseSection(s: StatusSnapshot, t: Text): string {
  const now = PHASES.indexOf(s.phase);
  const phaseItems = PHASES.map((p, i) => `<li class="${i < now ? "done" : i === now ? "current" : "todo"}"${i === now ? ' aria-current="step"' : ""}>${p}</li>`).join("");
  return `<section class="wide" aria-labelledby="h-phase">
<h2 id="h-phase">Phase: ${t("phase-now")}</h2>
<ol class="phases" aria-label="Migration phases, in order">${phaseItems}</ol>
${t("phase-note", "p")}
</section>`;
}

function replicaSection(v: StatusSnapshot["view"], t: Text): string {
  return `<section class="wide" aria-labelledby="h-replicas">
<h2 id="h-replicas">Replicas</h2>
${t("replicas-note", "p")}
<table>
<caption class="sr">Live replicas and the phase each acknowledged</caption>
<thead><tr><th scope="col">Replica</th><th scope="col">Acknowledged phase</th><th scope="col">Acknowledged epoch</th><th scope="col">Current epoch acknowledged?</th><th scope="col">Last heartbeat</th></tr></thead>
${rows("replica-rows", v.tables["replica-rows"] ?? [])}
</table>
</section>`;
}

function backfillSection(v: StatusSnapshot["view"], t: Text): string {
  return `<section aria-labelledby="h-backfill">
<h2 id="h-backfill">Backfill</h2>
<label for="bf-progress">Backfill progress: ${t("bf-label")}</label>
<progress id="bf-progress" max="${v.progress.max}" value="${v.progress.value}">${escapeHtml(v.text["bf-label"] ?? "")}</progress>
<dl>
<dt>State</dt><dd>${t("bf-state")}</dd>
<dt>Rate</dt><dd>${t("bf-rate")}</dd>
<dt>Items</dt><dd>${t("bf-copied")}</dd>
<dt>Runner</dt><dd>${t("bf-runner")}</dd>
<dt>Segments</dt><dd>${t("bf-segments")}</dd>
<dt>Time left</dt><dd>${t("bf-eta")}</dd>
<dt>Last error</dt><dd>${t("bf-error")}</dd>
</dl>
</section>`;
}

function journalSection(v: StatusSnapshot["view"], t: Text): string {
  return `<section aria-labelledby="h-journal">
<h2 id="h-journal">Repair journal</h2>
<p><span id="journal" class="big">${escapeHtml(v.text["journal"] ?? "0")}</span> ${t("journal-note")}</p>
</section>`;
}

function verifySection(v: StatusSnapshot["view"], t: Text): string {
  const samples = v.tables["sample-rows"] ?? [];
  return `<section aria-labelledby="h-verify">
<h2 id="h-verify">Last verification</h2>
${t("verify-summary", "p")}
${t("verify-running", "p")}
<table id="sample-table"${samples.length ? "" : " hidden"}>
<caption class="sr">Sample of differing keys from the last verification</caption>
<thead><tr><th scope="col">Differing keys (sample)</th></tr></thead>
${rows("sample-rows", samples)}
</table>
</section>`;
}

function requestSection(v: StatusSnapshot["view"], t: Text): string {
  return `<section aria-labelledby="h-requests">
<h2 id="h-requests">Requests</h2>
<dl>
<dt>Rate</dt><dd>${t("req-rate")}</dd>
<dt>Errors</dt><dd>${t("req-errors-rate")}</dd>
<dt>Total</dt><dd>${t("req-total")} requests, ${t("req-errors")} not OK</dd>
<dt>DynamoDB API</dt><dd>${t("ddb-rate")}</dd>
</dl>
<table>
<caption class="sr">Store requests by gRPC status code</caption>
<thead><tr><th scope="col">Status code</th><th scope="col">Requests</th></tr></thead>
${rows("code-rows", v.tables["code-rows"] ?? [])}
</table>
</section>`;
}

function actionSection(s: StatusSnapshot): string {
  return `<section class="wide" aria-labelledby="h-actions">
<h2 id="h-actions">Actions</h2>
<p id="last-action" role="status" class="${s.last_action && !s.last_action.ok ? "problem" : "ok"}">${escapeHtml(s.view.text["last-action"] ?? "")}</p>
${actionForm(s)}
</section>`;
}

/** The buttons (one form, a formaction each), or why there are none. */
function actionForm(s: StatusSnapshot): string {
  if (!s.configured) return `<p>No migration configured: there is nothing to pause, resume or verify.</p>`;
  const enabled = s.view.enabled;
  const disabled = (a: keyof typeof enabled) => (enabled[a] ? "" : " disabled");
  return `<form method="post" action="/actions/pause">
${s.admin_token_required ? `<label class="field" for="token">Admin token <input id="token" name="token" type="password" autocomplete="off" required aria-describedby="token-help"></label>` : ""}
<button id="do-pause" type="submit" formaction="/actions/pause"${disabled("pause")}>Pause backfill</button>
<button id="do-resume" type="submit" formaction="/actions/resume"${disabled("resume")}>Resume backfill</button>
<button id="do-verify" type="submit" formaction="/actions/verify"${disabled("verify")}>Run verification</button>
</form>
<p id="token-help" class="muted">${s.admin_token_required ? "These actions need the admin token configured for this sidecar." : "No admin token is configured: anyone who can reach this port can use these buttons."} Phase changes stay with <code>decant migrate phase</code>.</p>`;
}
