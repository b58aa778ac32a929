// A second language's real SDK: Python's boto3 runs boto3_walk.py against the DynamoDB front of
// a real sidecar (SQLite store). Needs a python3 with boto3 (pyenv's, or Debian's python3-boto3):
// without one the suite is skipped with a loud line, or fails when CI is set.
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { expect } from "chai";
import { startFront, testStore } from "./support.js";

const SCRIPT = new URL("./boto3_walk.py", import.meta.url).pathname;
const CI = process.env.CI === "true" || process.env.CI === "1";
const python = ["python3", "/usr/bin/python3"].find((p) => spawnSync(p, ["-c", "import boto3"]).status === 0);

describe("DynamoDB front: Python boto3", function () {
  this.timeout(120_000);
  if (!python) {
    if (CI) it("needs a python3 with boto3 (CI is set, so this fails)", () => expect.fail("install python3-boto3"));
    else {
      console.warn("\n!!! SKIPPING the boto3 tests: no python3 with boto3 (install python3-boto3), or set CI=true to make this fail.\n");
      it.skip("needs a python3 with boto3");
    }
    return;
  }
  const store = testStore("sqlite");
  let f: Awaited<ReturnType<typeof startFront>>;
  before(async () => (f = await startFront(store.url)));
  after(async () => {
    await f?.stop();
    await store.cleanup();
  });

  it("runs the boto3 walk-through (tables, conditions, updates, batches, paged queries, errors)", async () => {
    const prefix = `py${randomBytes(3).toString("hex")}`;
    const env: NodeJS.ProcessEnv = { ...process.env, DECANT_DDB_ENDPOINT: f.endpoint, DECANT_DDB_PREFIX: prefix, AWS_CONFIG_FILE: "/dev/null", AWS_SHARED_CREDENTIALS_FILE: "/dev/null" };
    // Async, so this process's sidecar keeps answering while Python runs.
    const { stdout } = await promisify(execFile)(python, [SCRIPT], { env, timeout: 90_000 }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`boto3 walk failed: ${err.stderr || err.message}\n${err.stdout ?? ""}`);
    });
    expect(stdout).to.include("boto3 walk ok");
  });
});
