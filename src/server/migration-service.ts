// decant.v1.Migration: status and control of a live migration. When an admin token is
// configured, every call must carry it as a bearer token (checked for the whole service: auth.ts).
import { invalidArgument } from "../protocol/errors.js";
import { validateNamespace } from "../protocol/validate.js";
import type { MigrationController, MigrationStatus } from "../migration/controller.js";
import { isPhase, PHASES } from "../protocol/phases.js";
import { verify } from "../migration/verify.js";
import type { VerifyRecord } from "../migration/verify.js";
import type { Handlers, ServerStreamHandlerFactory, UnaryHandlerFactory } from "./rpc.js";
import { redactUrl } from "../backends/common.js";

/** GetStatusResponse: the controller's status in the wire's shape (uint64 as strings). */
export async function migrationStatus(controller: MigrationController) {
  return statusMessage(await controller.status());
}

export function statusMessage(st: MigrationStatus) {
  const b = st.backfill;
  return {
    phase: st.phase,
    active: st.active,
    epoch: String(st.epoch),
    replicas: st.replicas.map((r) => ({ id: r.id, acked_phase: r.phase, age_seconds: r.ageSeconds, acked_epoch: String(Math.max(0, r.epoch)) })),
    backfill: b
      ? {
          state: b.state,
          scanned: String(b.scanned),
          copied: String(b.copied),
          skipped: String(b.skipped),
          estimated_total: String(b.estimatedTotal),
          items_per_second: b.itemsPerSecond,
          error: b.error ?? "",
          runner: b.runner ?? "",
          segments_total: b.segmentCount ?? 0,
          segments_done: b.segments?.done ?? 0,
          segments_running: b.segments?.running ?? 0,
          segments_waiting: b.segments?.waiting ?? 0,
          workers: (b.segments?.workers ?? []).map((w) => ({ id: w.id, segments: w.segments, items_per_second: w.itemsPerSecond })),
          eta_seconds: b.state === "done" ? 0 : b.segments?.etaSeconds,
        }
      : { state: "idle" },
    last_verify: st.lastVerify ? verifyMessage(st.lastVerify.report) : undefined,
    repair_journal_depth: String(st.journalDepth),
    current_store: redactUrl(st.currentStore),
    target_store: st.targetStore ? redactUrl(st.targetStore) : "",
  };
}

const verifyMessage = (r: VerifyRecord["report"]) => ({
  checked: String(r.checked),
  in_sync: String(r.in_sync),
  missing: String(r.missing),
  stale: String(r.stale),
  extra: String(r.extra),
  repaired: String(r.repaired),
  done: r.done,
  sample_keys: r.sample_keys,
});

/** Every sidecar runs a controller (with or without a target); without one it refuses every step but SINGLE. */
export function migrationHandlers(c: MigrationController, unary: UnaryHandlerFactory<"Migration">, serverStream: ServerStreamHandlerFactory<"Migration">): Handlers<"Migration"> {
  const guarded = unary; // every call is authorised for the whole service (sidecar.ts: requireToken)
  return {
    GetStatus: guarded("GetStatus", () => migrationStatus(c)),
    SetPhase: guarded("SetPhase", async (req, _call, caller) => {
      if (!isPhase(req.phase)) throw invalidArgument("phase", `must be one of ${PHASES.join(", ")}`);
      await c.setPhase(req.phase, Boolean(req.force), caller);
      return migrationStatus(c);
    }),
    StartBackfill: guarded("StartBackfill", async (req) => {
      await c.backfill.start(Number(req.rate_limit ?? 0), Number(req.concurrency ?? 0));
      return migrationStatus(c);
    }),
    PauseBackfill: guarded("PauseBackfill", async () => {
      await c.backfill.setPaused(true);
      return migrationStatus(c);
    }),
    ResumeBackfill: guarded("ResumeBackfill", async () => {
      await c.backfill.setPaused(false);
      return migrationStatus(c);
    }),
    Reset: guarded("Reset", async () => {
      await c.reset();
      return migrationStatus(c);
    }),
    Verify: serverStream("Verify", async (req, call, caller) => {
      const namespace = req.namespace ? validateNamespace(req.namespace) : undefined;
      await verify(c, { namespace, repair: Boolean(req.repair), onProgress: (r) => call.write(verifyMessage(r)), call: caller });
    }),
  };
}
