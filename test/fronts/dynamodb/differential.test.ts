// Differential test: one scripted sequence of mixed operations (seeded, so every run is the
// same) sent to dynalite (standing in for DynamoDB) and to Decant's front over SQLite; every
// answer must be the same once what legitimately differs is normalised (request ids, consumed
// capacity, table metadata, set order, Scan order, error messages).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { startDynalite, type Dynalite } from "../../support/dynalite.js";
import { sdkClient, startFront } from "./support.js";

type Item = Record<string, AttributeValue>;
type Step = { op: string; input: Record<string, unknown> };

/** mulberry32: a small seeded PRNG, so the script is the same on every run. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function script(n: number): Step[] {
  const r = rng(15);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (max: number) => Math.floor(r() * max);
  const hk = () => ({ id: { S: `k${int(8)}` } });
  const rk = () => ({ pk: { S: pick(["a", "b"]) }, sk: { N: String(int(12) - 3) } });
  const value = (): AttributeValue =>
    pick<() => AttributeValue>([
      () => ({ S: pick(["x", "y", "héllo", "zz"]) }),
      () => ({ N: pick(["1", "2.50", "-3", "100", "0.001"]) }),
      () => ({ SS: pick([["a"], ["a", "b"], ["c"]]) }),
      () => ({ L: [{ N: String(int(5)) }, { S: "l" }] }),
      () => ({ M: { inner: { N: String(int(5)) }, s: { S: "m" } } }),
      () => ({ BOOL: r() < 0.5 }),
    ])();
  const attrs = (): Item => {
    const out: Item = {};
    for (const name of ["a", "b", "c"]) if (r() < 0.6) out[name] = value();
    out.cnt = { N: String(int(10)) };
    return out;
  };
  const table = () => (r() < 0.5 ? { TableName: "diff_h", key: hk } : { TableName: "diff_r", key: rk });
  const conditions: [string, Item | undefined][] = [
    ["attribute_not_exists(cnt)", undefined],
    ["attribute_exists(cnt)", undefined],
    ["cnt < :v", { ":v": { N: "5" } }],
    ["cnt BETWEEN :lo AND :hi", { ":lo": { N: "2" }, ":hi": { N: "7" } }],
    ["attribute_type(a, :t) OR size(b) > :one", { ":t": { S: "S" }, ":one": { N: "1" } }],
    ["NOT (cnt IN (:x, :y))", { ":x": { N: "1" }, ":y": { N: "3" } }],
  ];
  const updates: [string, Item][] = [
    ["SET a = :v", { ":v": { S: "set" } }],
    ["ADD cnt :one", { ":one": { N: "1" } }],
    ["SET cnt = if_not_exists(cnt, :zero) + :two", { ":zero": { N: "0" }, ":two": { N: "2" } }],
    ["REMOVE b, c", {}],
    ["SET l = list_append(if_not_exists(l, :e), :x)", { ":e": { L: [] }, ":x": { L: [{ S: "x" }] } }],
    ["ADD tags :s", { ":s": { SS: ["p", "q"] } }],
    ["SET m = :m", { ":m": { M: { deep: { N: "1" } } } }],
    // Nested paths: on items that lack the parent both refuse; on items that have it both write.
    ["SET m.inner = :v, m.deep = if_not_exists(m.deep, :v)", { ":v": { N: "7" } }],
    ["SET l[0] = :v", { ":v": { S: "first" } }],
    ["REMOVE l[1], m.s", {}],
    ["DELETE tags :s", { ":s": { SS: ["p"] } }],
  ];
  const withValues = (input: Record<string, unknown>, values: Item | undefined) => (values && Object.keys(values).length ? { ...input, ExpressionAttributeValues: { ...(input.ExpressionAttributeValues as Item | undefined), ...values } } : input);
  const steps: Step[] = [];
  for (let i = 0; i < n; i++) {
    const t = table();
    const roll = r();
    if (roll < 0.22) {
      const c = r() < 0.4 ? pick(conditions) : undefined;
      steps.push({ op: "PutItem", input: withValues({ TableName: t.TableName, Item: { ...t.key(), ...attrs() }, ...(c ? { ConditionExpression: c[0] } : {}), ReturnValues: pick(["NONE", "ALL_OLD"]) }, c?.[1]) });
    } else if (roll < 0.42) {
      const [expr, values] = pick(updates);
      const c = r() < 0.3 ? pick(conditions) : undefined;
      const allValues = { ...values, ...(c?.[1] ?? {}) };
      steps.push({ op: "UpdateItem", input: withValues({ TableName: t.TableName, Key: t.key(), UpdateExpression: expr, ...(c ? { ConditionExpression: c[0] } : {}), ReturnValues: pick(["NONE", "ALL_OLD", "ALL_NEW"]) }, allValues) });
    } else if (roll < 0.52) {
      const c = r() < 0.4 ? pick(conditions) : undefined;
      steps.push({ op: "DeleteItem", input: withValues({ TableName: t.TableName, Key: t.key(), ...(c ? { ConditionExpression: c[0] } : {}), ReturnValues: pick(["NONE", "ALL_OLD"]) }, c?.[1]) });
    } else if (roll < 0.67) {
      steps.push({ op: "GetItem", input: { TableName: t.TableName, Key: t.key(), ...(r() < 0.3 ? { ProjectionExpression: "cnt, a, m.inner" } : {}) } });
    } else if (roll < 0.85) {
      const range = pick<[string, Item]>([
        ["", {}],
        [" AND sk > :s", { ":s": { N: "2" } }],
        [" AND sk BETWEEN :s AND :t", { ":s": { N: "-1" }, ":t": { N: "4" } }],
        [" AND sk <= :s", { ":s": { N: "0" } }],
      ]);
      const filter = r() < 0.3 ? { FilterExpression: "cnt >= :f" } : {};
      const values: Item = { ":p": { S: pick(["a", "b"]) }, ...range[1], ...(filter.FilterExpression ? { ":f": { N: "4" } } : {}) };
      steps.push({ op: "QueryAll", input: { TableName: "diff_r", KeyConditionExpression: `pk = :p${range[0]}`, ExpressionAttributeValues: values, ...filter, Limit: pick([1, 2, 3, 50]), ScanIndexForward: r() < 0.7, ...(r() < 0.2 ? { Select: "COUNT" } : {}) } });
    } else if (roll < 0.9) {
      steps.push({ op: "Scan", input: { TableName: t.TableName, ...(r() < 0.5 ? { FilterExpression: "cnt > :f", ExpressionAttributeValues: { ":f": { N: "3" } } } : {}) } });
    } else if (roll < 0.95) {
      const keys = new Map<string, Item>();
      for (let j = 0; j < 4; j++) {
        const k = t.key();
        keys.set(JSON.stringify(k), k);
      }
      if (r() < 0.5) steps.push({ op: "BatchGetItem", input: { RequestItems: { [t.TableName]: { Keys: [...keys.values()] } } } });
      else steps.push({ op: "BatchWriteItem", input: { RequestItems: { [t.TableName]: [...keys.values()].map((k, j) => (j % 2 ? { DeleteRequest: { Key: k } } : { PutRequest: { Item: { ...k, ...attrs() } } })) } } });
    } else {
      // Bad input: both must refuse it with the same error type.
      steps.push(
        pick<Step>([
          { op: "UpdateItem", input: { TableName: "diff_h", Key: hk(), UpdateExpression: "SET a = :v", ExpressionAttributeValues: { ":v": { S: "1" }, ":unused": { S: "2" } } } },
          { op: "GetItem", input: { TableName: "diff_h", Key: { id: { N: "1" } } } },
          { op: "PutItem", input: { TableName: "diff_r", Item: { pk: { S: "a" } } } },
          { op: "UpdateItem", input: { TableName: "diff_h", Key: hk(), UpdateExpression: "SET id = :v", ExpressionAttributeValues: { ":v": { S: "1" } } } },
          { op: "GetItem", input: { TableName: "diff_missing", Key: hk() } },
          { op: "UpdateItem", input: { TableName: "diff_h", Key: hk(), UpdateExpression: "ADD a :v", ExpressionAttributeValues: { ":v": { BOOL: true } } } },
        ]),
      );
    }
  }
  return steps;
}

const COMMANDS: Record<string, new (input: never) => unknown> = { PutItem: PutItemCommand, UpdateItem: UpdateItemCommand, DeleteItem: DeleteItemCommand, GetItem: GetItemCommand, Query: QueryCommand, Scan: ScanCommand, BatchGetItem: BatchGetItemCommand, BatchWriteItem: BatchWriteItemCommand };

/** Sets in member order, numbers in canonical form, binary as base64: what equal answers share. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.SS)) return { SS: [...(o.SS as string[])].sort() };
    if (Array.isArray(o.NS)) return { NS: (o.NS as string[]).map((n) => String(Number(n))).sort() };
    if (typeof o.N === "string" && Object.keys(o).length === 1) return { N: String(Number(o.N)) };
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) if (k !== "$metadata" && k !== "ConsumedCapacity" && o[k] !== undefined) out[k] = normalize(o[k]);
    return out;
  }
  return v;
}

const sortItems = (items: unknown) => (Array.isArray(items) ? [...items].map(normalize).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1)) : items);

async function run(client: DynamoDBClient, step: Step): Promise<unknown> {
  try {
    if (step.op === "QueryAll") {
      // Every page, in order: LastEvaluatedKey and page boundaries must agree too.
      const pages: unknown[] = [];
      let start: Item | undefined;
      do {
        const page = (await client.send(new QueryCommand({ ...(step.input as object), ExclusiveStartKey: start } as never))) as { LastEvaluatedKey?: Item };
        pages.push(normalize(page));
        start = page.LastEvaluatedKey;
      } while (start && pages.length < 100);
      return pages;
    }
    const out = (await client.send(new COMMANDS[step.op]!(step.input as never) as never)) as unknown as Record<string, unknown>;
    if (step.op === "Scan") return { ...(normalize(out) as object), Items: sortItems(out.Items) };
    if (step.op === "BatchGetItem") return { ...(normalize(out) as object), Responses: Object.fromEntries(Object.entries((out.Responses ?? {}) as Record<string, unknown>).map(([t, items]) => [t, sortItems(items)])) };
    return normalize(out);
  } catch (err) {
    const e = err as Error & { $metadata?: unknown };
    if (!e.$metadata) throw err;
    return { error: e.name };
  }
}

describe("DynamoDB front: differential test against dynalite", function () {
  this.timeout(300_000);
  let dynalite: Dynalite;
  let f: Awaited<ReturnType<typeof startFront>>;
  let reference: DynamoDBClient;
  let ours: DynamoDBClient;
  const dir = mkdtempSync(join(tmpdir(), "decant-ddb-diff-"));

  before(async () => {
    dynalite = await startDynalite();
    f = await startFront(`sqlite:${join(dir, "diff.db")}`);
    reference = sdkClient(dynalite.endpoint, { maxAttempts: 1 });
    ours = sdkClient(f.endpoint, { maxAttempts: 1 });
    for (const c of [reference, ours]) {
      await c.send(new CreateTableCommand({ TableName: "diff_h", AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }], KeySchema: [{ AttributeName: "id", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      await c.send(
        new CreateTableCommand({
          TableName: "diff_r",
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }, { AttributeName: "sk", AttributeType: "N" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }, { AttributeName: "sk", KeyType: "RANGE" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    }
    // dynalite's tables start CREATING: wait until they take writes.
    for (;;) {
      const ok = await reference.send(new GetItemCommand({ TableName: "diff_r", Key: { pk: { S: "a" }, sk: { N: "0" } } })).then(() => true, () => false);
      const ok2 = await reference.send(new GetItemCommand({ TableName: "diff_h", Key: { id: { S: "a" } } })).then(() => true, () => false);
      if (ok && ok2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    reference?.destroy();
    ours?.destroy();
    await f?.stop();
    await dynalite?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives the same answers as dynalite for 260 scripted mixed operations", async () => {
    const steps = script(260);
    const counts: Record<string, number> = {};
    const differences: string[] = [];
    for (const [i, step] of steps.entries()) {
      const [want, got] = [await run(reference, step), await run(ours, step)];
      const key = (want as { error?: string }).error ? `${step.op}:error` : step.op;
      counts[key] = (counts[key] ?? 0) + 1;
      if (JSON.stringify(want) !== JSON.stringify(got)) differences.push(`#${i} ${step.op} ${JSON.stringify(step.input)}\n  dynalite: ${JSON.stringify(want)}\n  decant:   ${JSON.stringify(got)}`);
    }
    expect(differences.slice(0, 5).join("\n"), `${differences.length} differences`).to.equal("");
    // The script really exercises every kind of operation, successes and refusals.
    for (const op of ["PutItem", "UpdateItem", "DeleteItem", "GetItem", "QueryAll", "Scan", "BatchGetItem", "BatchWriteItem", "UpdateItem:error", "PutItem:error"]) expect(counts[op] ?? 0, op).to.be.greaterThan(0);
  });
});
