// decant: serve the sidecar, or talk to a running one.
// Exit codes for scripts: 0 ok; 1 not found or condition failed; 2 bad usage or bad input;
// 3 sidecar or store unavailable; 4 anything else.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { DecantClient } from "../client/client.js";
import { ConfigError, loadConfig } from "../config/config.js";
import { createLogger } from "../log.js";
import { startSidecar } from "../server/sidecar.js";
import { CURRENT_VERSION_METADATA, STATUS_NAMES } from "../wire/status.js";

export const EXIT = { ok: 0, notFound: 1, usage: 2, unavailable: 3, other: 4 } as const;

const HELP = `decant — a store sidecar that moves live services between datastores

Usage:
  decant serve [--config decant.yaml]        run the sidecar (default store: sqlite:./data/decant.db)
  decant get <namespace> <key>               print a value (--json for key, version and value)
  decant put <namespace> <key> [value]       write a value (from the argument, --file F, or stdin)
        [--if-version N | --if-absent]
  decant delete <namespace> <key> [--if-version N]
  decant scan <namespace> [--prefix P] [--limit N] [--page-size N] [--json]
  decant migrate status|phase <name>|backfill start|pause|resume|verify   (see README)
  decant control rebind --yes [--config decant.yaml]   re-bind the stores to a recreated control store (see decant control --help)
  decant backfill-worker [--config decant.yaml]   run backfill segments only (no gRPC); exits 0 when none is left
  decant demo [--keys N] [--seconds S]       a whole live migration on SQLite, with traffic, in one command

Client options: --addr host:port or unix:PATH (default $DECANT_ADDR or 127.0.0.1:50051), --token T
(or $DECANT_ADMIN_TOKEN) for migration commands.
Exit codes: 0 ok, 1 not found / condition failed, 2 bad usage or input, 3 unavailable, 4 other.`;

class UsageError extends Error {}

function fail(code: number, message: string): never {
  process.stderr.write(`decant: ${message}\n`);
  process.exit(code);
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: "string", short: "c" } }, strict: true });
  let config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT.usage, `configuration error: ${err.message}`);
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  let sidecar;
  try {
    sidecar = await startSidecar(config, logger);
  } catch (err) {
    logger.error("decant could not start", { error: (err as Error).message });
    process.exit(EXIT.unavailable);
  }
  // An unexpected rejection must neither kill the process silently nor leave it writing in an
  // unknown state: log it and refuse writes until the sidecar is restarted (finding 7).
  process.on("unhandledRejection", (err) => {
    logger.error("unexpected error in the sidecar", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    sidecar.controller.failClosed("an unexpected error was not handled (see the log line before)");
  });
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      logger.warn(`second ${signal}: exiting without waiting`);
      process.exit(1);
    }
    logger.info(`received ${signal}`);
    sidecar.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error("shutdown failed", { error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
}

/** The sidecar this run talks to and where its address and token came from, for error advice. */
interface Target {
  addr: string;
  addrFrom: string;
  tokenFrom?: string;
}
let target: Target | undefined;

function clientFrom(values: { addr?: string; token?: string }): DecantClient {
  const addrFrom = values.addr ? "--addr" : process.env.DECANT_ADDR ? "DECANT_ADDR" : "the default";
  const token = values.token ?? process.env.DECANT_ADMIN_TOKEN;
  target = { addr: values.addr ?? process.env.DECANT_ADDR ?? "127.0.0.1:50051", addrFrom, tokenFrom: values.token ? "--token" : token ? "DECANT_ADMIN_TOKEN" : undefined };
  return new DecantClient(target.addr, { token, deadlineMs: 15_000 });
}

const CLIENT_OPTIONS = { addr: { type: "string" }, token: { type: "string" }, json: { type: "boolean" } } as const;

function printable(value: Buffer): string {
  const text = value.toString("utf8");
  return Buffer.from(text, "utf8").equals(value) ? text : `base64:${value.toString("base64")}`;
}

function condition(values: { "if-version"?: string; "if-absent"?: boolean }) {
  if (values["if-version"] && values["if-absent"]) throw new UsageError("use --if-version or --if-absent, not both");
  if (values["if-version"]) {
    if (!/^\d+$/.test(values["if-version"])) throw new UsageError("--if-version takes a version number");
    return { expected_version: values["if-version"] };
  }
  return values["if-absent"] ? { must_not_exist: true } : undefined;
}

async function client(command: string, args: string[]): Promise<number> {
  const opts = { ...CLIENT_OPTIONS, file: { type: "string" }, "if-version": { type: "string" }, "if-absent": { type: "boolean" }, prefix: { type: "string" }, limit: { type: "string" }, "page-size": { type: "string" } } as const;
  const { values, positionals } = parseArgs({ args, options: opts, allowPositionals: true, strict: true });
  const c = clientFrom(values);
  try {
    const [ns, key] = positionals;
    if (!ns) throw new UsageError(`${command} needs a namespace`);
    if (command !== "scan" && !key) throw new UsageError(`${command} needs a namespace and a key`);
    switch (command) {
      case "get": {
        const r = await c.get(ns, key!);
        if (!r.found) {
          process.stderr.write(`not found: ${ns}/${key}\n`);
          return EXIT.notFound;
        }
        if (values.json) process.stdout.write(`${JSON.stringify({ key: r.item!.key, version: r.item!.version, value: printable(r.item!.value) })}\n`);
        else process.stdout.write(r.item!.value);
        if (!values.json && process.stdout.isTTY) process.stdout.write("\n");
        return EXIT.ok;
      }
      case "put": {
        const value = positionals[2] !== undefined ? Buffer.from(positionals[2]) : values.file ? readFileSync(values.file) : readFileSync(0);
        const r = await c.put(ns, key!, value, condition(values));
        process.stdout.write(values.json ? `${JSON.stringify({ key, version: r.version })}\n` : `version ${r.version}\n`);
        return EXIT.ok;
      }
      case "delete": {
        if (values["if-absent"]) throw new UsageError("delete takes --if-version, not --if-absent");
        const r = await c.delete(ns, key!, condition(values));
        process.stdout.write(values.json ? `${JSON.stringify({ key, deleted: r.deleted, version: r.version })}\n` : r.deleted ? `deleted, version ${r.version}\n` : "not found (nothing deleted)\n");
        return r.deleted ? EXIT.ok : EXIT.notFound;
      }
      case "scan": {
        const limit = values.limit ? Number(values.limit) : Infinity;
        if (values.limit && (!Number.isInteger(limit) || limit < 1)) throw new UsageError("--limit takes a positive whole number");
        let token = "";
        let printed = 0;
        do {
          const page = await c.scan(ns, values.prefix ?? "", values["page-size"] ? Number(values["page-size"]) : 0, token);
          for (const item of page.items) {
            if (printed >= limit) break;
            process.stdout.write(values.json ? `${JSON.stringify({ key: item.key, version: item.version, value: printable(item.value) })}\n` : `${item.key}\t${item.version}\t${printable(item.value)}\n`);
            printed++;
          }
          token = page.next_page_token;
        } while (token && printed < limit);
        return EXIT.ok;
      }
    }
    throw new UsageError(`unknown command ${command}`);
  } finally {
    c.close();
  }
}

/** grpc-js's own words for a connection that failed, in a person's. */
function connectionProblem(details: string): string {
  if (/ECONNREFUSED/.test(details)) return "nothing is listening there (connection refused)";
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details)) return "the host name does not resolve";
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(details)) return "the host does not answer";
  if (/handshake|SSL|TLS|certificate/i.test(details)) return `the TLS handshake failed (${details})`;
  return `the connection failed (${details})`;
}

