// A live migration under DynamoDB-API traffic: AWS SDK clients send PutItem / UpdateItem ADD /
// DeleteItem / Query through the fronts of TWO sidecar processes while the stores walk SINGLE →
// DUAL_WRITE → backfill → SHADOW_READ → verify → READ_TARGET → TARGET_PRIMARY → COMPLETE
// (sqlite → postgres, and postgres → redis). No client error outside the write fence (the SDK
// retries the fence's 503s), every Query sees its own writes, counters are exact, both stores
// hold the same items at TARGET_PRIMARY (the front's catalog and item namespaces included), and
// after COMPLETE, reached under traffic too, every partition equals the clients' own record.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CreateTableCommand, DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../../src/backends/index.js";
import { CONTROL_NAMESPACE } from "../../../src/protocol/types.js";
import { CATALOG_NAMESPACE } from "../../../src/fronts/dynamodb/catalog.js";
import { compareStores, waitFor } from "../../support/migration.js";
import { killAllSidecars, startSidecarProcess, type SidecarProcess } from "../../support/processes.js";
import { sdkClient, serverUp, testStore, type TestStore } from "./support.js";

const FAST = { DECANT_HEARTBEAT_MS: "50", DECANT_LEASE_MS: "1500", DECANT_REPLICA_TTL_MS: "7000", DECANT_FENCE_TIMEOUT_MS: "5000", DECANT_BACKFILL_LEASE_MS: "1000" };

const pgUp = await serverUp.postgres();
const redisUp = await serverUp.redis();

