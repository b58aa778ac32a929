// Rule 9 with real stores: a data store names the control store that coordinates it. A control
// store recreated at the same place is told apart from drift to another one, the error names
// the fix, `decant control rebind` applies it, and drift is still refused.
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openStore } from "../../src/backends/index.js";
import { rebind } from "../../src/migration/binding.js";
import { BINDING_KEY, ControlStore, PHASE_KEY, type PhaseRecord } from "../../src/migration/control.js";
import { postgresAvailable, TEST_URLS } from "../support/servers.js";
import { startTestSidecar } from "../support/sidecar.js";
import { waitFor } from "../support/migration.js";

const FAST = { DECANT_HEARTBEAT_MS: "50", DECANT_LEASE_MS: "1000", DECANT_REPLICA_TTL_MS: "2500", DECANT_FENCE_TIMEOUT_MS: "5000", DECANT_BACKFILL_LEASE_MS: "1000" };
const ROOT = new URL("../../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "decant-binding-"));
const run = Math.random().toString(36).slice(2, 8);

const pgOk = await postgresAvailable();

/** A SQLite database is its file and its WAL: a lost file loses both. */
const removeSqlite = (path: string) => ["", "-wal", "-shm"].forEach((s) => rmSync(path + s, { force: true }));

async function pgQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: TEST_URLS.postgres });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

interface Kind {
  name: string;
  ok: boolean;
  /** A store URL for a place (the same name is the same place). */
  url: (place: string) => string;
  /** Recreates the store at a place: empty, as after a lost file or a dropped database. */
  recreate: (place: string) => Promise<void>;
}

const KINDS: Kind[] = [
  { name: "sqlite", ok: true, url: (p) => `sqlite:${join(dir, `${p}.db`)}`, recreate: async (p) => removeSqlite(join(dir, `${p}.db`)) },
  {
    name: "postgres",
    ok: pgOk,
    url: (p) => `${TEST_URLS.postgres}?table=bind_${p}_${run}&timeout_ms=1000`,
    recreate: (p) => pgQuery(`DROP TABLE IF EXISTS bind_${p}_${run}`),
  },
];

/** Runs `decant ...args` as a child process; never rejects. */
function decant(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const full: Record<string, string | undefined> = { ...process.env, DECANT_CONTROL: undefined, DECANT_TARGET: undefined, ...env };
  for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT, env: full as NodeJS.ProcessEnv, timeout: 90_000 }, (_e, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

const startFails = (env: Record<string, string>) => startTestSidecar(env).then(async (s) => (await s.stop(), undefined), (err: unknown) => String(err));

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (pgOk) for (const p of ["cur", "ctl", "other", "tgt"]) await pgQuery(`DROP TABLE IF EXISTS bind_${p}_${run}`);
});

