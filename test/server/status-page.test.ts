// The status page on the metrics port: plain HTTP (what the server renders, /status.json, the
// actions with and without the admin token), then a real browser (Debian chromium through
// playwright-core) watching a backfill move and pausing it.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { openStore } from "../../src/backends/index.js";
import type { WriteOp } from "../../src/protocol/types.js";
import type { StatusSnapshot } from "../../src/server/status-page.js";
import { waitFor } from "../support/migration.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;

const FAST = { DECANT_HEARTBEAT_MS: "50", DECANT_LEASE_MS: "1000", DECANT_REPLICA_TTL_MS: "2000", DECANT_FENCE_TIMEOUT_MS: "5000", DECANT_BACKFILL_LEASE_MS: "1000" };
const ROOT = new URL("../../", import.meta.url).pathname;
const TOKEN = "s3cret-admin-token";

async function preload(url: string, count: number): Promise<void> {
  const store = await openStore(url);
  try {
    for (let i = 0; i < count; i += 1000) {
      const ops: WriteOp[] = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) ops.push({ type: "put", key: `k${String(j).padStart(6, "0")}`, value: Buffer.from(`value ${j}`) });
      await store.batchWrite("users", ops);
    }
    for (let j = 0; j < count; j += 50) await store.delete("users", `k${String(j).padStart(6, "0")}`);
  } finally {
    await store.close();
  }
}

/** A sidecar migrating between two fresh SQLite files, with `items` preloaded. */
async function migratingSidecar(items: number, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "decant-status-"));
  const current = `sqlite:${join(dir, "current.db")}`;
  await preload(current, items);
  const s = await startTestSidecar({ DECANT_CURRENT: current, DECANT_TARGET: `sqlite:${join(dir, "target.db")}`, ...FAST, ...env }, { client: { token: env.DECANT_ADMIN_TOKEN } });
  return {
    s,
    base: `http://127.0.0.1:${s.sidecar.metricsPort}`,
    async stop() {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const json = async (base: string): Promise<StatusSnapshot> => (await (await fetch(`${base}/status.json`)).json()) as StatusSnapshot;
const post = (base: string, action: string, body: Record<string, string> = {}, headers: Record<string, string> = {}) =>
  fetch(`${base}/actions/${action}`, { method: "POST", redirect: "manual", body: new URLSearchParams(body), headers });

async function toDualWrite(s: Running): Promise<void> {
  await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: false });
  await waitFor(async () => (await s.client.call("migration", "GetStatus", {})).active, "DUAL_WRITE active");
}

