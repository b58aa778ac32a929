// Store errors as DynamoDB errors. An outage is a 503 (every AWS SDK retries it with backoff);
// bad input is a ValidationException; only a bug is a 500.
import { isDecantError } from "../../protocol/errors.js";
import { DynamoError } from "./types.js";

export function fromStoreError(err: unknown): DynamoError {
  if (err instanceof DynamoError) return err;
  if (!isDecantError(err)) return new DynamoError("InternalServerError", "internal server error", 500);
  switch (err.kind) {
    case "invalid_argument":
      return new DynamoError("ValidationException", err.message);
    case "unavailable":
    case "deadline_exceeded":
    case "failed_precondition": // e.g. writes refused while a migration's phase is not agreed yet
    case "fenced": // a write from a stale primary term: nothing was written, a retry is admitted anew
    case "cancelled": // nothing was started
      return new DynamoError("ServiceUnavailable", err.message, 503);
    case "unauthenticated":
      return new DynamoError("UnrecognizedClientException", err.message);
    case "unimplemented":
      return new DynamoError("ValidationException", err.message);
    default:
      return new DynamoError("InternalServerError", err.message, 500);
  }
}

/** True for errors a client should retry later (the store is down or busy). */
export function isRetryable(err: unknown): boolean {
  const e = fromStoreError(err);
  return e.status >= 500 || e.type === "ProvisionedThroughputExceededException";
}

export const notFound = (what: string) => new DynamoError("ResourceNotFoundException", `Requested resource not found${what ? `: ${what}` : ""}`);