/**
 * What to tell a CLI user instead of the server's or grpc-js's words: the flag or variable to
 * set, the address tried. Decant's own errors carry grpc-status-details-bin; an UNAVAILABLE
 * without it came from the client library, so the sidecar was never reached.
 */
function advice(err: grpc.ServiceError, t: Target): string | undefined {
  const fromDecant = (err.metadata?.get("grpc-status-details-bin").length ?? 0) > 0;
  if (err.code === grpc.status.UNAUTHENTICATED) {
    return t.tokenFrom
      ? `the sidecar at ${t.addr} refused the admin token given by ${t.tokenFrom}: it is not the sidecar's admin token (its admin_token_file or DECANT_ADMIN_TOKEN)`
      : `the sidecar at ${t.addr} needs its admin token for this command: pass --token <token> or set DECANT_ADMIN_TOKEN`;
  }
  if ((err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) && !fromDecant) {
    const problem = err.code === grpc.status.DEADLINE_EXCEEDED ? "it did not answer within 15 s" : connectionProblem(err.details);
    return `cannot reach a Decant sidecar at ${t.addr} (from ${t.addrFrom}): ${problem}. Check that decant serve (make run) is running, that the address is its listen setting (set it with --addr host:port, --addr unix:PATH or DECANT_ADDR), and whether it needs TLS`;
  }
  return undefined;
}

/** Prints a gRPC error the way a person wants to read it and picks the exit code. */
export function reportGrpcError(err: grpc.ServiceError): number {
  const name = STATUS_NAMES[err.code] ?? String(err.code);
  const current = err.metadata?.get(CURRENT_VERSION_METADATA)[0];
  const text = (target && advice(err, target)) ?? err.details;
  process.stderr.write(`decant: ${name}: ${text}${current !== undefined ? ` (current version: ${String(current)})` : ""}\n`);
  switch (err.code) {
    case grpc.status.NOT_FOUND:
    case grpc.status.FAILED_PRECONDITION:
      return EXIT.notFound;
    case grpc.status.INVALID_ARGUMENT:
      return EXIT.usage;
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return EXIT.unavailable;
    default:
      return EXIT.other;
  }
}

export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        await serve(rest);
        return undefined; // keeps running until a signal
      case "get":
      case "put":
      case "delete":
      case "scan":
        return await client(command, rest);
      case "migrate":
        return await (await import("./migrate.js")).migrate(rest, clientFrom);
      case "demo":
        return await (await import("./demo.js")).demo(rest);
      case "control":
        return await (await import("./control.js")).control(rest);
      case "backfill-worker":
        return await (await import("./backfill-worker.js")).backfillWorker(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(`${HELP}\n`);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith?.("ERR_PARSE_ARGS")) {
      process.stderr.write(`decant: ${(err as Error).message}\nRun decant help for usage.\n`);
      return EXIT.usage;
    }
    if (typeof (err as grpc.ServiceError).code === "number" && "details" in (err as object)) return reportGrpcError(err as grpc.ServiceError);
    process.stderr.write(`decant: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.other;
  }
}

const code = await main(process.argv.slice(2));
if (code !== undefined) process.exit(code);
