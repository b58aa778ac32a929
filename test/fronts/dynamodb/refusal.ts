// Shared by the expression/item/key/number tests: the message of the DynamoError a call throws.
import { expect } from "chai";
import { DynamoError } from "../../../src/fronts/dynamodb/types.js";

export function refusal(f: () => unknown, type = "ValidationException"): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(DynamoError);
    expect((e as DynamoError).type).to.equal(type);
    return (e as DynamoError).message;
  }
  throw new Error(`expected a ${type}`);
}
