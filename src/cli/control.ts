// decant control …: repair the coordination records themselves, on the stores (no sidecar).
import { parseArgs } from "node:util";
import { openStore } from "../backends/index.js";
import { ConfigError, loadConfig, type Config } from "../config/config.js";
import { DecantError, describe as describeError, isDecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { rebind } from "../migration/binding.js";
import { ControlStore } from "../migration/control.js";
import { DEFAULT_TIMINGS } from "../migration/controller.js";

export const CONTROL_USAGE = `decant control rebind --yes [--config decant.yaml]

Re-binds the current store (and the target, if configured and bound) to the configured control
store, after that control store was recreated at the same place or lost its state (a deleted
SQLite control file, a lost emptyDir, a dropped database). A sidecar refuses to start then:
"the control store now at X has another identity".

Use the configuration of the sidecars (same --config or DECANT_* variables). It refuses:
  - when the configured control store holds a migration underway (a phase other than SINGLE or
    COMPLETE, a fence or a pending phase, a running or paused backfill, journal entries): it is
    not a recreated, empty control store;
  - when a replica bound to the old control store still runs: it watches each binding for one
    replica TTL (migration.replica_ttl_ms) and refuses if a replica touched it meanwhile.
A replica of the old control store that starts touching after the re-bind stops writing.

What is lost: the phase, journal and backfill history of the old control store. If a migration
was underway there, find out which store was the primary before re-binding: the re-bound
stores start at SINGLE with the current store as primary. Run \`decant migrate verify\` after a
later migration's backfill as usual.

--yes is required: the command changes reserved records in the data stores.`;

class UsageError extends Error {}

export async function control(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { config: { type: "string", short: "c" }, yes: { type: "boolean" }, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  if (values.help) {
    process.stdout.write(`${CONTROL_USAGE}\n`);
    return 0;
  }
  if (positionals[0] !== "rebind" || positionals.length !== 1) return usage(positionals[0] ? `unknown control command ${JSON.stringify(positionals.join(" "))}` : "control needs a command");
  if (!values.yes) return usage("control rebind changes reserved records in the data stores: confirm with --yes");
  let config: Config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) return usage(`configuration error: ${err.message}`);
    throw err;
  }
  return runRebind(config);
}

function usage(message: string): number {
  process.stderr.write(`decant: ${message}\n\n${CONTROL_USAGE}\n`);
  return 2;
}

async function runRebind(config: Config): Promise<number> {
  const opened: Store[] = [];
  try {
    const current = await openStore(config.current, "current");
    opened.push(current);
    const target = config.target ? await openStore(config.target, "target") : undefined;
    if (target) opened.push(target);
    const controlStore = config.control ? await openStore(config.control, "control") : current;
    if (controlStore !== current) opened.push(controlStore);
    const observeMs = (config.migration.replica_ttl_ms ?? DEFAULT_TIMINGS.replicaTtlMs) + (config.migration.heartbeat_ms ?? DEFAULT_TIMINGS.heartbeatMs);
    process.stdout.write(`watching the bindings for ${(observeMs / 1000).toFixed(1)} s for a replica of the old control store that still runs…\n`);
    const stores = [{ role: "current", store: current }, ...(target ? [{ role: "target", store: target }] : [])];
    const results = await rebind({ stores, control: new ControlStore(controlStore), observeMs });
    for (const r of results) {
      const what = r.rebound ? `re-bound (was bound to ${r.from})` : r.from === "same" ? "already bound to it" : "not bound (left alone)";
      process.stdout.write(`${r.role} store ${r.store}: ${what}\n`);
    }
    process.stdout.write(`coordinated by the control store ${controlStore.description}; the sidecars can start\n`);
    return 0;
  } catch (err) {
    if (isDecantError(err, "failed_precondition")) {
      process.stderr.write(`decant: FAILED_PRECONDITION: ${err.message}\n`);
      return 1;
    }
    if (err instanceof DecantError && err.kind === "unavailable") {
      process.stderr.write(`decant: UNAVAILABLE: ${describeError(err)}\n`);
      return 3;
    }
    throw err;
  } finally {
    for (const s of opened) await s.close().catch(() => undefined);
  }
}
