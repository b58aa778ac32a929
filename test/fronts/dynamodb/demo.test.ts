// `decant demo --api dynamodb` as a child process: the same live migration, with the load
// generator an unmodified AWS SDK client on the sidecar's DynamoDB front.
import { expect } from "chai";
import { execFile } from "node:child_process";

const ROOT = new URL("../../../", import.meta.url).pathname;

describe("decant demo --api dynamodb (child process)", function () {
  this.timeout(180_000);

  it("migrates under DynamoDB-API traffic and ends with 0 differences and no errors", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("DECANT_") && !k.startsWith("DECANT_TEST_")) delete env[k];
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "demo", "--api", "dynamodb", "--keys", "1000", "--seconds", "1"], { cwd: ROOT, env, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }, (_err, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout: String(stdout), stderr: String(stderr) }),
      );
    });
    const show = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.code, show).to.equal(0);
    expect(r.stdout).to.match(/DynamoDB API: +http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stdout).to.include("through the DynamoDB API (AWS SDK v3)");
    expect(r.stdout, show).to.include("0 differences between current and target");
    expect(r.stdout, show).to.match(/every acknowledged write checked against the target: [\d,]+ keys, 0 lost or stale/);
    expect(r.stdout, show).to.match(/errors: 0, stale reads: 0/);
  });
});
