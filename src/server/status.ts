// The one place where errors become gRPC statuses (nice-grpc style). Expected failures get
// their own code and a google.rpc.Status in grpc-status-details-bin; only a bug is INTERNAL.
import * as grpc from "@grpc/grpc-js";
import { isDecantError, type ErrorKind } from "../protocol/errors.js";
import { CURRENT_VERSION_METADATA, encodeDetails, STATUS_DETAILS_METADATA } from "../wire/status.js";

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

export const codeOf = (err: unknown): grpc.status => (isDecantError(err) ? CODES[err.kind] : grpc.status.INTERNAL);

export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (!isDecantError(err)) {
    return { code: grpc.status.INTERNAL, details: `internal error: ${err instanceof Error ? err.message : String(err)}` };
  }
  const metadata = new grpc.Metadata();
  if (err.currentVersion !== undefined) metadata.set(CURRENT_VERSION_METADATA, err.currentVersion.toString());
  const code = CODES[err.kind];
  metadata.set(STATUS_DETAILS_METADATA, encodeDetails({ code, message: err.message, reason: err.kind.toUpperCase(), field: err.field, currentVersion: err.currentVersion }));
  return { code, details: err.message, metadata };
}
