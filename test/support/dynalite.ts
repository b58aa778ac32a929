// A local DynamoDB for tests: dynalite (an in-memory DynamoDB implementation) run as a child
// process on a free loopback port, so tests need no AWS account and no Docker. Set
// DECANT_TEST_DYNAMODB_ENDPOINT to use a server you run yourself (DynamoDB Local, say) instead.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { connect, createServer } from "node:net";

export interface Dynalite {
  /** http://127.0.0.1:PORT, for the endpoint= option of a dynamodb: URL. */
  endpoint: string;
  /** The child's pid (undefined for an external server). */
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface DynaliteOptions {
  /** How long a new table stays CREATING (dynalite's default is 500 ms). */
  createTableMs?: number;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
}

/** Asks the kernel for a free port: listen on :0, read the port, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

export async function startDynalite(options: DynaliteOptions = {}): Promise<Dynalite> {
  const external = process.env.DECANT_TEST_DYNAMODB_ENDPOINT;
  if (external) return { endpoint: external, pid: undefined, stop: async () => undefined };

  const cli = createRequire(import.meta.url).resolve("dynalite/cli.js");
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [cli, "--host", "127.0.0.1", "--port", String(port), "--createTableMs", String(options.createTableMs ?? 50), "--deleteTableMs", "50", "--updateTableMs", "50"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => ((exited = true), resolve())));
  // Never leave an orphan behind, even if a test run forgets stop() or mocha exits hard.
  const killOnExit = () => {
    if (!exited && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  };
  process.once("exit", killOnExit);
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();

  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (exited || child.pid === undefined) return;
    process.kill(child.pid, "SIGTERM");
    const hard = setTimeout(() => !exited && child.pid !== undefined && process.kill(child.pid, "SIGKILL"), 2000);
    await exit;
    clearTimeout(hard);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (!(await accepts(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`dynalite did not start on port ${port}${exited ? " (it exited)" : ""}: ${stderr.trim() || "no output"}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { endpoint: `http://127.0.0.1:${port}`, pid: child.pid, stop };
}
