// Query paging in both directions, with range conditions, filters and Limits, page by page through
// two sidecars in turn (so a page never resumes from the sidecar's own hint), on an ordered store
// (SQLite: a reverse Query walks up from the partition's start and stops at the start key or past
// the range) and on an unordered one (the DynamoDB backend: the partition is read and what the page
// can use is kept and sorted). Every answer is checked against the partition itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import { BatchWriteItemCommand, CreateTableCommand, QueryCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { startDynalite, type Dynalite } from "../../support/dynalite.js";
import { startFront } from "./support.js";

type Front = Awaited<ReturnType<typeof startFront>>;

const N = 60; // range keys -10 .. 49 in partition "p"; a few items in partitions "o" and "q"
const conditions: [string, Record<string, AttributeValue>, (n: number) => boolean][] = [
  ["pk = :p", {}, () => true],
  ["pk = :p AND sk < :a", { ":a": { N: "20" } }, (n) => n < 20],
  ["pk = :p AND sk <= :a", { ":a": { N: "-3" } }, (n) => n <= -3],
  ["pk = :p AND sk BETWEEN :a AND :b", { ":a": { N: "5" }, ":b": { N: "30" } }, (n) => n >= 5 && n <= 30],
  ["pk = :p AND sk >= :a", { ":a": { N: "40" } }, (n) => n >= 40],
  ["pk = :p AND sk = :a", { ":a": { N: "7" } }, (n) => n === 7],
];

for (const kind of ["sqlite", "dynamodb"] as const) {
  describe(`DynamoDB front: Query pages through two sidecars on ${kind === "sqlite" ? "an ordered store (SQLite)" : "an unordered store (the DynamoDB backend)"}`, function () {
    this.timeout(300_000);
    const dir = mkdtempSync(join(tmpdir(), "decant-ddb-query-"));
    let dynalite: Dynalite | undefined;
    let fronts: Front[] = [];
    // Limit 1 pages one item at a time: on the unordered store each page reads the partition (slow by design).
    const LIMITS = kind === "sqlite" ? [undefined, 1, 7] : [undefined, 7];
    const FILTERS = kind === "sqlite" ? [false, true] : [false];

    before(async () => {
      let url = `sqlite:${join(dir, "query.db")}`;
      if (kind === "dynamodb") {
        dynalite = await startDynalite();
        url = `dynamodb://decant_q_${randomBytes(4).toString("hex")}?region=us-east-1&endpoint=${dynalite.endpoint}`;
      }
      fronts = [await startFront(url)];
      fronts.push(await startFront(url));
      const c = fronts[0]!.client;
      await c.send(new CreateTableCommand({ TableName: "qtab", AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }], KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }], BillingMode: "PAY_PER_REQUEST" }));
      const items = [...Array.from({ length: N }, (_, i) => ({ pk: { S: "p" }, sk: { N: String(i - 10) }, odd: { BOOL: i % 2 === 1 } })), ...["o", "q"].flatMap((pk) => [0, 5, 50].map((n) => ({ pk: { S: pk }, sk: { N: String(n) }, odd: { BOOL: false } })))];
      for (let i = 0; i < items.length; i += 25) await c.send(new BatchWriteItemCommand({ RequestItems: { qtab: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    });
    after(async () => {
      for (const f of fronts) await f.stop();
      await dynalite?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("returns every matching item once, in range-key order either way, with Limit counting items read before the filter", async () => {
      let queries = 0;
      for (const [expr, values, match] of conditions) {
        for (const forward of [true, false]) {
          for (const limit of LIMITS) {
            for (const filter of FILTERS) {
              const all = Array.from({ length: N }, (_, i) => i - 10).filter(match);
              const read = forward ? all : [...all].reverse();
              const want = read.filter((n) => !filter || (n + 10) % 2 === 1);
              const got: number[] = [];
              let start: Record<string, AttributeValue> | undefined;
              let pages = 0;
              do {
                const page = await fronts[pages % 2]!.client.send(
                  new QueryCommand({ TableName: "qtab", KeyConditionExpression: expr, ExpressionAttributeValues: { ":p": { S: "p" }, ...values, ...(filter ? { ":t": { BOOL: true } } : {}) }, ...(filter ? { FilterExpression: "odd = :t" } : {}), ScanIndexForward: forward, Limit: limit, ExclusiveStartKey: start }),
                );
                const label = `${expr} forward=${forward} limit=${limit} filter=${filter} page ${pages}`;
                if (limit !== undefined) expect(page.ScannedCount, label).to.be.at.most(limit);
                got.push(...(page.Items ?? []).map((it) => Number(it.sk!.N)));
                start = page.LastEvaluatedKey;
                pages++;
                expect(pages, label).to.be.below(200);
              } while (start);
              expect(got, `${expr} forward=${forward} limit=${limit} filter=${filter}`).to.deep.equal(want);
              if (limit !== undefined) expect(pages).to.equal(Math.floor(read.length / limit) + 1);
              queries++;
            }
          }
        }
      }
      expect(queries).to.equal(conditions.length * 2 * FILTERS.length * LIMITS.length);
    });
  });
}
