// `decant demo` as a child process: a whole live migration on SQLite with traffic, which must
// end with both stores equal and no failed request.
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { waitFor } from "../support/migration.js";
import { freePort } from "../support/processes.js";

const ROOT = new URL("../../", import.meta.url).pathname;

describe("decant demo (child process)", function () {
  this.timeout(120_000);

  it("walks every phase with traffic and ends with 0 differences and no errors", async () => {
    const started = Date.now();
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DECANT_CURRENT;
    delete env.DECANT_TARGET;
    delete env.DECANT_ADMIN_TOKEN;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--keys", "2000"], { cwd: ROOT, env, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }, (_err, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout: String(stdout), stderr: String(stderr) }),
      );
    });
    const show = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.code, show).to.equal(0);
    expect(r.stdout).to.match(/status page: +http:\/\/127\.0\.0\.1:\d+\//);
    for (const phase of ["SINGLE", "DUAL_WRITE", "SHADOW_READ", "READ_TARGET", "TARGET_PRIMARY", "COMPLETE"]) expect(r.stdout, show).to.match(new RegExp(`Step \\d/\\d  ${phase}: `));
    // Not a TTY here: progress bars are plain lines, never carriage returns.
    expect(r.stdout).not.to.include("\r");
    expect(r.stdout).to.match(/backfill \[#+\] 100\.0%/);
    // The total is an estimate without the tombstones: the done count must never exceed it as shown.
    const counts = [...r.stdout.matchAll(/backfill \[[#-]+\] +[\d.]+% ([\d,]+)\/([\d,]+) items/g)].map((m) => [m[1], m[2]].map((n) => Number(n!.replace(/,/g, ""))));
    expect(counts.length).to.be.greaterThan(0);
    for (const [done, total] of counts) expect(done, `${done}/${total}`).to.be.at.most(total!);
    expect(r.stdout).to.match(/verify +\[#+\] 100\.0%/);
    expect(r.stdout, show).to.include("0 differences between current and target");
    expect(r.stdout, show).to.match(/every acknowledged write checked against the target: [\d,]+ keys, 0 lost or stale/);
    expect(r.stdout, show).to.match(/load generator: [\d,]+ requests, [\d,]+ retried after UNAVAILABLE, errors: 0, stale reads: 0/);
    expect(r.stdout).to.include("Migration complete: 0 differences");
    console.log(`      (demo with 2000 keys took ${((Date.now() - started) / 1000).toFixed(1)} s including node start-up; ${/Took ([\d.]+ s)/.exec(r.stdout)?.[1]} inside)`);
  });

  it("takes --port and --metrics-port, and with --hold keeps its status page serving until Ctrl-C", async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--keys", "100", "--seconds", "0", "--port", String(port), "--metrics-port", String(metricsPort), "--hold"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stdout += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(async () => stdout.includes("Ctrl-C to stop"), "the demo to finish and hold", 100_000);
      expect(stdout).to.include(`status page:   http://127.0.0.1:${metricsPort}/`);
      expect(stdout).to.include(`gRPC:          127.0.0.1:${port}`);
      expect(stdout).to.include("Migration complete: 0 differences");
      const page = await fetch(`http://127.0.0.1:${metricsPort}/`);
      expect(page.status, "the status page still serves after the demo").to.equal(200);
      expect(await page.text()).to.include("COMPLETE");
      child.kill("SIGINT");
      expect(await exited, stdout).to.equal(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("refuses a bad --port with exit 2", async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--port", "70000"], { cwd: ROOT, timeout: 60_000 }, (_e, _o, stderr) => resolve({ code: child.exitCode, stderr: String(stderr) }));
    });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include("--port takes a port number from 0 (a free one) to 65535");
  });

  it("refuses bad arguments with exit 2", async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--keys", "ten"], { cwd: ROOT, timeout: 60_000 }, () => resolve(child.exitCode));
    });
    expect(code).to.equal(2);
  });
});
