import { expect } from "chai";
import { isDecantError, type DecantError } from "../../src/protocol/errors.js";

/** Awaits a call that must fail with a DecantError, and returns the error. */
export async function failure(p: Promise<unknown>): Promise<DecantError> {
  try {
    await p;
  } catch (err) {
    expect(isDecantError(err), String(err)).to.equal(true);
    return err as DecantError;
  }
  return expect.fail("expected the call to fail");
}

/** Awaits a gRPC call that must fail, and returns its ServiceError (code, details, metadata). */
export async function grpcError(p: Promise<unknown>): Promise<import("@grpc/grpc-js").ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as import("@grpc/grpc-js").ServiceError;
  }
  return expect.fail("expected the call to fail");
}
