// listen: unix:PATH — the gRPC listener on a Unix domain socket (issue 17): served to the client
// and the CLI, the directory created, the socket 0660, a stale socket file replaced, a live one
// or a plain file refused, the file removed on stop; the config's parsing of unix: addresses.
import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DecantClient } from "../../src/client/client.js";
import { loadConfig } from "../../src/config/config.js";
import { startTestSidecar } from "../support/sidecar.js";

const ROOT = new URL("../../", import.meta.url).pathname;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, DECANT_ADDR: undefined, DECANT_ADMIN_TOKEN: undefined };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: ROOT, env: env as NodeJS.ProcessEnv, timeout: 90_000 }, (_err, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout: String(stdout), stderr: String(stderr) }),
    );
    child.stdin!.end("");
  });
}

describe("gRPC on a Unix domain socket (listen: unix:PATH)", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "decant-uds-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates the directory, serves Store calls to the client and the CLI on a 0660 socket, and removes it on stop", async function () {
    const path = join(dir, "run", "decant", "decant.sock");
    const s = await startTestSidecar({ DECANT_LISTEN: `unix:${path}` });
    const client = new DecantClient(`unix:${path}`, { deadlineMs: 15_000 });
    try {
      expect(statSync(path).isSocket()).to.equal(true);
      expect(statSync(path).mode & 0o777, "socket mode").to.equal(0o660);
      const { version } = await client.put("uds", "k", Buffer.from("over the socket"));
      const got = await client.get("uds", "k");
      expect(got.found).to.equal(true);
      expect(got.item!.value.toString()).to.equal("over the socket");
      expect(got.item!.version).to.equal(version);

      const put = await cli(["put", "uds", "c", "from the cli", "--addr", `unix:${path}`]);
      expect(put.code, put.stderr).to.equal(0);
      const get = await cli(["get", "uds", "c", "--addr", `unix://${path}`]); // grpc's unix:///abs form too
      expect(get.code, get.stderr).to.equal(0);
      expect(get.stdout).to.include("from the cli");
    } finally {
      client.close();
      await s.stop();
    }
    expect(existsSync(path), "the socket file is gone after stop").to.equal(false);
  });

  it("replaces a socket file left by a process that is gone", async function () {
    const path = join(dir, "decant.sock");
    // A process that binds the socket and dies without closing it leaves the file behind.
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`]);
    await new Promise((r) => child.once("exit", r));
    expect(statSync(path).isSocket(), "stale socket file").to.equal(true);
    const s = await startTestSidecar({ DECANT_LISTEN: `unix:${path}` });
    const client = new DecantClient(`unix:${path}`);
    try {
      await client.put("uds", "k", Buffer.from("v"));
    } finally {
      client.close();
      await s.stop();
    }
  });

  it("refuses a socket another process serves, and a path that is not a socket", async function () {
    const live = join(dir, "live.sock");
    const other = createServer();
    await new Promise<void>((r) => other.listen(live, r));
    try {
      const err = await startTestSidecar({ DECANT_LISTEN: `unix:${live}` }).then(
        (s) => (s.stop(), undefined),
        (e: Error) => e,
      );
      expect(err?.message).to.match(/another process serves .*live\.sock/);
    } finally {
      await new Promise((r) => other.close(r));
    }
    const file = join(dir, "plain");
    writeFileSync(file, "not a socket");
    const err = await startTestSidecar({ DECANT_LISTEN: `unix:${file}` }).then(
      (s) => (s.stop(), undefined),
      (e: Error) => e,
    );
    expect(err?.message).to.match(/exists and is not a socket/);
  });

  it("config: listen accepts unix:PATH (and unix:///PATH), and names the field for an empty or too long path", () => {
    const load = (listen: string) => loadConfig(undefined, { DECANT_CURRENT: "memory:", DECANT_LISTEN: listen });
    expect(load("unix:/run/decant/decant.sock").listen).to.equal("unix:/run/decant/decant.sock");
    expect(load("unix:///run/decant/decant.sock").listen).to.equal("unix:/run/decant/decant.sock");
    expect(load("unix:relative.sock").listen).to.equal("unix:relative.sock");
    expect(() => load("unix:")).to.throw(/^listen: unix: needs a socket path/);
    expect(() => load(`unix:/${"x".repeat(120)}`)).to.throw(/^listen: the socket path is 121 bytes/);
    expect(() => load("nonsense")).to.throw(/^listen: must be host:port/);
  });
});
