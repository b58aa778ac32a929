// decant migrate …: watch and steer a live migration from a terminal.
import { parseArgs } from "node:util";
import type { DecantClient } from "../client/client.js";

const USAGE = `decant migrate status [--json]
decant migrate phase <SINGLE|DUAL_WRITE|SHADOW_READ|READ_TARGET|TARGET_PRIMARY|COMPLETE> [--force]
decant migrate backfill start [--rate N] [--concurrency N] [--wait]
decant migrate backfill pause|resume
decant migrate verify [--namespace NS] [--repair]
decant migrate reset          after COMPLETE, on a sidecar of the old store: make it a plain store again`;

type Status = {
  phase: string;
  active: boolean;
  epoch: string;
  replicas: { id: string; acked_phase: string; age_seconds: number; acked_epoch: string }[];
  backfill?: {
    state: string;
    scanned: string;
    copied: string;
    skipped: string;
    estimated_total: string;
    items_per_second: number;
    error: string;
    runner: string;
    segments_total?: number;
    segments_done?: number;
    segments_running?: number;
    segments_waiting?: number;
    workers?: { id: string; segments: number; items_per_second: number }[];
    eta_seconds?: number;
  };
  last_verify?: { checked: string; in_sync: string; missing: string; stale: string; extra: string; done: boolean };
  repair_journal_depth: string;
  current_store: string;
  target_store: string;
};

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

export async function migrate(args: string[], clientFrom: (v: { addr?: string; token?: string }) => DecantClient): Promise<number> {
  const { values, positionals } = parseArgs({
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
  const client = clientFrom(values);
  const tty = Boolean(process.stdout.isTTY);
  const print = (s: Status) => process.stdout.write(values.json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
  try {
    const [what, arg] = positionals;
    switch (what) {
      case "status":
        print(await client.call<Status>("migration", "GetStatus", {}));
        return 0;
      case "phase":
        if (!arg) throw Object.assign(new Error(`migrate phase needs a phase name\n${USAGE}`), { usage: true });
        print(await client.call<Status>("migration", "SetPhase", { phase: arg.toUpperCase(), force: Boolean(values.force) }, 120_000));
        return 0;
      case "backfill": {
        const method = arg === "start" ? "StartBackfill" : arg === "pause" ? "PauseBackfill" : arg === "resume" ? "ResumeBackfill" : undefined;
        if (!method) throw Object.assign(new Error(`migrate backfill takes start, pause or resume\n${USAGE}`), { usage: true });
        let s = await client.call<Status>("migration", method, method === "StartBackfill" ? { rate_limit: Number(values.rate ?? 0), concurrency: Number(values.concurrency ?? 0) } : {});
        if (!values.wait) {
          print(s);
          return 0;
        }
        // A live progress bar until the backfill stops running.
        while (s.backfill?.state === "running") {
          const b = s.backfill;
          const line = `backfill ${bar(Number(b.scanned), shownTotal(b))} ${b.scanned}/${shownTotal(b)} ${b.items_per_second.toFixed(0)} items/s`;
          process.stdout.write(tty ? `\r${line}` : `${line}\n`);
          await new Promise((r) => setTimeout(r, 500));
          s = await client.call<Status>("migration", "GetStatus", {});
        }
        process.stdout.write(tty ? "\n" : "");
        print(s);
        return s.backfill?.state === "done" ? 0 : 4;
      }
      case "reset":
        print(await client.call<Status>("migration", "Reset", {}));
        return 0;
      case "verify": {
        let last: Record<string, string | boolean> = {};
        await new Promise<void>((resolve, reject) => {
          const stream = client.stream("Verify", { namespace: values.namespace ?? "", repair: Boolean(values.repair) });
          stream.on("data", (r: Record<string, string | boolean>) => {
            last = r;
            const line = `verify: checked ${r.checked}, in sync ${r.in_sync}, missing ${r.missing}, stale ${r.stale}, extra ${r.extra}${values.repair ? `, repaired ${r.repaired}` : ""}`;
            process.stdout.write(tty && !r.done ? `\r${line}` : `${tty ? "\r" : ""}${line}\n`);
          });
          stream.on("end", resolve);
          stream.on("error", reject);
        });
        const diffs = Number(last.missing ?? 0) + Number(last.stale ?? 0) + Number(last.extra ?? 0);
        if (diffs > 0) {
          process.stdout.write(`differences: ${diffs}\n${((last.sample_keys as unknown as string[]) ?? []).map((k) => `  ${k}`).join("\n")}\n`);
          return 1;
        }
        process.stdout.write("the stores are equal\n");
        return 0;
      }
      default:
        throw Object.assign(new Error(`unknown migrate command ${JSON.stringify(what ?? "")}\n${USAGE}`), { usage: true });
    }
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
