// The AWS SDK for JavaScript v3 (client-dynamodb and lib-dynamodb's document client) against
// the DynamoDB front of a real sidecar, over SQLite, PostgreSQL, MariaDB and Redis stores.
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  ExecuteStatementCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand, QueryCommand as DocQuery, UpdateCommand, paginateQuery, paginateScan } from "@aws-sdk/lib-dynamodb";
import { rejection, serverUp, startFront, testStore } from "./support.js";

const available = { sqlite: true, postgres: await serverUp.postgres(), mysql: await serverUp.mysql(), redis: await serverUp.redis() };

for (const kind of ["sqlite", "postgres", "mysql", "redis"] as const) {
  if (!available[kind]) continue;
  describe(`DynamoDB front over ${kind}: AWS SDK v3`, function () {
    this.timeout(60_000);
    const store = testStore(kind);
    const tag = randomBytes(3).toString("hex");
    const T = (n: string) => `t${tag}_${n}`;
    let f: Awaited<ReturnType<typeof startFront>>;

    before(async () => {
      f = await startFront(store.url);
      await f.client.send(new CreateTableCommand({ TableName: T("users"), AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      await f.client.send(
        new CreateTableCommand({
          TableName: T("events"),
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "n", AttributeType: "N" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "n", KeyType: "RANGE" }],
          ProvisionedThroughput: { ReadCapacityUnits: 5, WriteCapacityUnits: 5 },
        }),
      );
      await f.client.send(
        new CreateTableCommand({
          TableName: T("blobs"),
          AttributeDefinitions: [{ AttributeName: "h", AttributeType: "B" }, { AttributeName: "r", AttributeType: "B" }],
          KeySchema: [{ AttributeName: "h", KeyType: "HASH" }, { AttributeName: "r", KeyType: "RANGE" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    });
    after(async () => {
      await f?.stop();
      await store.cleanup();
    });

    describe("tables", () => {
      it("describes, lists in pages, updates (a no-op) and deletes tables; a second CreateTable is ResourceInUseException", async () => {
        const d = await f.client.send(new DescribeTableCommand({ TableName: T("events") }));
        expect(d.Table?.TableStatus).to.equal("ACTIVE");
        expect(d.Table?.KeySchema).to.deep.equal([{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "n", KeyType: "RANGE" }]);
        expect(d.Table?.ProvisionedThroughput?.ReadCapacityUnits).to.equal(5);
        expect(d.Table?.CreationDateTime).to.be.instanceOf(Date);

        const again = await rejection(f.client.send(new CreateTableCommand({ TableName: T("users"), AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" })));
        expect(again.name).to.equal("ResourceInUseException");

        const names: string[] = [];
        let start: string | undefined;
        do {
          const page = await f.client.send(new ListTablesCommand({ Limit: 1, ExclusiveStartTableName: start }));
          expect(page.TableNames!.length).to.be.at.most(1);
          names.push(...page.TableNames!);
          start = page.LastEvaluatedTableName;
        } while (start);
        expect(names.filter((n) => n.startsWith(`t${tag}_`))).to.deep.equal([T("blobs"), T("events"), T("users")]);

        const u = await f.client.send(new UpdateTableCommand({ TableName: T("events"), ProvisionedThroughput: { ReadCapacityUnits: 7, WriteCapacityUnits: 9 } }));
        expect(u.TableDescription?.ProvisionedThroughput?.WriteCapacityUnits).to.equal(9);

        await f.client.send(new CreateTableCommand({ TableName: T("gone"), AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
        await f.client.send(new PutItemCommand({ TableName: T("gone"), Item: { id: { S: "x" } } }));
        const del = await f.client.send(new DeleteTableCommand({ TableName: T("gone") }));
        expect(del.TableDescription?.TableStatus).to.equal("DELETING");
        // DELETING until every sidecar's cached description has expired (incarnations.test.ts re-creates it).
        expect((await f.client.send(new DescribeTableCommand({ TableName: T("gone") }))).Table?.TableStatus).to.equal("DELETING");
        expect((await rejection(f.client.send(new GetItemCommand({ TableName: T("gone"), Key: { id: { S: "x" } } })))).name).to.equal("ResourceNotFoundException");
        const reused = await rejection(f.client.send(new CreateTableCommand({ TableName: T("gone"), AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" })));
        expect(reused.name).to.equal("ResourceInUseException");
      });

      it("refuses secondary indexes, streams, TTL, transactions and PartiQL by name", async () => {
        const gsi = await rejection(
          f.client.send(
            new CreateTableCommand({
              TableName: T("gsi"),
              AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }, { AttributeName: "g", AttributeType: "S" }],
              KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
              GlobalSecondaryIndexes: [{ IndexName: "g", KeySchema: [{ AttributeName: "g", KeyType: "HASH" }], Projection: { ProjectionType: "ALL" } }],
              BillingMode: "PAY_PER_REQUEST",
            }),
          ),
        );
        expect(gsi.name).to.equal("ValidationException");
        expect(gsi.message).to.match(/GlobalSecondaryIndexes is not supported/);
        const tx = await rejection(f.client.send(new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: T("users"), Item: { id: { S: "a" } } } }] })));
        expect(tx.name).to.equal("ValidationException");
        expect(tx.message).to.match(/TransactWriteItems is not supported/);
        const ttl = await rejection(f.client.send(new UpdateTimeToLiveCommand({ TableName: T("users"), TimeToLiveSpecification: { AttributeName: "exp", Enabled: true } })));
        expect(ttl.message).to.match(/UpdateTimeToLive is not supported/);
        const partiql = await rejection(f.client.send(new ExecuteStatementCommand({ Statement: `SELECT * FROM "${T("users")}"` })));
        expect(partiql.message).to.match(/ExecuteStatement is not supported .*PartiQL/);
        expect((await rejection(f.client.send(new GetItemCommand({ TableName: "x", Key: { id: { S: "a" } } })))).name).to.equal("ValidationException");
      });
    });

    describe("items", () => {
      const every: Record<string, AttributeValue> = {
        id: { S: "every-type" },
        s: { S: "héllo ✓ 😀" },
        n: { N: "-12.50" },
        big: { N: "12345678901234567890123456789012345678" },
        b: { B: new Uint8Array([0, 1, 2, 255]) },
        t: { BOOL: true },
        z: { NULL: true },
        m: { M: { deep: { M: { x: { N: "1" } } }, l: { L: [{ S: "a" }, { N: "2" }] } } },
        ss: { SS: ["b", "a"] },
        ns: { NS: ["1", "2.5"] },
        bs: { BS: [new Uint8Array([1]), new Uint8Array([2])] },
      };

      it("puts and gets every attribute type back (numbers exact, in DynamoDB's canonical form)", async () => {
        await f.client.send(new PutItemCommand({ TableName: T("users"), Item: every }));
        const got = (await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "every-type" } }, ConsistentRead: true }))).Item!;
        expect(got.n).to.deep.equal({ N: "-12.5" });
        expect(got.big).to.deep.equal({ N: "12345678901234567890123456789012345678" });
        expect(Buffer.from(got.b!.B!).equals(Buffer.from([0, 1, 2, 255]))).to.equal(true);
        expect(got.s).to.deep.equal({ S: "héllo ✓ 😀" });
        expect(got.m).to.deep.equal(every.m);
        expect([...got.ss!.SS!].sort()).to.deep.equal(["a", "b"]);
        expect(got.z).to.deep.equal({ NULL: true });
        const projected = (await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "every-type" } }, ProjectionExpression: "#m.deep.x, m.l[1], t", ExpressionAttributeNames: { "#m": "m" } }))).Item;
        expect(projected).to.deep.equal({ m: { M: { deep: { M: { x: { N: "1" } } }, l: { L: [{ N: "2" }] } } }, t: { BOOL: true } });
        const legacy = (await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "every-type" } }, AttributesToGet: ["t", "nope"] }))).Item;
        expect(legacy).to.deep.equal({ t: { BOOL: true } });
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "absent" } } }))).Item).to.equal(undefined);
      });

      it("conditions: attribute_not_exists, comparisons, BETWEEN, IN, AND/OR/NOT, functions; ConditionalCheckFailedException carries the old item when asked", async () => {
        const put = (Item: Record<string, AttributeValue>, ConditionExpression?: string, values?: Record<string, AttributeValue>, names?: Record<string, string>) =>
          f.client.send(new PutItemCommand({ TableName: T("users"), Item, ConditionExpression, ExpressionAttributeValues: values, ExpressionAttributeNames: names, ReturnValuesOnConditionCheckFailure: "ALL_OLD" }));
        await put({ id: { S: "c1" }, age: { N: "30" }, tags: { SS: ["x", "y"] }, name: { S: "alice" } }, "attribute_not_exists(id)");
        const dup = await rejection(put({ id: { S: "c1" } }, "attribute_not_exists(id)"));
        expect(dup.name).to.equal("ConditionalCheckFailedException");
        expect((dup as unknown as { Item: Record<string, AttributeValue> }).Item.age).to.deep.equal({ N: "30" });
        const passes: [string, Record<string, AttributeValue>?][] = [
          ["age = :v", { ":v": { N: "30.0" } }],
          ["age BETWEEN :a AND :b", { ":a": { N: "18" }, ":b": { N: "65" } }],
          ["age IN (:a, :b)", { ":a": { N: "1" }, ":b": { N: "30" } }],
          ["(age > :a AND NOT age >= :b) OR attribute_exists(nothing)", { ":a": { N: "29" }, ":b": { N: "31" } }],
          ["begins_with(#n, :p) AND contains(tags, :t) AND size(tags) = :two AND attribute_type(age, :N)", { ":p": { S: "ali" }, ":t": { S: "y" }, ":two": { N: "2" }, ":N": { S: "N" } }],
        ];
        for (const [cond, values] of passes) {
          const needsName = cond.includes("#n");
          await put({ id: { S: "c1" }, age: { N: "30" }, tags: { SS: ["x", "y"] }, name: { S: "alice" } }, cond, values, needsName ? { "#n": "name" } : undefined);
        }
        const fails = await rejection(put({ id: { S: "c1" } }, "age < :v", { ":v": { N: "30" } }));
        expect(fails.name).to.equal("ConditionalCheckFailedException");
        // Without ReturnValuesOnConditionCheckFailure: no Item.
        const bare = await rejection(f.client.send(new DeleteItemCommand({ TableName: T("users"), Key: { id: { S: "c1" } }, ConditionExpression: "age > :v", ExpressionAttributeValues: { ":v": { N: "100" } } })));
        expect(bare.name).to.equal("ConditionalCheckFailedException");
        expect((bare as unknown as { Item?: unknown }).Item).to.equal(undefined);
        // Legacy Expected.
        const legacy = await rejection(f.client.send(new PutItemCommand({ TableName: T("users"), Item: { id: { S: "c1" } }, Expected: { age: { Value: { N: "31" } } } })));
        expect(legacy.name).to.equal("ConditionalCheckFailedException");
        const old = await f.client.send(new DeleteItemCommand({ TableName: T("users"), Key: { id: { S: "c1" } }, ConditionExpression: "age = :v", ExpressionAttributeValues: { ":v": { N: "30" } }, ReturnValues: "ALL_OLD" }));
        expect(old.Attributes?.name).to.deep.equal({ S: "alice" });
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "c1" } } }))).Item).to.equal(undefined);
      });

      it("UpdateItem: SET (nested paths, if_not_exists, list_append, + and -), REMOVE, ADD, DELETE, and every ReturnValues", async () => {
        const Key = { id: { S: "u1" } };
        const created = await f.client.send(
          new UpdateItemCommand({
            TableName: T("users"),
            Key,
            UpdateExpression: "SET a = :m, c = if_not_exists(c, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD s :s",
            ExpressionAttributeValues: { ":m": { M: { b: { L: [{ N: "0" }, { M: { c: { S: "old" } } }] } } }, ":zero": { N: "0" }, ":one": { N: "1" }, ":empty": { L: [] }, ":l": { L: [{ S: "x" }] }, ":s": { SS: ["p", "q"] } },
            ReturnValues: "ALL_NEW",
          }),
        );
        expect(created.Attributes?.c).to.deep.equal({ N: "1" });
        const updated = await f.client.send(
          new UpdateItemCommand({
            TableName: T("users"),
            Key,
            UpdateExpression: "SET a.b[1].c = :new, c = c - :half REMOVE l[0] DELETE s :p ADD cnt :one",
            ConditionExpression: "attribute_exists(a.b[1].c)",
            ExpressionAttributeValues: { ":new": { S: "new" }, ":half": { N: "0.5" }, ":p": { SS: ["p"] }, ":one": { N: "1" } },
            ReturnValues: "UPDATED_NEW",
          }),
        );
        expect(updated.Attributes?.c).to.deep.equal({ N: "0.5" });
        expect(updated.Attributes?.cnt).to.deep.equal({ N: "1" });
        const item = (await f.client.send(new GetItemCommand({ TableName: T("users"), Key }))).Item!;
        expect(item.a).to.deep.equal({ M: { b: { L: [{ N: "0" }, { M: { c: { S: "new" } } }] } } });
        expect(item.l).to.deep.equal({ L: [] });
        expect(item.s).to.deep.equal({ SS: ["q"] });
        const before = await f.client.send(new UpdateItemCommand({ TableName: T("users"), Key, UpdateExpression: "REMOVE cnt", ReturnValues: "UPDATED_OLD" }));
        expect(before.Attributes).to.deep.equal({ cnt: { N: "1" } });
        const allOld = await f.client.send(new UpdateItemCommand({ TableName: T("users"), Key, UpdateExpression: "SET c = :v", ExpressionAttributeValues: { ":v": { N: "9" } }, ReturnValues: "ALL_OLD" }));
        expect(allOld.Attributes?.c).to.deep.equal({ N: "0.5" });
        const keyChange = await rejection(f.client.send(new UpdateItemCommand({ TableName: T("users"), Key, UpdateExpression: "SET id = :v", ExpressionAttributeValues: { ":v": { S: "other" } } })));
        expect(keyChange.name).to.equal("ValidationException");
        // Legacy AttributeUpdates.
        await f.client.send(new UpdateItemCommand({ TableName: T("users"), Key, AttributeUpdates: { c: { Action: "ADD", Value: { N: "1" } } } }));
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key }))).Item?.c).to.deep.equal({ N: "10" });
      });

      it("refuses bad input with ValidationException and writes nothing: bad expressions name the token, unused values, wrong key, too large, key too long", async () => {
        const bad = await rejection(f.client.send(new UpdateItemCommand({ TableName: T("users"), Key: { id: { S: "v1" } }, UpdateExpression: "SET a = = :v", ExpressionAttributeValues: { ":v": { N: "1" } } })));
        expect(bad.name).to.equal("ValidationException");
        expect(bad.message).to.include("=");
        expect(bad.$metadata?.httpStatusCode).to.equal(400);
        const unused = await rejection(f.client.send(new PutItemCommand({ TableName: T("users"), Item: { id: { S: "v1" } }, ConditionExpression: "attribute_not_exists(id)", ExpressionAttributeValues: { ":x": { N: "1" } } })));
        expect(unused.name).to.equal("ValidationException");
        expect(unused.message).to.include(":x");
        const wrongKey = await rejection(f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { N: "1" } } })));
        expect(wrongKey.name).to.equal("ValidationException");
        const extraKey = await rejection(f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "1" }, other: { S: "x" } } })));
        expect(extraKey.message).to.include("does not match the schema");
        const tooBig = await rejection(f.client.send(new PutItemCommand({ TableName: T("users"), Item: { id: { S: "big" }, data: { S: "x".repeat(400 * 1024) } } })));
        expect(tooBig.name).to.equal("ValidationException");
        expect(tooBig.message).to.include("Item size has exceeded");
        const longKey = await rejection(f.client.send(new PutItemCommand({ TableName: T("users"), Item: { id: { S: "k".repeat(1500) } } })));
        expect(longKey.name).to.equal("ValidationException");
        expect(longKey.message).to.include("1024");
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "v1" } } }))).Item).to.equal(undefined);
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "big" } } }))).Item).to.equal(undefined);
      });
    });

    describe("reads", () => {
      before(async () => {
        // 30 events in partition "p" (n = 0..29, with negative and fractional numbers), 3 in "q".
        const ns = [...Array(27).keys()].map(String).concat(["-5", "-0.5", "1.5"]);
        for (let i = 0; i < ns.length; i += 25) {
          await f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("events")]: ns.slice(i, i + 25).map((n) => ({ PutRequest: { Item: { pk: { S: "p" }, n: { N: n }, even: { BOOL: Number(n) % 2 === 0 } } } })) } }));
        }
        for (const n of ["1", "2", "3"]) await f.client.send(new PutItemCommand({ TableName: T("events"), Item: { pk: { S: "q" }, n: { N: n } } }));
      });
      const numbers = (items: Record<string, AttributeValue>[] | undefined) => (items ?? []).map((i) => Number(i.n!.N));
      const expected = [-5, -0.5, ...[...Array(27).keys()].slice(0, 2), 1.5, ...[...Array(27).keys()].slice(2)];

      it("Query returns a partition in range-key order (numbers numerically), pages with Limit 2 in both directions", async () => {
        const all = await f.client.send(new QueryCommand({ TableName: T("events"), KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p" } } }));
        expect(numbers(all.Items)).to.deep.equal(expected);
        expect(all.Count).to.equal(30);
        expect(all.LastEvaluatedKey).to.equal(undefined);
        for (const forward of [true, false]) {
          const seen: number[] = [];
          let start: Record<string, AttributeValue> | undefined;
          let pages = 0;
          do {
            const page = await f.client.send(new QueryCommand({ TableName: T("events"), KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "p" } }, Limit: 2, ExclusiveStartKey: start, ScanIndexForward: forward }));
            expect(page.Items!.length).to.be.at.most(2);
            seen.push(...numbers(page.Items));
            start = page.LastEvaluatedKey;
            pages++;
          } while (start);
          expect(seen).to.deep.equal(forward ? expected : [...expected].reverse());
          expect(pages).to.equal(16); // 15 full pages, then an empty one (LastEvaluatedKey is named whenever Limit is hit)
        }
      });

      it("Query key conditions on the range key: =, <, <=, >, >=, BETWEEN; filter, projection, Select COUNT", async () => {
        const q = async (cond: string, values: Record<string, AttributeValue>, extra: Record<string, unknown> = {}) =>
          f.client.send(new QueryCommand({ TableName: T("events"), KeyConditionExpression: `pk = :p AND ${cond}`, ExpressionAttributeValues: { ":p": { S: "p" }, ...values }, ...extra }));
        expect(numbers((await q("n = :v", { ":v": { N: "1.50" } })).Items)).to.deep.equal([1.5]);
        expect(numbers((await q("n < :v", { ":v": { N: "1" } })).Items)).to.deep.equal([-5, -0.5, 0]);
        expect(numbers((await q("n <= :v", { ":v": { N: "1" } })).Items)).to.deep.equal([-5, -0.5, 0, 1]);
        expect(numbers((await q("n > :v", { ":v": { N: "24" } })).Items)).to.deep.equal([25, 26]);
        expect(numbers((await q("n >= :v", { ":v": { N: "25" } })).Items)).to.deep.equal([25, 26]);
        expect(numbers((await q("n BETWEEN :a AND :b", { ":a": { N: "-1" }, ":b": { N: "1.5" } })).Items)).to.deep.equal([-0.5, 0, 1, 1.5]);
        const filtered = await q("n BETWEEN :a AND :b", { ":a": { N: "0" }, ":b": { N: "9" }, ":t": { BOOL: true } }, { FilterExpression: "even = :t", ProjectionExpression: "n" });
        expect(filtered.Items).to.deep.equal([0, 2, 4, 6, 8].map((n) => ({ n: { N: String(n) } })));
        expect(filtered.ScannedCount).to.equal(11); // 0..9 and 1.5
        const limited = await q("n >= :a", { ":a": { N: "0" }, ":t": { BOOL: true } }, { FilterExpression: "even = :t", Limit: 3 });
        // Limit counts the items read (0, 1, 1.5), before the filter keeps the even ones.
        expect(numbers(limited.Items)).to.deep.equal([0]);
        expect(limited.ScannedCount).to.equal(3);
        expect(limited.LastEvaluatedKey).to.deep.equal({ pk: { S: "p" }, n: { N: "1.5" } });
        const count = await q("n >= :a", { ":a": { N: "20" } }, { Select: "COUNT" });
        expect(count.Count).to.equal(7);
        expect(count.Items).to.equal(undefined);
        const legacy = await f.client.send(new QueryCommand({ TableName: T("events"), KeyConditions: { pk: { ComparisonOperator: "EQ", AttributeValueList: [{ S: "q" }] }, n: { ComparisonOperator: "GT", AttributeValueList: [{ N: "1" }] } } }));
        expect(numbers(legacy.Items)).to.deep.equal([2, 3]);
        const noHash = await rejection(f.client.send(new QueryCommand({ TableName: T("events"), KeyConditionExpression: "n = :v", ExpressionAttributeValues: { ":v": { N: "1" } } })));
        expect(noHash.name).to.equal("ValidationException");
      });

      it("Scan pages with Limit 3, splits into segments that together hold every item once, filters and counts", async () => {
        const keyOf = (i: Record<string, AttributeValue>) => `${i.pk!.S}/${i.n!.N}`;
        const seen: string[] = [];
        let start: Record<string, AttributeValue> | undefined;
        do {
          const page = await f.client.send(new ScanCommand({ TableName: T("events"), Limit: 3, ExclusiveStartKey: start }));
          expect(page.Items!.length).to.be.at.most(3);
          seen.push(...page.Items!.map(keyOf));
          start = page.LastEvaluatedKey;
        } while (start);
        expect(seen.length).to.equal(33);
        expect(new Set(seen).size).to.equal(33);
        const segments: string[] = [];
        for (let s = 0; s < 4; s++) {
          let st: Record<string, AttributeValue> | undefined;
          do {
            const page = await f.client.send(new ScanCommand({ TableName: T("events"), Segment: s, TotalSegments: 4, Limit: 5, ExclusiveStartKey: st }));
            segments.push(...page.Items!.map(keyOf));
            st = page.LastEvaluatedKey;
          } while (st);
        }
        expect([...segments].sort()).to.deep.equal([...seen].sort());
        const filtered = await f.client.send(new ScanCommand({ TableName: T("events"), FilterExpression: "pk = :q", ExpressionAttributeValues: { ":q": { S: "q" } }, Select: "COUNT" }));
        expect(filtered.Count).to.equal(3);
        expect(filtered.ScannedCount).to.equal(33);
      });

      it("binary and unicode keys round-trip and order by bytes", async () => {
        const h = new Uint8Array([0, 255, 0]);
        const ranges = [[0], [0, 0], [1], [127], [128], [255], [255, 0]].map((b) => new Uint8Array(b));
        for (const r of [...ranges].reverse()) await f.client.send(new PutItemCommand({ TableName: T("blobs"), Item: { h: { B: h }, r: { B: r }, v: { S: Buffer.from(r).toString("hex") } } }));
        const q = await f.client.send(new QueryCommand({ TableName: T("blobs"), KeyConditionExpression: "h = :h", ExpressionAttributeValues: { ":h": { B: h } } }));
        expect(q.Items!.map((i) => i.v!.S)).to.deep.equal(ranges.map((r) => Buffer.from(r).toString("hex")));
        const bw = await f.client.send(new QueryCommand({ TableName: T("blobs"), KeyConditionExpression: "h = :h AND begins_with(r, :p)", ExpressionAttributeValues: { ":h": { B: h }, ":p": { B: new Uint8Array([255]) } } }));
        expect(bw.Items!.map((i) => i.v!.S)).to.deep.equal(["ff", "ff00"]);
        const names = ["a", "é", "z", "\u{1F600}", "\uFFFD", "日本"];
        for (const n of names) await f.client.send(new PutItemCommand({ TableName: T("events"), Item: { pk: { S: "ünï/cødé\u0001" }, n: { N: String(names.indexOf(n)) }, name: { S: n } } }));
        const u = await f.client.send(new QueryCommand({ TableName: T("events"), KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "ünï/cødé\u0001" } } }));
        expect(u.Items!.map((i) => i.name!.S)).to.deep.equal(names);
        expect((await f.client.send(new GetItemCommand({ TableName: T("events"), Key: { pk: { S: "ünï/cødé\u0001" }, n: { N: "3" } } }))).Item?.name).to.deep.equal({ S: "\u{1F600}" });
      });
    });

    describe("batches", () => {
      it("BatchWriteItem (25 puts and deletes), BatchGetItem (100 keys, some absent); limits and duplicates refused", async () => {
        const puts = [...Array(25).keys()].map((i) => ({ PutRequest: { Item: { id: { S: `b${i}` }, i: { N: String(i) } } } }));
        const w = await f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("users")]: puts } }));
        expect(w.UnprocessedItems).to.deep.equal({});
        await f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("users")]: [{ DeleteRequest: { Key: { id: { S: "b0" } } } }, { DeleteRequest: { Key: { id: { S: "b1" } } } }] } }));
        const keys = [...Array(100).keys()].map((i) => ({ id: { S: `b${i}` } }));
        const g = await f.client.send(new BatchGetItemCommand({ RequestItems: { [T("users")]: { Keys: keys, ProjectionExpression: "i" } } }));
        expect(g.Responses![T("users")]!.map((i) => Number(i.i!.N)).sort((a, b) => a - b)).to.deep.equal([...Array(23).keys()].map((i) => i + 2));
        expect(g.UnprocessedKeys).to.deep.equal({});
        const tooMany = await rejection(f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("users")]: [...puts, { PutRequest: { Item: { id: { S: "b99" } } } }] } })));
        expect(tooMany.name).to.equal("ValidationException");
        const tooManyKeys = await rejection(f.client.send(new BatchGetItemCommand({ RequestItems: { [T("users")]: { Keys: [...keys, { id: { S: "b100" } }] } } })));
        expect(tooManyKeys.name).to.equal("ValidationException");
        const dup = await rejection(f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("users")]: [puts[0]!, puts[0]!] } })));
        expect(dup.message).to.include("duplicates");
        const badOne = await rejection(f.client.send(new BatchWriteItemCommand({ RequestItems: { [T("users")]: [{ PutRequest: { Item: { id: { S: "ok-1" } } } }, { PutRequest: { Item: { nokey: { S: "x" } } } }] } })));
        expect(badOne.name).to.equal("ValidationException");
        expect((await f.client.send(new GetItemCommand({ TableName: T("users"), Key: { id: { S: "ok-1" } } }))).Item).to.equal(undefined);
      });
    });

    describe("document client (lib-dynamodb)", () => {
      it("puts, gets, updates and pages with native JavaScript values", async () => {
        await f.doc.send(new PutCommand({ TableName: T("users"), Item: { id: "doc1", name: "Zoë", tags: new Set(["a"]), profile: { age: 41, langs: ["ts", "py"] } } }));
        const got = await f.doc.send(new GetCommand({ TableName: T("users"), Key: { id: "doc1" } }));
        expect(got.Item).to.deep.equal({ id: "doc1", name: "Zoë", tags: new Set(["a"]), profile: { age: 41, langs: ["ts", "py"] } });
        const up = await f.doc.send(new UpdateCommand({ TableName: T("users"), Key: { id: "doc1" }, UpdateExpression: "SET profile.age = profile.age + :one, profile.langs[2] = :go", ExpressionAttributeValues: { ":one": 1, ":go": "go" }, ReturnValues: "ALL_NEW" }));
        expect(up.Attributes?.profile).to.deep.equal({ age: 42, langs: ["ts", "py", "go"] });
        const q = await f.doc.send(new DocQuery({ TableName: T("events"), KeyConditionExpression: "pk = :p AND n BETWEEN :a AND :b", ExpressionAttributeValues: { ":p": "p", ":a": 3, ":b": 5 } }));
        expect(q.Items?.map((i) => i.n)).to.deep.equal([3, 4, 5]);
        let count = 0;
        for await (const page of paginateQuery({ client: f.doc, pageSize: 4 }, { TableName: T("events"), KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": "p" } })) count += page.Items?.length ?? 0;
        expect(count).to.equal(30);
        let scanned = 0;
        for await (const page of paginateScan({ client: f.doc, pageSize: 7 }, { TableName: T("events") })) scanned += page.Count ?? 0;
        expect(scanned).to.be.at.least(33);
      });
    });
  });
}
