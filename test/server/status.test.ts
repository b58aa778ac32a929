// The one table from error kinds to gRPC codes (src/server/status.ts).
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { DecantError, fenced } from "../../src/protocol/errors.js";
import { codeOf, toServiceError } from "../../src/server/status.js";
import { decodeDetails } from "../../src/wire/status.js";

describe("gRPC status of errors", function () {
  it("a write refused by a store's fence is UNAVAILABLE (the client retries and reaches the current primary), reason FENCED", function () {
    const err = fenced("memory:", 3, 4n);
    expect(err.kind).to.equal("fenced");
    expect(codeOf(err)).to.equal(grpc.status.UNAVAILABLE);
    const status = toServiceError(err);
    expect(status.code).to.equal(grpc.status.UNAVAILABLE);
    expect(status.details).to.include("epoch 3").and.include("fence is at 4");
    expect(decodeDetails(status.metadata!.get("grpc-status-details-bin")[0] as Buffer).reason).to.equal("FENCED");
    expect(codeOf(new DecantError("fenced", "x"))).to.equal(grpc.status.UNAVAILABLE);
  });
});
