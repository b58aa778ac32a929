// The real `decant` CLI as a child process against a real sidecar in this process: what it
// prints, and the exit codes scripts rely on (0 ok, 1 not found / condition failed, 2 bad
// usage or input, 3 unavailable).
import { expect } from "chai";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freshNamespace } from "../support/names.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes, for binary values. */
  raw: Buffer;
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs `decant ...args`; stdin gets `input` (or is closed at once). Never rejects. */
function decant(args: string[], options: { env?: Record<string, string | undefined>; input?: string | Buffer; timeoutMs?: number } = {}): Promise<Result> {
  const env: Record<string, string | undefined> = { ...process.env, DECANT_ADDR: undefined, DECANT_ADMIN_TOKEN: undefined, ...options.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: ROOT, env: env as NodeJS.ProcessEnv, encoding: "buffer", timeout: options.timeoutMs ?? 90_000, maxBuffer: 16 * 1024 * 1024 },
      (_err, stdout, stderr) => {
        resolve({ code: child.exitCode, signal: child.signalCode, stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8"), raw: stdout });
      },
    );
    child.stdin!.on("error", () => {}); // the CLI may exit before reading stdin
    child.stdin!.end(options.input ?? "");
  });
}

const show = (r: Result) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

describe("decant CLI (child process against a real sidecar)", function () {
  this.timeout(240_000); // each run starts node + tsx, seconds on a busy machine
  let s: Running;
  let addr: string;
  let ns: string;
  let dir: string;
  /** Runs the CLI with DECANT_ADDR pointing at the test sidecar. */
  const run = (args: string[], input?: string | Buffer) => decant(args, { env: { DECANT_ADDR: addr }, input });

  before(async () => {
    s = await startTestSidecar();
    addr = `127.0.0.1:${s.sidecar.grpcPort}`;
    dir = mkdtempSync(join(tmpdir(), "decant-cli-"));
  });
  after(async () => {
    await s?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    ns = freshNamespace("cli");
  });

  describe("put and get", function () {
    it("put prints the version and exits 0", async function () {
      const r = await run(["put", ns, "k", "hello"]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("version 1\n");
      const r2 = await run(["put", ns, "k", "again"]);
      expect(r2.code, show(r2)).to.equal(0);
      expect(r2.stdout).to.equal("version 2\n");
      const got = await s.client.get(ns, "k");
      expect(got.item!.value.toString()).to.equal("again");
    });

    it("get prints the value (no newline when not a terminal) and exits 0", async function () {
      await s.client.put(ns, "k", Buffer.from("the value"));
      const r = await run(["get", ns, "k"]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("the value");
      expect(r.stderr).to.equal("");
    });

    it("get --json prints key, version and value", async function () {
      await s.client.put(ns, "k", Buffer.from("one"));
      await s.client.put(ns, "k", Buffer.from("two"));
      const r = await run(["get", ns, "k", "--json"]);
      expect(r.code, show(r)).to.equal(0);
      expect(JSON.parse(r.stdout)).to.deep.equal({ key: "k", version: "2", value: "two" });
    });

    it("get --json shows a non-UTF-8 value as base64:, and plain get writes the raw bytes", async function () {
      const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
      await s.client.put(ns, "bin", bytes);
      const j = await run(["get", ns, "bin", "--json"]);
      expect(j.code, show(j)).to.equal(0);
      expect(JSON.parse(j.stdout).value).to.equal(`base64:${bytes.toString("base64")}`);
      const raw = await run(["get", ns, "bin"]);
      expect(raw.code, show(raw)).to.equal(0);
      expect(raw.raw.equals(bytes)).to.equal(true);
    });

    it("get of a missing key exits 1 with 'not found' on stderr", async function () {
      const r = await run(["get", ns, "nope"]);
      expect(r.code, show(r)).to.equal(1);
      expect(r.stdout).to.equal("");
      expect(r.stderr).to.include("not found");
      expect(r.stderr).to.include(`${ns}/nope`);
    });

    it("put --if-version with a stale version exits 1 naming FAILED_PRECONDITION and the current version", async function () {
      await s.client.put(ns, "k", Buffer.from("a"));
      await s.client.put(ns, "k", Buffer.from("b"));
      const r = await run(["put", ns, "k", "c", "--if-version", "1"]);
      expect(r.code, show(r)).to.equal(1);
      expect(r.stderr).to.include("FAILED_PRECONDITION");
      expect(r.stderr).to.include("current version: 2");
      expect(r.stdout).to.equal("");
      expect((await s.client.get(ns, "k")).item!.value.toString()).to.equal("b");
      const ok = await run(["put", ns, "k", "c", "--if-version", "2"]);
      expect(ok.code, show(ok)).to.equal(0);
      expect(ok.stdout).to.equal("version 3\n");
    });

    it("put --if-absent writes once, then exits 1", async function () {
      const first = await run(["put", ns, "k", "first", "--if-absent"]);
      expect(first.code, show(first)).to.equal(0);
      expect(first.stdout).to.equal("version 1\n");
      const second = await run(["put", ns, "k", "second", "--if-absent"]);
      expect(second.code, show(second)).to.equal(1);
      expect(second.stderr).to.include("FAILED_PRECONDITION");
      expect(second.stderr).to.include("current version: 1");
      expect((await s.client.get(ns, "k")).item!.value.toString()).to.equal("first");
    });

    it("put reads the value from stdin when none is given", async function () {
      const value = "piped in\nwith two lines\n";
      const r = await run(["put", ns, "k"], value);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("version 1\n");
      expect((await s.client.get(ns, "k")).item!.value.toString()).to.equal(value);
    });

    it("put reads binary stdin byte for byte", async function () {
      const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
      const r = await run(["put", ns, "bin"], bytes);
      expect(r.code, show(r)).to.equal(0);
      expect((await s.client.get(ns, "bin")).item!.value.equals(bytes)).to.equal(true);
    });

    it("put --file reads the value from a file", async function () {
      const path = join(dir, "value.txt");
      writeFileSync(path, "from a file");
      const r = await run(["put", ns, "k", "--file", path, "--json"]);
      expect(r.code, show(r)).to.equal(0);
      expect(JSON.parse(r.stdout)).to.deep.equal({ key: "k", version: "1" });
      expect((await s.client.get(ns, "k")).item!.value.toString()).to.equal("from a file");
    });

    it("--addr wins over DECANT_ADDR", async function () {
      const r = await decant(["put", ns, "k", "v", "--addr", addr], { env: { DECANT_ADDR: "127.0.0.1:1" } });
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("version 1\n");
    });
  });

  describe("delete", function () {
    it("exits 0 when it deletes, then 1 when there is nothing to delete", async function () {
      await s.client.put(ns, "k", Buffer.from("v"));
      const r = await run(["delete", ns, "k"]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("deleted, version 2\n");
      const again = await run(["delete", ns, "k"]);
      expect(again.code, show(again)).to.equal(1);
      expect(again.stdout).to.include("not found");
      expect((await s.client.get(ns, "k")).found).to.equal(false);
    });

    it("delete --if-version with a stale version exits 1 and deletes nothing", async function () {
      await s.client.put(ns, "k", Buffer.from("v"));
      const r = await run(["delete", ns, "k", "--if-version", "7"]);
      expect(r.code, show(r)).to.equal(1);
      expect(r.stderr).to.include("FAILED_PRECONDITION");
      expect(r.stderr).to.include("current version: 1");
      expect((await s.client.get(ns, "k")).found).to.equal(true);
    });
  });

  describe("scan", function () {
    async function scanRequests(): Promise<number> {
      const text = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
      const m = /decant_requests_total\{rpc="Store\/Scan",code="OK"[^}]*\} (\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    }

    it("prints key\\tversion\\tvalue lines across several pages", async function () {
      const keys = ["a", "b", "c", "d", "e"];
      for (const k of keys) await s.client.put(ns, k, Buffer.from(`value-${k}`));
      await s.client.put(ns, "c", Buffer.from("value-c2"));
      const before = await scanRequests();
      const r = await run(["scan", ns, "--page-size", "2"]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("a\t1\tvalue-a\nb\t1\tvalue-b\nc\t2\tvalue-c2\nd\t1\tvalue-d\ne\t1\tvalue-e\n");
      expect((await scanRequests()) - before).to.be.at.least(3); // 5 items, 2 a page
    });

    it("--prefix limits the keys", async function () {
      for (const k of ["user/1", "user/2", "user/3", "order/1", "users"]) await s.client.put(ns, k, Buffer.from(k));
      const r = await run(["scan", ns, "--prefix", "user/", "--page-size", "2"]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("user/1\t1\tuser/1\nuser/2\t1\tuser/2\nuser/3\t1\tuser/3\n");
    });

    it("--limit stops early, --json prints one object a line", async function () {
      for (const k of ["a", "b", "c", "d"]) await s.client.put(ns, k, Buffer.from(k.toUpperCase()));
      const r = await run(["scan", ns, "--limit", "3", "--page-size", "2", "--json"]);
      expect(r.code, show(r)).to.equal(0);
      const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
      expect(lines).to.deep.equal([
        { key: "a", version: "1", value: "A" },
        { key: "b", version: "1", value: "B" },
        { key: "c", version: "1", value: "C" },
      ]);
    });

    it("an empty namespace prints nothing and exits 0", async function () {
      const r = await run(["scan", ns]);
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.equal("");
    });
  });

  describe("bad usage and bad input exit 2", function () {
    it("a bad namespace is INVALID_ARGUMENT", async function () {
      const [r, g] = await Promise.all([run(["put", "Bad-NS", "k", "v"]), run(["get", "Bad-NS", "k"])]);
      expect(r.code, show(r)).to.equal(2);
      expect(r.stderr).to.include("INVALID_ARGUMENT");
      expect(r.stderr).to.include("namespace");
      expect(g.code, show(g)).to.equal(2);
      expect(g.stderr).to.include("INVALID_ARGUMENT");
    });

    it("an unknown command", async function () {
      const r = await run(["frobnicate"]);
      expect(r.code, show(r)).to.equal(2);
      expect(r.stderr).to.include("unknown command");
      expect(r.stderr).to.include("frobnicate");
    });

    it("an unknown option, a missing key, a bad --if-version", async function () {
      // Independent runs, in parallel to save start-up time.
      const [opt, missing, bad, both] = await Promise.all([
        run(["get", ns, "k", "--bogus"]),
        run(["get", ns]),
        run(["put", ns, "k", "v", "--if-version", "abc"]),
        run(["put", ns, "k", "v", "--if-version", "1", "--if-absent"]),
      ]);
      expect(opt.code, show(opt)).to.equal(2);
      expect(missing.code, show(missing)).to.equal(2);
      expect(missing.stderr).to.include("needs a namespace and a key");
      expect(bad.code, show(bad)).to.equal(2);
      expect(bad.stderr).to.include("--if-version");
      expect(both.code, show(both)).to.equal(2);
      expect((await s.client.get(ns, "k")).found).to.equal(false);
    });

    it("no command prints the help and exits 2", async function () {
      const r = await run([]);
      expect(r.code, show(r)).to.equal(2);
      expect(r.stdout).to.include("Usage:");
    });
  });

  it("decant help prints the usage and exits 0", async function () {
    for (const r of await Promise.all(["help", "--help", "-h"].map((arg) => decant([arg])))) {
      expect(r.code, show(r)).to.equal(0);
      expect(r.stdout).to.include("Usage:");
      expect(r.stdout).to.include("decant get <namespace> <key>");
      expect(r.stdout).to.include("Exit codes");
    }
  });

  it("an unknown host exits 3 and says the name does not resolve", async function () {
    const r = await decant(["get", "ns", "k"], { env: { DECANT_ADDR: "decant-nowhere.invalid:50051" } });
    expect(r.code, show(r)).to.equal(3);
    expect(r.stderr).to.include("cannot reach a Decant sidecar at decant-nowhere.invalid:50051 (from DECANT_ADDR): the host name does not resolve");
  });

  describe("a sidecar with an admin token", function () {
    let guarded: Running;
    let guardedAddr: string;
    before(async () => {
      guarded = await startTestSidecar({ DECANT_ADMIN_TOKEN: "the-right-token" });
      guardedAddr = `127.0.0.1:${guarded.sidecar.grpcPort}`;
    });
    after(async () => guarded?.stop());

    it("UNAUTHENTICATED without a token tells a CLI user the flag and variable to set, not an HTTP header", async function () {
      const r = await decant(["migrate", "status", "--addr", guardedAddr]);
      expect(r.code, show(r)).to.equal(4);
      expect(r.stderr).to.include(`UNAUTHENTICATED: the sidecar at ${guardedAddr} needs its admin token for this command: pass --token <token> or set DECANT_ADMIN_TOKEN`);
      expect(r.stderr).to.not.match(/header|Bearer/i);
    });

    it("UNAUTHENTICATED with a wrong token names where that token came from", async function () {
      const flag = await decant(["migrate", "status", "--addr", guardedAddr, "--token", "wrong"]);
      expect(flag.code, show(flag)).to.equal(4);
      expect(flag.stderr).to.include("refused the admin token given by --token");
      const env = await decant(["migrate", "status", "--addr", guardedAddr], { env: { DECANT_ADMIN_TOKEN: "wrong" } });
      expect(env.stderr).to.include("refused the admin token given by DECANT_ADMIN_TOKEN");
      const right = await decant(["migrate", "status", "--addr", guardedAddr, "--token", "the-right-token"]);
      expect(right.code, show(right)).to.equal(0);
    });
  });

  it("an unreachable sidecar exits 3 with UNAVAILABLE, quickly", async function () {
    // Compare with a run that makes no call, started at the same moment, so a busy machine's
    // start-up time counts for both: waiting for the 15 s deadline would show as >= ~15 s more.
    const timed = async (args: string[], env?: Record<string, string>) => {
      const started = Date.now();
      const r = await decant(args, { env });
      return { r, ms: Date.now() - started };
    };
    const [baseline, unreachable, viaEnv] = await Promise.all([
      timed(["help"]),
      timed(["get", "ns", "k", "--addr", "127.0.0.1:1"]),
      timed(["put", "ns", "k", "v"], { DECANT_ADDR: "127.0.0.1:1" }),
    ]);
    expect(unreachable.r.code, show(unreachable.r)).to.equal(3);
    expect(unreachable.r.stderr).to.include("UNAVAILABLE: cannot reach a Decant sidecar at 127.0.0.1:1 (from --addr): nothing is listening there (connection refused)");
    expect(viaEnv.r.code, show(viaEnv.r)).to.equal(3);
    expect(viaEnv.r.stderr).to.include("cannot reach a Decant sidecar at 127.0.0.1:1 (from DECANT_ADDR)");
    for (const r of [unreachable.r, viaEnv.r]) {
      expect(r.stderr, "what to check").to.include("--addr host:port, --addr unix:PATH or DECANT_ADDR");
      expect(r.stderr, "not grpc-js's own words").to.not.match(/No connection established|Last error|Resolution note/);
    }
    expect(unreachable.ms - baseline.ms, "connection refused should fail fast, not wait for the 15 s deadline").to.be.below(10_000);
  });
});