function sqliteStore(): TestStore {
  const dir = mkdtempSync(join(tmpdir(), "decant-ddb-mig-"));
  return { name: "sqlite", url: `sqlite:${join(dir, "current.db")}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
}

const pairs: [string, () => TestStore, () => TestStore, boolean][] = [
  ["sqlite → postgres", sqliteStore, () => testStore("postgres"), pgUp],
  ["postgres → redis", () => testStore("postgres"), () => testStore("redis"), pgUp && redisUp],
];

for (const [title, makeCurrent, makeTarget, up] of pairs) {
  if (!up) continue;
  describe(`DynamoDB front: live migration ${title} under SDK traffic through two sidecar processes`, function () {
    this.timeout(240_000);
    const current = makeCurrent();
    const target = makeTarget();
    let procs: SidecarProcess[] = [];
    let clients: DynamoDBClient[] = [];

    before(async () => {
      const env = { DECANT_CURRENT: current.url, DECANT_TARGET: target.url, ...FAST };
      procs = await Promise.all(["a", "b"].map((id) => startSidecarProcess({ ...env, DECANT_REPLICA_ID: id }, { dynamodb: true })));
      // Generous retries: a write held past the fence is a 503 that the SDK sends again.
      clients = procs.map((p) => sdkClient(`http://127.0.0.1:${p.dynamodbPort}`, { maxAttempts: 12 }));
    });
    after(async () => {
      clients.forEach((c) => c.destroy());
      await Promise.all(procs.map((p) => p.stop()));
      await killAllSidecars();
      await current.cleanup();
      await target.cleanup();
    });

    const status = () => procs[0]!.client.call("migration", "GetStatus", {});
    const setPhase = async (phase: string) => {
      await procs[0]!.client.call("migration", "SetPhase", { phase, force: false });
      await waitFor(async () => (await status()).active, `${phase} active`);
      await new Promise((r) => setTimeout(r, 300)); // let traffic cross the boundary
    };
    const verify = () =>
      new Promise<{ missing: string; stale: string; extra: string; done: boolean }[]>((resolve, reject) => {
        const reports: { missing: string; stale: string; extra: string; done: boolean }[] = [];
        const stream = procs[1]!.client.stream("Verify", {});
        stream.on("data", (r) => reports.push(r));
        stream.on("end", () => resolve(reports));
        stream.on("error", reject);
      });

    it("walks SINGLE → … → COMPLETE with nothing lost and no client error", async () => {
      const c0 = clients[0]!;
      await c0.send(new CreateTableCommand({ TableName: "counters", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      await c0.send(
        new CreateTableCommand({
          TableName: "docs",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "n", AttributeType: "N" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "n", KeyType: "RANGE" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      // Preloaded items, some deleted (tombstones), for the backfill to copy.
      for (let i = 0; i < 60; i++) await c0.send(new PutItemCommand({ TableName: "docs", Item: { pk: { S: "pre" }, n: { N: String(i) }, v: { S: `pre${i}` } } }));
      for (let i = 0; i < 60; i += 7) await c0.send(new DeleteItemCommand({ TableName: "docs", Key: { pk: { S: "pre" }, n: { N: String(i) } } }));

      const counts = new Map<string, number>();
      const errors: string[] = [];
      let ops = 0;
      let stop = false;
      // Each worker owns its partitions, so its model of them is exact and every Query must match it.
      const models = [0, 1, 2, 3].map(() => new Map<string, Map<number, string>>());
      const worker = async (w: number, from: number) => {
        const client = clients[w % 2]!;
        const model = models[w]!;
        let i = from;
        while (!stop) {
          i++;
          const roll = (i * 7919 + w * 31) % 20;
          const pk = `w${w}-p${i % 3}`;
          const part = model.get(pk) ?? new Map<number, string>();
          model.set(pk, part);
          const n = (i * 13) % 25;
          try {
            if (roll < 8) {
              const id = `c${(i + w) % 10}`;
              await client.send(new UpdateItemCommand({ TableName: "counters", Key: { id: { S: id } }, UpdateExpression: "ADD cnt :one", ExpressionAttributeValues: { ":one": { N: "1" } } }));
              counts.set(id, (counts.get(id) ?? 0) + 1);
            } else if (roll < 14) {
              await client.send(new PutItemCommand({ TableName: "docs", Item: { pk: { S: pk }, n: { N: String(n) }, v: { S: `v${i}` } } }));
              part.set(n, `v${i}`);
            } else if (roll < 17) {
              await client.send(new DeleteItemCommand({ TableName: "docs", Key: { pk: { S: pk }, n: { N: String(n) } } }));
              part.delete(n);
            } else {
              const q = await client.send(new QueryCommand({ TableName: "docs", KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: pk } } }));
              const seen = (q.Items ?? []).map((it) => `${it.n!.N}=${it.v!.S}`).join(",");
              const want = [...part.entries()].sort(([a], [b]) => a - b).map(([k, v]) => `${k}=${v}`).join(",");
              if (seen !== want) errors.push(`stale Query of ${pk}: ${seen} vs ${want}`);
            }
            ops++;
          } catch (err) {
            errors.push(`${(err as Error).name}: ${(err as Error).message}`);
          }
        }
      };
      let workers = [0, 1, 2, 3].map((w) => worker(w, 0));
      try {
        expect((await status()).phase).to.equal("SINGLE");
        await setPhase("DUAL_WRITE");
        await procs[0]!.client.call("migration", "StartBackfill", { rate_limit: 0, concurrency: 2 });
        await waitFor(async () => (await status()).backfill.state === "done", "backfill done", 60_000);
        await setPhase("SHADOW_READ");
        const reports = await verify();
        const last = reports[reports.length - 1]!;
        expect(last.done).to.equal(true);
        expect([last.missing, last.stale, last.extra]).to.deep.equal(["0", "0", "0"]);
        await setPhase("READ_TARGET");
        await setPhase("TARGET_PRIMARY");
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        stop = true;
        await Promise.all(workers);
      }
      expect(errors.slice(0, 10)).to.deep.equal([]);
      expect(ops).to.be.greaterThan(100);

      // Both stores hold the same items, tombstones and versions included — the front's own
      // namespaces too (they begin with "_", so gRPC clients never see them, but they migrate).
      await waitFor(async () => Number((await status()).repair_journal_depth) === 0, "repair journal empty");
      const a = await openStore(current.url);
      const b = await openStore(target.url);
      try {
        const namespaces = [...new Set([...(await a.namespaces()), ...(await b.namespaces())])].filter((ns) => ns !== CONTROL_NAMESPACE);
        expect(namespaces).to.include(CATALOG_NAMESPACE);
        expect(namespaces.filter((ns) => ns.startsWith("_ddb_t_"))).to.have.length(2);
        const diff = await compareStores(a, b, namespaces);
        expect(diff.slice(0, 5), `${diff.length} differences`).to.deep.equal([]);
      } finally {
        await a.close();
        await b.close();
      }

      // TARGET_PRIMARY → COMPLETE under traffic too; then every partition and counter, through both fronts.
      stop = false;
      workers = [0, 1, 2, 3].map((w) => worker(w, 1_000_000));
      try {
        await new Promise((r) => setTimeout(r, 300));
        await setPhase("COMPLETE");
        await new Promise((r) => setTimeout(r, 300));
      } finally {
        stop = true;
        await Promise.all(workers);
      }
      expect(errors.slice(0, 10)).to.deep.equal([]);
      for (const model of models) {
        for (const [pk, part] of model) {
          const want = [...part.entries()].sort(([a], [b]) => a - b).map(([k, v]) => `${k}=${v}`).join(",");
          for (const c of clients) {
            const q = await c.send(new QueryCommand({ TableName: "docs", KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: pk } } }));
            expect((q.Items ?? []).map((it) => `${it.n!.N}=${it.v!.S}`).join(","), pk).to.equal(want);
          }
        }
      }
      for (const [id, n] of counts) {
        for (const c of clients) expect((await c.send(new GetItemCommand({ TableName: "counters", Key: { id: { S: id } } }))).Item?.cnt, id).to.deep.equal({ N: String(n) });
      }
      const pre = await clients[1]!.send(new QueryCommand({ TableName: "docs", KeyConditionExpression: "pk = :p", ExpressionAttributeValues: { ":p": { S: "pre" } } }));
      expect(pre.Count).to.equal(60 - 9);
    });
  });
}