describe("status page", function () {
  this.timeout(120_000);

  describe("without a migration target", () => {
    let s: Running;
    let base: string;
    before(async () => {
      s = await startTestSidecar();
      base = `http://127.0.0.1:${s.sidecar.metricsPort}`;
    });
    after(() => s?.stop());

    it("serves an accessible page at / and /status saying no migration is configured, phase SINGLE", async () => {
      for (const path of ["/", "/status"]) {
        const res = await fetch(base + path);
        expect(res.status).to.equal(200);
        expect(res.headers.get("content-type")).to.match(/^text\/html/);
        expect(res.headers.get("content-security-policy")).to.include("script-src 'sha256-");
        const html = await res.text();
        expect(html).to.include('<html lang="en">');
        expect(html).to.match(/<h1>Decant migration status<\/h1>/);
        expect(html).to.include("no migration configured");
        expect(html).to.match(/<li class="current" aria-current="step">SINGLE<\/li>/);
        for (const p of ["DUAL_WRITE", "SHADOW_READ", "READ_TARGET", "TARGET_PRIMARY", "COMPLETE"]) expect(html).to.include(`>${p}</li>`);
        expect(html).to.include('<label for="bf-progress">');
        expect(html).to.include("<progress");
        expect(html).not.to.include("<form"); // nothing to steer
      }
    });

    it("serves /status.json with phase SINGLE and the request counters", async () => {
      await s.client.put("users", "a", Buffer.from("1"));
      await s.client.get("users", "missing");
      await s.client.put("users", "a", Buffer.from("2"), { expected_version: "9" }).catch(() => undefined);
      const res = await fetch(`${base}/status.json`);
      expect(res.headers.get("content-type")).to.equal("application/json");
      const j = (await res.json()) as StatusSnapshot;
      expect(j.configured).to.equal(false);
      expect(j.phase).to.equal("SINGLE");
      expect(j.phases).to.have.length(6);
      expect(j.requests.by_code.OK).to.equal(2);
      expect(j.requests.by_code.FAILED_PRECONDITION).to.equal(1);
      expect(j.requests.total).to.equal(3);
      expect(j.requests.errors).to.equal(1);
      // The rate needs a sample at least 0.8 s old: wait until there is one, not for a fixed time.
      await waitFor(async () => (await json(base)).requests.per_second !== null, "a request rate", 10_000);
      expect((await json(base)).requests.per_second).to.be.a("number");
    });

    it("refuses actions with 409 (nothing to do), GET on actions with 405, and unknown paths with 404", async () => {
      const res = await post(base, "pause");
      expect(res.status).to.equal(409);
      expect(await res.text()).to.include("No migration configured");
      expect((await fetch(`${base}/actions/pause`)).status).to.equal(405);
      expect((await fetch(`${base}/nope`)).status).to.equal(404);
      expect((await fetch(`${base}/metrics`)).status).to.equal(200);
    });

  });

  describe("with a control store of its own (DECANT_CONTROL)", () => {
    // The phase record lives in the control store, not in the current store: a sidecar without
    // a target must show the phase the control store holds (it refuses writes in it).
    let dir: string;
    let migrating: Running;
    let plain: Running;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "decant-status-control-"));
      const stores = { DECANT_CURRENT: `sqlite:${join(dir, "current.db")}`, DECANT_CONTROL: `sqlite:${join(dir, "control.db")}`, ...FAST };
      migrating = await startTestSidecar({ ...stores, DECANT_TARGET: `sqlite:${join(dir, "target.db")}`, DECANT_REPLICA_ID: "with-target" });
      plain = await startTestSidecar({ ...stores, DECANT_REPLICA_ID: "without-target" });
      await migrating.client.call("migration", "SetPhase", { phase: "DUAL_WRITE", force: false });
    });
    after(async () => {
      await plain?.stop();
      await migrating?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("shows the phase of the control store on a sidecar without a target, and its replicas", async () => {
      const base = `http://127.0.0.1:${plain.sidecar.metricsPort}`;
      expect((await json(base)).phase).to.equal("DUAL_WRITE");
      await waitFor(async () => (await json(base)).replicas.length === 2, "both replicas listed");
      const j = await json(base);
      expect(j.configured).to.equal(false);
      expect(j.phase).to.equal("DUAL_WRITE");
      expect(j.active).to.equal(false); // the replica without a target cannot acknowledge it
      expect(j.replicas.find((r) => r.id === "without-target")).to.include({ acknowledged: false });
      expect((await plain.client.call("migration", "GetStatus", {})).phase).to.equal("DUAL_WRITE");
      const html = await (await fetch(base)).text();
      expect(html).to.match(/<li class="current" aria-current="step">DUAL_WRITE<\/li>/);
    });
  });

  describe("during a migration, with an admin token", () => {
    let m: Awaited<ReturnType<typeof migratingSidecar>>;
    before(async () => {
      m = await migratingSidecar(600, { DECANT_ADMIN_TOKEN: TOKEN, DECANT_REPLICA_ID: "pod-<1>" });
    });
    after(() => m?.stop());

    it("shows the phases, the replicas and what each acknowledged", async () => {
      await toDualWrite(m.s);
      const html = await (await fetch(m.base)).text();
      expect(html).to.match(/<li class="done">SINGLE<\/li><li class="current" aria-current="step">DUAL_WRITE<\/li><li class="todo">SHADOW_READ<\/li>/);
      expect(html).to.include("<th scope=\"row\">pod-&lt;1&gt;</th><td>DUAL_WRITE</td>");
      expect(html).to.include('<input id="token" name="token" type="password"');
      const j = await json(m.base);
      expect(j.configured).to.equal(true);
      expect(j.phase).to.equal("DUAL_WRITE");
      expect(j.active).to.equal(true);
      expect(j.replicas).to.have.length(1);
      expect(j.replicas[0]).to.include({ id: "pod-<1>", acked_phase: "DUAL_WRITE", acknowledged: true });
      expect(j.admin_token_required).to.equal(true);
      expect(j.backfill.state).to.equal("idle");
      expect(j.repair_journal_depth).to.equal(0);
      expect(j.last_verify).to.equal(null);
    });

    it("pause/resume need the token: missing or wrong is 401 with a clear message; right is 303 back to /", async () => {
      await m.s.client.call("migration", "StartBackfill", { rate_limit: 60, concurrency: 1 }); // ~10 s for 600 items
      await waitFor(async () => (await json(m.base)).backfill.state === "running", "backfill running");

      const missing = await post(m.base, "pause");
      expect(missing.status).to.equal(401);
      const missingText = await missing.text();
      expect(missingText).to.include("Admin token required");
      expect(missingText).to.include("enter it in the “Admin token” field");
      const wrong = await post(m.base, "pause", { token: "guess" });
      expect(wrong.status).to.equal(401);
      expect(await wrong.text()).to.include("The admin token is wrong");
      const wrongLength = await post(m.base, "pause", { token: `${TOKEN}x` });
      expect(wrongLength.status).to.equal(401);
      expect((await json(m.base)).backfill.state).to.equal("running");

      const ok = await post(m.base, "pause", { token: TOKEN });
      expect(ok.status).to.equal(303);
      expect(ok.headers.get("location")).to.equal("/");
      let j = await json(m.base);
      expect(j.backfill.state).to.equal("paused");
      expect(j.last_action?.message).to.equal("Backfill paused.");
      expect(await (await fetch(m.base)).text()).to.include('<span id="bf-state">paused</span>');

      // The same token as a bearer header works too (for curl).
      const resumed = await post(m.base, "resume", {}, { authorization: `Bearer ${TOKEN}` });
      expect(resumed.status).to.equal(303);
      j = await json(m.base);
      expect(j.backfill.state).to.be.oneOf(["running", "done"]);
      // Pausing twice, or resuming twice, is not an error.
      await post(m.base, "pause", { token: TOKEN });
      const again = await post(m.base, "pause", { token: TOKEN });
      expect(again.status).to.equal(303); // already paused: nothing to do, fine
      await post(m.base, "resume", { token: TOKEN });
      const twice = await post(m.base, "resume", { token: TOKEN });
      expect(twice.status).to.equal(303);
    });

    it("refuses an action posted from another site's page", async () => {
      const res = await post(m.base, "pause", { token: TOKEN }, { origin: "http://evil.example" });
      expect(res.status).to.equal(403);
    });

    it("runs a verification from the button and shows its result", async () => {
      await waitFor(async () => (await json(m.base)).backfill.state === "done", "backfill done", 60_000);
      const done = await json(m.base);
      expect(done.backfill.progress).to.equal(1);
      expect(done.view.progress.value).to.equal(done.view.progress.max);
      expect((await post(m.base, "verify")).status).to.equal(401);
      const res = await post(m.base, "verify", { token: TOKEN });
      expect(res.status).to.equal(303);
      await waitFor(async () => {
        const j = await json(m.base);
        return j.verify_running === null && j.last_verify !== null;
      }, "verification finished");
      const j = await json(m.base);
      expect(j.last_verify).to.include({ done: true, missing: 0, stale: 0, extra: 0, differences: 0 });
      expect(j.last_verify!.checked).to.be.greaterThan(500);
      expect(j.last_action?.message).to.match(/^Verification finished: .* the stores are equal\.$/);
      const html = await (await fetch(m.base)).text();
      expect(html).to.match(/<p id="verify-summary">Equal: [\d,]+ keys checked/);
      // A finished backfill cannot be paused: 409 with the reason.
      const refused = await post(m.base, "pause", { token: TOKEN });
      expect(refused.status).to.equal(409);
      expect(await refused.text()).to.include("the backfill is done");
    });
  });

  describe("in a browser (Debian chromium)", () => {
    const CHROMIUM = "/usr/bin/chromium";
    let m: Awaited<ReturnType<typeof migratingSidecar>> | undefined;
    after(() => m?.stop());

    it("shows the backfill moving, pauses it from the button, and saves a screenshot", async function () {
      if (!existsSync(CHROMIUM)) {
        if (process.env.CI === "true") throw new Error(`${CHROMIUM} is missing (apt-get install chromium); CI must run the browser test`);
        console.log(`\n  !!! SKIPPING the status page browser test: ${CHROMIUM} is missing (apt-get install chromium) !!!\n`);
        this.skip();
      }
      const { chromium } = await import("playwright-core");
      m = await migratingSidecar(20_000, { DECANT_ADMIN_TOKEN: TOKEN, DECANT_REPLICA_ID: "checkout-7f9c" });
      const s = m.s;
      // A little live traffic, so the request panel has numbers.
      let stop = false;
      const traffic = (async () => {
        for (let n = 0; !stop; n++) {
          await s.client.put("users", `live${n % 200}`, Buffer.from(`v${n}`)).catch(() => undefined);
          await s.client.get("users", `live${(n * 7) % 200}`).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
      });
      try {
        await toDualWrite(s);
        await s.client.call("migration", "StartBackfill", { rate_limit: 1500, concurrency: 2 }); // ~13 s for 20k items
        const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
        const cspErrors: string[] = [];
        page.on("console", (msg) => {
          if (msg.type() === "error") cspErrors.push(msg.text());
        });
        await page.goto(m.base);
        expect(await page.getAttribute("html", "lang")).to.equal("en");
        expect(await page.textContent("ol.phases li[aria-current=step]")).to.equal("DUAL_WRITE");
        const progress = () => page.$eval("#bf-progress", (el) => (el as HTMLProgressElement).value);
        await page.waitForFunction(() => (document.getElementById("bf-progress") as HTMLProgressElement).value > 0, undefined, { timeout: 20_000 });
        const first = await progress();
        const firstLabel = await page.textContent("#bf-label");
        // No reload: the inline script polls /status.json every second.
        await page.waitForFunction((v) => (document.getElementById("bf-progress") as HTMLProgressElement).value > v, first, { timeout: 10_000 });
        const second = await progress();
        expect(second).to.be.greaterThan(first);
        expect(await page.textContent("#bf-label")).not.to.equal(firstLabel);
        expect(second).to.be.lessThan(20_000); // still running: the pause below means something
        expect(await page.textContent("#bf-state")).to.equal("running");

        await page.fill("#token", TOKEN);
        await Promise.all([page.waitForURL(`${m.base}/`), page.click("#do-pause")]);
        await page.waitForFunction(() => document.getElementById("bf-state")?.textContent === "paused", undefined, { timeout: 10_000 }).catch(async (err: Error) => {
          throw new Error(`${err.message}\npage at ${page.url()}:\n${(await page.textContent("body"))?.replace(/\s+/g, " ").slice(0, 1500)}`);
        });
        expect(await page.textContent("#last-action")).to.include("Backfill paused.");
        expect(await page.isDisabled("#do-pause")).to.equal(true);
        expect(await page.isEnabled("#do-resume")).to.equal(true);
        // The round in flight when the pause landed still checkpoints; after that nothing moves.
        await page.waitForTimeout(1500);
        const pausedAt = await progress();
        await page.waitForTimeout(1500); // a poll or two
        expect(await progress()).to.equal(pausedAt);
        expect((await json(m.base)).backfill.state).to.equal("paused");
        expect(cspErrors, cspErrors.join("\n")).to.deep.equal([]);

        mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
        const shot = join(ROOT, "test/artifacts/status-page.png");
        await page.screenshot({ path: shot, fullPage: true });
        // The README's picture is refreshed on request only, so a test run leaves the tree clean.
        if (process.env.DECANT_UPDATE_SCREENSHOTS) copyFileSync(shot, join(ROOT, "docs/status-page.png"));
      } finally {
        stop = true;
        await traffic;
        await browser.close();
      }
    });
  });
});
