// A real `decant serve` PROCESS for tests that need to kill a sidecar (SIGKILL) or measure its
// memory: spawned with tsx on free loopback ports, ready once a Get through a DecantClient
// works. stderr (JSON log lines) is captured. Every process started here is tracked, and is
// killed by its PID when this test process exits, so a failing test leaves no orphan behind.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { DecantClient } from "../../src/client/client.js";
import { freePort } from "./ports.js";

const ROOT = new URL("../../", import.meta.url).pathname;

export interface LogLine {
  level: string;
  message: string;
  [k: string]: unknown;
}

export interface SidecarProcess {
  pid: number;
  client: DecantClient;
  /** gRPC port on 127.0.0.1. */
  port: number;
  /** /metrics port on 127.0.0.1. */
  metricsPort: number;
  /** The DynamoDB-API front's port on 127.0.0.1 (with options.dynamodb or DECANT_DYNAMODB_LISTEN). */
  dynamodbPort?: number;
  /** DECANT_REPLICA_ID, if the caller set one. */
  replicaId?: string;
  /** Raw stderr lines (JSON log lines with DECANT_LOG_FORMAT=json). */
  logs: string[];
  /** The stderr lines that parse as JSON. */
  jsonLogs(): LogLine[];
  /** True once the process has exited. */
  exited(): boolean;
  /** Resolves with the exit code/signal. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Peak resident set size so far (VmHWM from /proc/<pid>/status), in kB; undefined once exited or off Linux. */
  peakRssKb(): number | undefined;
  /** SIGTERM, then wait for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the process freezes mid-whatever (a GC pause, a stopped VM); the kernel still queues its sockets. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export { freePort };

const live = new Map<number, ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const pid of live.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
}

/** Kills (SIGKILL, by PID) every sidecar process started here that is still running. For after() hooks. */
export async function killAllSidecars(): Promise<void> {
  await Promise.all(
    [...live.entries()].map(
      ([pid, child]) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            resolve();
          }
        }),
    ),
  );
}

export function readVmHWM(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface StartOptions {
  /** How long to wait until a Get works (tsx start-up on a busy machine takes a few seconds). */
  startTimeoutMs?: number;
  /** Echo the child's stderr to this process's stderr (for debugging). */
  echo?: boolean;
  /** Serve the DynamoDB API too, on a free loopback port (reported as dynamodbPort). */
  dynamodb?: boolean;
}

/**
 * Starts `decant serve` with `env` on top of this process's environment (inherited DECANT_*
 * settings other than DECANT_TEST_* are dropped so they cannot leak into the child), JSON logs,
 * and fresh loopback ports unless DECANT_LISTEN / DECANT_METRICS_LISTEN are given.
 */
export async function startSidecarProcess(env: Record<string, string>, options: StartOptions = {}): Promise<SidecarProcess> {
  installExitHook();
  const port = env.DECANT_LISTEN ? Number(env.DECANT_LISTEN.slice(env.DECANT_LISTEN.lastIndexOf(":") + 1)) : await freePort();
  const metricsPort = env.DECANT_METRICS_LISTEN ? Number(env.DECANT_METRICS_LISTEN.slice(env.DECANT_METRICS_LISTEN.lastIndexOf(":") + 1)) : await freePort();
  const ddbListen = env.DECANT_DYNAMODB_LISTEN ?? (options.dynamodb ? `127.0.0.1:${await freePort()}` : undefined);
  const inherited: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(inherited)) if (k.startsWith("DECANT_") && !k.startsWith("DECANT_TEST_")) delete inherited[k];
  const childEnv = {
    ...inherited,
    DECANT_LOG_FORMAT: "json",
    DECANT_DRAIN_TIMEOUT_MS: "2000",
    DECANT_LISTEN: `127.0.0.1:${port}`,
    DECANT_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    ...(ddbListen ? { DECANT_DYNAMODB_LISTEN: ddbListen } : {}),
    ...env,
  } as NodeJS.ProcessEnv;

  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"], { cwd: ROOT, env: childEnv, stdio: ["ignore", "ignore", "pipe"] });
  if (child.pid === undefined) throw new Error("could not spawn the sidecar process");
  const pid = child.pid;
  live.set(pid, child);

  const logs: string[] = [];
  let partial = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    if (options.echo) process.stderr.write(d);
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const l of lines) if (l.trim()) logs.push(l);
  });
  let hasExited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      hasExited = true;
      live.delete(pid);
      resolve({ code, signal });
    }),
  );

  const client = new DecantClient(`127.0.0.1:${port}`, { deadlineMs: 15_000 });
  const kill = async (): Promise<void> => {
    if (!hasExited) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await exit;
    client.close();
  };
  const signal = (sig: NodeJS.Signals): void => {
    if (hasExited) return;
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  };
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (!hasExited) {
      signal("SIGCONT"); // a stopped process would hold SIGTERM until continued
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        /* gone */
      }
      const hard = setTimeout(() => {
        if (!hasExited) process.kill(pid, "SIGKILL");
      }, graceMs);
      await exit;
      clearTimeout(hard);
    }
    client.close();
  };

  const proc: SidecarProcess = {
    pid,
    client,
    port,
    metricsPort,
    dynamodbPort: ddbListen ? Number(ddbListen.slice(ddbListen.lastIndexOf(":") + 1)) : undefined,
    replicaId: env.DECANT_REPLICA_ID,
    logs,
    jsonLogs: () =>
      logs
        .filter((l) => l.startsWith("{"))
        .map((l) => {
          try {
            return JSON.parse(l) as LogLine;
          } catch {
            return { level: "?", message: l };
          }
        }),
    exited: () => hasExited,
    exit,
    peakRssKb: () => (hasExited ? undefined : readVmHWM(pid)),
    stop,
    kill,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
  };

  // Ready once a Get answers (found or not) through the real client.
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let last = "";
  for (;;) {
    if (hasExited) {
      client.close();
      throw new Error(`the sidecar process exited during start-up: ${logs.slice(-10).join("\n") || "no output"}`);
    }
    try {
      await client.call("store", "Get", { namespace: "readiness_probe", key: "k" }, 2000);
      // The DynamoDB front starts after the gRPC server: ready once it answers too.
      if (proc.dynamodbPort === undefined || (await fetch(`http://127.0.0.1:${proc.dynamodbPort}/`).then((r) => r.ok, () => false))) return proc;
      last = "the DynamoDB front does not answer yet";
    } catch (err) {
      const e = err as grpc.ServiceError;
      last = `${e.code} ${e.details ?? e.message}`;
    }
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`the sidecar process did not serve a Get within ${options.startTimeoutMs ?? 60_000} ms (last: ${last}); stderr: ${logs.slice(-10).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads a Prometheus text-format counter/gauge (summed over label sets matching `labels`). */
export async function scrapeMetric(metricsPort: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
