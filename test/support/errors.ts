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
