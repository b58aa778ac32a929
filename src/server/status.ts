// The one place where errors become gRPC statuses (nice-grpc style). Expected failures get
// their own code and a google.rpc.Status in grpc-status-details-bin; only a bug is INTERNAL.
import * as grpc from "@grpc/grpc-js";
import { isDecantError, type DecantError, type ErrorKind } from "../protocol/errors.js";
import { loadProtocol } from "./proto.js";

const CODES: Record<ErrorKind, grpc.status> = {
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  version_mismatch: grpc.status.FAILED_PRECONDITION,
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
  deadline_exceeded: grpc.status.DEADLINE_EXCEEDED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  unimplemented: grpc.status.UNIMPLEMENTED,
  fenced: grpc.status.UNAVAILABLE, // the client retries and reaches the current primary
  cancelled: grpc.status.CANCELLED,
  internal: grpc.status.INTERNAL,
};

export const ERROR_DOMAIN = "decant.dev";
/** Trailing metadata key with the current version, for clients that skip the rich details. */
export const CURRENT_VERSION_METADATA = "decant-current-version";

export const codeOf = (err: unknown): grpc.status => (isDecantError(err) ? CODES[err.kind] : grpc.status.INTERNAL);

export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (!isDecantError(err)) {
    return { code: grpc.status.INTERNAL, details: `internal error: ${err instanceof Error ? err.message : String(err)}` };
  }
  const metadata = new grpc.Metadata();
  if (err.currentVersion !== undefined) metadata.set(CURRENT_VERSION_METADATA, err.currentVersion.toString());
  metadata.set("grpc-status-details-bin", encodeDetails(err));
  return { code: CODES[err.kind], details: err.message, metadata };
}

function encodeDetails(err: DecantError): Buffer {
  const { root } = loadProtocol();
  const Status = root.lookupType("google.rpc.Status");
  const details: { type_url: string; value: Uint8Array }[] = [];
  const info = root.lookupType("google.rpc.ErrorInfo");
  const meta: Record<string, string> = {};
  if (err.currentVersion !== undefined) meta.current_version = err.currentVersion.toString();
  if (err.field) meta.field = err.field;
  details.push({
    type_url: "type.googleapis.com/google.rpc.ErrorInfo",
    value: info.encode(info.create({ reason: err.kind.toUpperCase(), domain: ERROR_DOMAIN, metadata: meta })).finish(),
  });
  if (err.field) {
    const bad = root.lookupType("google.rpc.BadRequest");
    details.push({
      type_url: "type.googleapis.com/google.rpc.BadRequest",
      value: bad.encode(bad.create({ field_violations: [{ field: err.field, description: err.message }] })).finish(),
    });
  }
  return Buffer.from(Status.encode(Status.create({ code: CODES[err.kind], message: err.message, details })).finish());
}

/** Decodes grpc-status-details-bin (for the CLI and tests). */
export function decodeDetails(buf: Buffer): { reason?: string; metadata: Record<string, string>; fieldViolations: { field: string; description: string }[] } {
  const { root } = loadProtocol();
  const status = root.lookupType("google.rpc.Status").decode(buf) as unknown as { details: { type_url: string; value: Uint8Array }[] };
  const out: ReturnType<typeof decodeDetails> = { metadata: {}, fieldViolations: [] };
  for (const d of status.details) {
    if (d.type_url.endsWith("google.rpc.ErrorInfo")) {
      const info = root.lookupType("google.rpc.ErrorInfo").decode(d.value) as unknown as { reason: string; metadata: Record<string, string> };
      out.reason = info.reason;
      out.metadata = info.metadata;
    } else if (d.type_url.endsWith("google.rpc.BadRequest")) {
      out.fieldViolations = (root.lookupType("google.rpc.BadRequest").decode(d.value) as unknown as { field_violations: { field: string; description: string }[] }).field_violations;
    }
  }
  return out;
}

export const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k]));
