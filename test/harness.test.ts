// The test harness itself: a failing top-level check shows its own message, and the README's
// test command prepares the databases it names.
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import pg from "pg";
import { freePort } from "./support/ports.js";
import { TEST_URLS } from "./support/servers.js";

describe("test harness", function () {
  this.timeout(120_000);

  it("with CI set, an unreachable server fails the run with its own message (not mocha's top-level-await one)", () => {
    // --no-config: the project's spec must not be added (it would run this file again, and so on).
    const args = ["mocha", "--no-config", "--node-option", "import=tsx", "--exit", "test/support/fixtures/unreachable-server.ts"];
    const run = spawnSync("npx", args, { env: { ...process.env, CI: "true" }, encoding: "utf8", timeout: 60_000 });
    const output = run.stdout + run.stderr;
    expect(run.status, output).to.not.equal(0);
    expect(output).to.include("imaginary test server is not reachable and CI is set: connect ECONNREFUSED 127.0.0.1:1 (the fixture's own reason)");
    expect(output).to.not.include("Top-level await");
  });

  it("freePort never hands out one port twice in a process (a child told two ports binds neither until it starts)", async () => {
    const ports = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(ports.length);
  });

  it("scripts/test-prepare.sh creates the databases DECANT_TEST_PG_URL and DECANT_TEST_MYSQL_URL name", async () => {
    const name = `decant_test_prep_${randomBytes(4).toString("hex")}`;
    const pgUrl = new URL(TEST_URLS.postgres);
    const myUrl = new URL(TEST_URLS.mysql);
    const adminPg = new URL(pgUrl);
    adminPg.pathname = "/postgres";
    const adminMy = new URL(myUrl);
    adminMy.pathname = "/";
    pgUrl.pathname = `/${name}`;
    myUrl.pathname = `/${name}`;
    const pgAdmin = new pg.Client({ connectionString: adminPg.toString() });
    await pgAdmin.connect();
    const myAdmin = await mysql.createConnection(adminMy.toString());
    try {
      const run = spawnSync("scripts/test-prepare.sh", [], { env: { ...process.env, DECANT_TEST_PG_URL: pgUrl.toString(), DECANT_TEST_MYSQL_URL: myUrl.toString() }, encoding: "utf8", timeout: 60_000 });
      expect(run.status, run.stdout + run.stderr).to.equal(0);
      expect(run.stdout).to.include(`creating PostgreSQL database ${name}`);
      expect(run.stdout).to.include(`creating MariaDB database ${name}`);
      expect((await pgAdmin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount).to.equal(1);
      const [rows] = await myAdmin.query("SHOW DATABASES LIKE ?", [name]);
      expect(rows).to.have.length(1);
      const again = spawnSync("scripts/test-prepare.sh", [], { env: { ...process.env, DECANT_TEST_PG_URL: pgUrl.toString(), DECANT_TEST_MYSQL_URL: myUrl.toString() }, encoding: "utf8", timeout: 60_000 });
      expect(again.status, again.stdout + again.stderr).to.equal(0);
      expect(again.stdout, "a second run changes nothing").to.not.include("creating");
    } finally {
      await pgAdmin.query(`DROP DATABASE IF EXISTS ${name}`);
      await myAdmin.query(`DROP DATABASE IF EXISTS ${name}`);
      await pgAdmin.end();
      await myAdmin.end();
    }
  });
});
