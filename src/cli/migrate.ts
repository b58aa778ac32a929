// decant migrate …: watch and steer a live migration from a terminal.
import { parseArgs } from "node:util";
import type { DecantClient } from "../client/client.js";
import type { MigrationStatus, VerifyReport, WirePhase } from "../wire/types.js";

const USAGE = `decant migrate status [--json]
decant migrate phase <SINGLE|DUAL_WRITE|SHADOW_READ|READ_TARGET|TARGET_PRIMARY|COMPLETE> [--force]
decant migrate backfill start [--rate N] [--concurrency N] [--wait]
decant migrate backfill pause|resume
decant migrate verify [--namespace NS] [--repair]
decant migrate reset          after COMPLETE, on a sidecar of the old store: make it a plain store again`;

type Status = MigrationStatus;
type Options = { json?: boolean; force?: boolean; rate?: string; concurrency?: string; wait?: boolean; namespace?: string; repair?: boolean };

function bar(done: number, total: number, width = 30): string {
  const ratio = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(ratio * 100).toFixed(1).padStart(5)}%`;
}

/** The backfill's total is an estimate (without tombstones and live writes): never shown below what is done. */
const shownTotal = (b: { scanned: string; estimated_total: string }) => Math.max(Number(b.scanned), Number(b.estimated_total));

export function formatStatus(s: Status): string {
  const lines = [
    `phase:      ${s.phase}${s.active ? "" : " (not yet acknowledged by every replica)"}  epoch ${s.epoch}`,
    `stores:     ${s.current_store} → ${s.target_store || "(no target)"}`,
    `replicas:   ${s.replicas.map((r) => `${r.id}=${r.acked_phase}@${r.acked_epoch} (${r.age_seconds.toFixed(1)}s ago)`).join(", ") || "none"}`,
  ];
  const b = s.backfill;
  if (b && b.state !== "idle") {
    lines.push(`backfill:   ${b.state} ${bar(Number(b.scanned), shownTotal(b))} scanned ${b.scanned}/${shownTotal(b)}, copied ${b.copied}, skipped ${b.skipped}, ${b.items_per_second.toFixed(0)} items/s${b.runner ? ` on ${b.runner}` : ""}${b.error ? ` (last error: ${b.error})` : ""}`);
    if (b.segments_total) {
      const workers = (b.workers ?? []).map((w) => `${w.id} ${w.segments} (${w.items_per_second.toFixed(0)}/s)`).join(", ");
      const eta = b.state === "running" && b.eta_seconds !== undefined ? `, about ${Math.ceil(b.eta_seconds)} s left` : "";
      lines.push(`segments:   ${b.segments_done} done, ${b.segments_running} running, ${b.segments_waiting} waiting of ${b.segments_total}${workers ? ` — ${workers}` : ""}${eta}`);
    }
  } else lines.push("backfill:   idle");
  lines.push(`journal:    ${s.repair_journal_depth} keys waiting for repair`);
  const v = s.last_verify;
  if (v) lines.push(`verify:     checked ${v.checked}, in sync ${v.in_sync}, missing ${v.missing}, stale ${v.stale}, extra ${v.extra}${v.done ? "" : " (running)"}`);
  return lines.join("\n");
}

const usage = (message: string) => Object.assign(new Error(`${message}\n${USAGE}`), { usage: true });

/** A command's work: prints what it did and returns the exit code. */
type Command = (client: DecantClient, arg: string | undefined, o: Options) => Promise<number>;

const print = (s: Status, o: Options) => process.stdout.write(o.json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);

const COMMANDS: Record<string, Command> = {
  status: async (client, _arg, o) => {
    print(await client.status(), o);
    return 0;
  },
  phase: async (client, arg, o) => {
    if (!arg) throw usage("migrate phase needs a phase name");
    // Any name goes to the server, which names the phases it knows when it refuses one.
    print(await client.request("migration", "SetPhase", { phase: arg.toUpperCase() as WirePhase, force: Boolean(o.force) }, 120_000), o);
    return 0;
  },
  backfill: async (client, arg, o) => {
    const s = await steerBackfill(client, arg, o);
    if (!o.wait) {
      print(s, o);
      return 0;
    }
    const last = await watchBackfill(client, s);
    print(last, o);
    return last.backfill?.state === "done" ? 0 : 4;
  },
  reset: async (client, _arg, o) => {
    print(await client.request("migration", "Reset", {}), o);
    return 0;
  },
  verify: (client, _arg, o) => verifyCommand(client, o),
};

function steerBackfill(client: DecantClient, arg: string | undefined, o: Options): Promise<Status> {
  switch (arg) {
    case "start":
      return client.request("migration", "StartBackfill", { rate_limit: Number(o.rate ?? 0), concurrency: Number(o.concurrency ?? 0) });
    case "pause":
      return client.request("migration", "PauseBackfill", {});
    case "resume":
      return client.request("migration", "ResumeBackfill", {});
    default:
      throw usage("migrate backfill takes start, pause or resume");
  }
}

/** A live progress bar until the backfill stops running; returns the last status. */
async function watchBackfill(client: DecantClient, s: Status): Promise<Status> {
  const tty = Boolean(process.stdout.isTTY);
  while (s.backfill?.state === "running") {
    const b = s.backfill;
    const line = `backfill ${bar(Number(b.scanned), shownTotal(b))} ${b.scanned}/${shownTotal(b)} ${b.items_per_second.toFixed(0)} items/s`;
    process.stdout.write(tty ? `\r${line}` : `${line}\n`);
    await new Promise((r) => setTimeout(r, 500));
    s = await client.status();
  }
  process.stdout.write(tty ? "\n" : "");
  return s;
}

/** Streams a verification's progress; exit 1 when the stores differ. */
async function verifyCommand(client: DecantClient, o: Options): Promise<number> {
  const tty = Boolean(process.stdout.isTTY);
  let last: VerifyReport | undefined;
  await new Promise<void>((resolve, reject) => {
    const stream = client.stream("Verify", { namespace: o.namespace ?? "", repair: Boolean(o.repair) });
    stream.on("data", (r: VerifyReport) => {
      last = r;
      const line = `verify: checked ${r.checked}, in sync ${r.in_sync}, missing ${r.missing}, stale ${r.stale}, extra ${r.extra}${o.repair ? `, repaired ${r.repaired}` : ""}`;
      process.stdout.write(tty && !r.done ? `\r${line}` : `${tty ? "\r" : ""}${line}\n`);
    });
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  const diffs = Number(last?.missing ?? 0) + Number(last?.stale ?? 0) + Number(last?.extra ?? 0);
  if (diffs > 0) {
    process.stdout.write(`differences: ${diffs}\n${(last?.sample_keys ?? []).map((k) => `  ${k}`).join("\n")}\n`);
    return 1;
  }
  process.stdout.write("the stores are equal\n");
  return 0;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      addr: { type: "string" },
      token: { type: "string" },
      json: { type: "boolean" },
      force: { type: "boolean" },
      rate: { type: "string" },
      concurrency: { type: "string" },
      wait: { type: "boolean" },
      namespace: { type: "string" },
      repair: { type: "boolean" },
    },
  });
}

export async function migrate(args: string[], clientFrom: (v: { addr?: string; token?: string }) => DecantClient): Promise<number> {
  const { values, positionals } = parse(args);
  const client = clientFrom(values);
  try {
    const [what, arg] = positionals;
    const command = what !== undefined && Object.hasOwn(COMMANDS, what) ? COMMANDS[what] : undefined;
    if (!command) throw usage(`unknown migrate command ${JSON.stringify(what ?? "")}`);
    return await command(client, arg, values);
  } catch (err) {
    if ((err as { usage?: boolean }).usage) {
      process.stderr.write(`decant: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  } finally {
    client.close();
  }
}
