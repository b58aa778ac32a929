// DeleteTable and CreateTable of one name through two sidecars on one store. Each sidecar trusts
// a table description for up to 1 s, so without a grace a sidecar still holding the old
// description would acknowledge writes into the deleted table's namespace after the name had
// been re-created elsewhere: writes the new table never shows, left behind in the store.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand, GetItemCommand, ListTablesCommand, PutItemCommand, ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../../src/backends/index.js";
import { rejection, startFront } from "./support.js";

const create = (client: DynamoDBClient, name: string) =>
  client.send(new CreateTableCommand({ TableName: name, AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));

describe("DynamoDB front: a table deleted and re-created through another sidecar", function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "decant-ddb-inc-"));
  const url = `sqlite:${join(dir, "shared.db")}`;
  let a: Awaited<ReturnType<typeof startFront>>;
  let b: Awaited<ReturnType<typeof startFront>>;

  before(async () => {
    a = await startFront(url);
    b = await startFront(url);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the old table nowhere once the name is free again, and leaves none of its items behind", async () => {
    await create(a.client, "again");
    await b.client.send(new PutItemCommand({ TableName: "again", Item: { id: { S: "old" } } })); // b now holds the description
    const deleted = await a.client.send(new DeleteTableCommand({ TableName: "again" }));
    expect(deleted.TableDescription?.TableStatus).to.equal("DELETING");
    const oldNamespace = `_ddb_t_${deleted.TableDescription!.TableId}`;

    // While it is DELETING: a reads the catalog and refuses; b may still write under its cached description
    // (a write concurrent with the deletion, as DynamoDB allows); the name cannot be taken yet.
    expect((await rejection(a.client.send(new GetItemCommand({ TableName: "again", Key: { id: { S: "old" } } })))).name).to.equal("ResourceNotFoundException");
    expect((await a.client.send(new DescribeTableCommand({ TableName: "again" }))).Table?.TableStatus).to.equal("DELETING");
    expect((await rejection(create(a.client, "again"))).name).to.equal("ResourceInUseException");
    expect((await rejection(a.client.send(new DeleteTableCommand({ TableName: "again" })))).name).to.equal("ResourceInUseException");
    await b.client.send(new PutItemCommand({ TableName: "again", Item: { id: { S: "late" } } })).catch((err: Error) => expect(err.name).to.equal("ResourceNotFoundException"));
    expect((await a.client.send(new ListTablesCommand({}))).TableNames).to.include("again");

    // Gone once the grace has passed (every cached description expired); then the name is free.
    const started = Date.now();
    for (;;) {
      const err = await a.client.send(new DescribeTableCommand({ TableName: "again" })).then(() => undefined, (e: Error) => e);
      if (err) {
        expect(err.name).to.equal("ResourceNotFoundException");
        break;
      }
      expect(Date.now() - started, "the deletion finishes after its grace").to.be.below(20_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Date.now() - started).to.be.at.least(900); // not before every sidecar's cached description expired
    await create(a.client, "again");

    // b cannot write into the old incarnation any more: what it writes, a sees in the new table.
    await b.client.send(new PutItemCommand({ TableName: "again", Item: { id: { S: "new" } } }));
    expect((await a.client.send(new GetItemCommand({ TableName: "again", Key: { id: { S: "new" } } }))).Item?.id).to.deep.equal({ S: "new" });
    expect((await a.client.send(new ScanCommand({ TableName: "again" }))).Items?.map((i) => i.id!.S)).to.deep.equal(["new"]);
    // The old namespace was dropped after the late write, so nothing of the old table is left in the store.
    const store = await openStore(url);
    try {
      expect(await store.namespaces()).to.not.include(oldNamespace);
    } finally {
      await store.close();
    }
  });
});
