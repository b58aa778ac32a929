// decant.v1.Migration: status and control of a live migration. When an admin token is
// configured, every call must carry it as a bearer token.
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { DecantError, invalidArgument } from "../protocol/errors.js";
import { validateNamespace } from "../protocol/validate.js";
import type { MigrationController } from "../migration/controller.js";
import { isPhase, PHASES } from "../migration/phases.js";
import { verify } from "../migration/verify.js";
import type { BackfillRecord } from "../migration/backfill.js";
import { PHASE_KEY, VERIFY_KEY, type PhaseRecord } from "../migration/control.js";
import type { VerifyRecord } from "../migration/verify.js";
import type { ServerStreamHandlerFactory, UnaryHandlerFactory } from "./rpc.js";
import { redactUrl } from "../backends/common.js";

export function checkToken(metadata: grpc.Metadata, token: string | undefined): void {
  if (!token) return;
  const header = String(metadata.get("authorization")[0] ?? "");
  const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
  const want = Buffer.from(token);
  if (!header.match(/^Bearer\s+/i) || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new DecantError("unauthenticated", "the Migration service needs the admin token: send the header authorization: Bearer <token>");
  }
}

type Req = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** GetStatusResponse, built from the control store's records. */
export async function migrationStatus(controller: MigrationController) {
  const c = controller;
  const [rec, replicas, bf, vr, depth] = await Promise.all([c.control.read<PhaseRecord>(PHASE_KEY), c.replicas(), c.backfill.read(), c.control.read<VerifyRecord>(VERIFY_KEY), c.journalDepth()]);
  const b: BackfillRecord | undefined = bf?.value;
  const epoch = rec?.value.epoch ?? c.epoch;
  return {
    // The shared record, not this replica's cached view: any replica answers the same.
    phase: rec?.value.phase ?? c.phase,
    active: !rec?.value.fence && replicas.filter((r) => r.live).every((r) => r.epoch >= epoch),
    epoch: String(epoch),
    replicas: replicas.filter((r) => r.live).map((r) => ({ id: r.id, acked_phase: r.phase, age_seconds: r.ageSeconds, acked_epoch: String(Math.max(0, r.epoch)) })),
    backfill: b
      ? {
          state: b.state,
          scanned: String(b.scanned),
          copied: String(b.copied),
          skipped: String(b.skipped),
          estimated_total: String(b.estimatedTotal),
          // While running: the recent rate (0 when stalled); afterwards: the average of the run.
          items_per_second: b.state === "running" ? c.backfill.currentRate(b) : b.activeMs > 0 ? (b.scanned / b.activeMs) * 1000 : 0,
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
    last_verify: vr ? verifyMessage(vr.value.report) : undefined,
    repair_journal_depth: String(depth),
    current_store: redactUrl(c.current.description),
    target_store: c.target ? redactUrl(c.target.description) : "",
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
export function migrationHandlers(c: MigrationController, token: string | undefined, unary: UnaryHandlerFactory, serverStream: ServerStreamHandlerFactory): grpc.UntypedServiceImplementation {
  const guarded = <T>(rpc: string, fn: (req: Req) => Promise<T>) =>
    unary(rpc, async (req: Req, call: grpc.ServerUnaryCall<Req, T>) => {
      checkToken(call.metadata, token);
      return fn(req);
    });

  return {
    GetStatus: guarded("GetStatus", () => migrationStatus(c)),
    SetPhase: guarded("SetPhase", async (req) => {
      if (!isPhase(req.phase)) throw invalidArgument("phase", `must be one of ${PHASES.join(", ")}`);
      await c.setPhase(req.phase, Boolean(req.force));
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
    Verify: serverStream("Verify", async (req: Req, call: grpc.ServerWritableStream<Req, unknown>) => {
      checkToken(call.metadata, token);
      const namespace = req.namespace ? validateNamespace(req.namespace) : undefined;
      await verify(c, { namespace, repair: Boolean(req.repair), onProgress: (r) => call.write(verifyMessage(r)) });
    }),
  };
}