for (const kind of KINDS) {
  if (!kind.ok) continue;
  describe(`control-store binding on ${kind.name}`, function () {
    this.timeout(180_000);
    const env = () => ({ DECANT_CURRENT: kind.url("cur"), DECANT_CONTROL: kind.url("ctl"), ...FAST });

    it("a recreated control store: the sidecar says so and names the fix; decant control rebind lets it start", async () => {
      const first = await startTestSidecar(env());
      await first.client.put("users", "k", Buffer.from("v"));
      await first.stop();
      await kind.recreate("ctl");

      const err = await startFails(env());
      expect(err).to.include("has another identity").and.include("recreated or lost its state").and.include("phase and journal history").and.include("decant control rebind --yes");
      expect(err).to.not.match(/coordinated by the control store .* but this sidecar's control store is/);

      const unconfirmed = await decant(["control", "rebind"], env());
      expect(unconfirmed.code, unconfirmed.stderr).to.equal(2);
      expect(unconfirmed.stderr).to.include("--yes");

      const done = await decant(["control", "rebind", "--yes"], env());
      expect(done.code, done.stderr).to.equal(0);
      expect(done.stdout).to.include("current store").and.include("re-bound");

      const again = await startTestSidecar(env());
      try {
        expect((await again.client.get("users", "k")).item?.value.toString()).to.equal("v");
      } finally {
        await again.stop();
      }
      const twice = await decant(["control", "rebind", "--yes"], env());
      expect(twice.code, twice.stderr).to.equal(0);
      expect(twice.stdout).to.include("already bound");
    });

    it("drift to a genuinely different control store is still refused, and rebind does not cover it while that one runs", async () => {
      const running = await startTestSidecar(env());
      try {
        const drift = await startFails({ ...env(), DECANT_CONTROL: kind.url("other") });
        expect(drift).to.include("every replica must use the same control store (check DECANT_CONTROL)").and.not.include("another identity");
        // The running replica touches its binding: a rebind to the other control store is refused.
        const refused = await decant(["control", "rebind", "--yes"], { ...env(), DECANT_CONTROL: kind.url("other") });
        expect(refused.code, refused.stderr).to.equal(1);
        expect(refused.stderr).to.include("still runs").and.include("nothing was changed");
        expect(await startFails({ ...env(), DECANT_CONTROL: kind.url("other") })).to.include("every replica must use the same control store");
        expect(running.sidecar.controller.isFailClosed()).to.equal(false);
      } finally {
        await running.stop();
      }
    });
  });
}

describe("decant control rebind: what it refuses (sqlite)", function () {
  this.timeout(60_000);
  const url = (p: string) => `sqlite:${join(dir, `r-${p}.db`)}`;

  it("refuses a control store that holds a migration underway, and changes nothing", async () => {
    const current = await openStore(url("cur1"));
    const old = new ControlStore(await openStore(url("old1")));
    const fresh = new ControlStore(await openStore(url("new1")));
    try {
      const { checkBinding } = await import("../../src/migration/binding.js");
      await checkBinding(current, "current", old);
      await fresh.compareAndSet<PhaseRecord>(PHASE_KEY, { phase: "DUAL_WRITE", epoch: 3, fence: false, changedAt: 0, changedBy: "x" }, null);
      const err = await rebind({ stores: [{ role: "current", store: current }], control: fresh, observeMs: 0 }).catch((e: unknown) => String(e));
      expect(err).to.include("holds a migration in phase DUAL_WRITE");
      expect((await new ControlStore(current).read<{ description: string }>(BINDING_KEY))!.value.description).to.equal(old.store.description);
    } finally {
      for (const s of [current, old.store, fresh.store]) await s.close();
    }
  });

  it("re-binds a bound target too; a replica still running on the old control store stops writing", async () => {
    const currentUrl = url("cur2");
    const targetUrl = url("tgt2");
    // A sidecar holds the old control file open; the file is then replaced (the same place, another store).
    const running = await startTestSidecar({ DECANT_CURRENT: currentUrl, DECANT_CONTROL: url("ctl2"), DECANT_REPLICA_ID: "old", ...FAST });
    const target = await openStore(targetUrl);
    const { checkBinding } = await import("../../src/migration/binding.js");
    await checkBinding(target, "target", running.sidecar.controller.control);
    removeSqlite(join(dir, "r-ctl2.db"));
    const current = await openStore(currentUrl);
    const fresh = new ControlStore(await openStore(url("ctl2")));
    try {
      const watched = await rebind({ stores: [{ role: "current", store: current }], control: fresh, observeMs: 1500 }).catch((e: unknown) => String(e));
      expect(watched).to.include("still runs").and.include("replica old");
      // Forced through a window too short to see it (as if it were paused): it notices and refuses writes.
      const results = await rebind({ stores: [{ role: "current", store: current }, { role: "target", store: target }], control: fresh, observeMs: 0 });
      expect(results.map((r) => [r.role, r.rebound])).to.deep.equal([["current", true], ["target", true]]);
      await waitFor(async () => running.sidecar.controller.isFailClosed(), "the old replica fails closed", 10_000);
      expect(running.sidecar.controller.failClosedReason()).to.include("another identity");
    } finally {
      await running.stop();
      for (const s of [current, target, fresh.store]) await s.close();
    }
  });
});
