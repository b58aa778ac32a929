// `decant demo` as a child process: a whole live migration on SQLite with traffic, which must
// end with both stores equal and no failed request.
import { expect } from "chai";
import { execFile } from "node:child_process";

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
    expect(r.stdout).to.match(/verify +\[#+\] 100\.0%/);
    expect(r.stdout, show).to.include("0 differences between current and target");
    expect(r.stdout, show).to.match(/every acknowledged write checked against the target: [\d,]+ keys, 0 lost or stale/);
    expect(r.stdout, show).to.match(/load generator: [\d,]+ requests, [\d,]+ retried after UNAVAILABLE, errors: 0, stale reads: 0/);
    expect(r.stdout).to.include("Migration complete: 0 differences");
    console.log(`      (demo with 2000 keys took ${((Date.now() - started) / 1000).toFixed(1)} s including node start-up; ${/Took ([\d.]+ s)/.exec(r.stdout)?.[1]} inside)`);
  });

  it("refuses bad arguments with exit 2", async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--keys", "ten"], { cwd: ROOT, timeout: 60_000 }, () => resolve(child.exitCode));
    });
    expect(code).to.equal(2);
  });
});
