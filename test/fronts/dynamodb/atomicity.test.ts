// Read-modify-write is atomic per item across sidecars: 16 concurrent `UpdateItem ADD counter :1`
// through the DynamoDB fronts of TWO sidecar processes on one PostgreSQL store end exactly at 16
// (and a conditional put race has exactly one winner).
import { expect } from "chai";
import { CreateTableCommand, GetItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { killAllSidecars, startSidecarProcess, type SidecarProcess } from "../../support/processes.js";
import { sdkClient, serverUp, testStore } from "./support.js";

const ok = await serverUp.postgres();

if (ok) {
  describe("DynamoDB front: atomic read-modify-write across two sidecar processes (PostgreSQL)", function () {
    this.timeout(120_000);
    const store = testStore("postgres");
    let procs: SidecarProcess[] = [];

    before(async () => {
      procs = await Promise.all([0, 1].map(() => startSidecarProcess({ DECANT_CURRENT: store.url }, { dynamodb: true })));
    });
    after(async () => {
      await Promise.all(procs.map((p) => p.stop()));
      await killAllSidecars();
      await store.cleanup();
    });

    it("16 concurrent UpdateItem ADD counter :1 through two processes: the count is exactly 16", async () => {
      const clients = procs.map((p) => sdkClient(`http://127.0.0.1:${p.dynamodbPort}`, { maxAttempts: 1 }));
      await clients[0]!.send(new CreateTableCommand({ TableName: "counters", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          clients[i % 2]!.send(new UpdateItemCommand({ TableName: "counters", Key: { id: { S: "c" } }, UpdateExpression: "ADD #c :one", ExpressionAttributeNames: { "#c": "counter" }, ExpressionAttributeValues: { ":one": { N: "1" } }, ReturnValues: "UPDATED_NEW" })),
        ),
      );
      // Every call saw a distinct count: 1..16.
      expect(results.map((r) => Number(r.Attributes!.counter!.N)).sort((a, b) => a - b)).to.deep.equal([...Array(16).keys()].map((i) => i + 1));
      for (const c of clients) expect((await c.send(new GetItemCommand({ TableName: "counters", Key: { id: { S: "c" } } }))).Item?.counter).to.deep.equal({ N: "16" });

      const race = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => clients[i % 2]!.send(new PutItemCommand({ TableName: "counters", Item: { id: { S: "once" }, by: { N: String(i) } }, ConditionExpression: "attribute_not_exists(id)" }))),
      );
      expect(race.filter((r) => r.status === "fulfilled")).to.have.length(1);
      for (const r of race) if (r.status === "rejected") expect((r.reason as Error).name).to.equal("ConditionalCheckFailedException");
      clients.forEach((c) => c.destroy());
    });
  });
}
