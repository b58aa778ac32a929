// CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable. Capacity and billing are
// recorded and described but mean nothing here: the store's own capacity is what there is.
import type { TableInfo } from "../catalog.js";
import { validation, type KeySchema } from "../types.js";
import { object, optionalEnum, optionalInt, refuse, tableName, type Input, type OpContext } from "./common.js";

const SCALAR = ["S", "N", "B"] as const;

function attributeDefinitions(raw: unknown): TableInfo["attributeDefinitions"] {
  if (!Array.isArray(raw) || raw.length === 0) throw validation("1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null");
  return raw.map((d, i) => {
    const def = object(d, `AttributeDefinitions[${i}]`);
    if (typeof def.AttributeName !== "string" || def.AttributeName.length === 0 || def.AttributeName.length > 255) throw validation(`AttributeDefinitions[${i}].AttributeName must be a name of 1 to 255 characters`);
    if (!(SCALAR as readonly unknown[]).includes(def.AttributeType)) throw validation(`1 validation error detected: Value '${String(def.AttributeType)}' at 'attributeDefinitions.${i + 1}.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]`);
    return { AttributeName: def.AttributeName, AttributeType: def.AttributeType as "S" | "N" | "B" };
  });
}

function keySchema(raw: unknown, defs: TableInfo["attributeDefinitions"]): KeySchema {
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > 2) throw validation("1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: Member must have length between 1 and 2");
  const elements = raw.map((e, i) => object(e, `KeySchema[${i}]`));
  const typeOf = (name: unknown): "S" | "N" | "B" => {
    const def = defs.find((d) => d.AttributeName === name);
    if (!def) throw validation("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [" + elements.map((e) => String(e.AttributeName)).join(", ") + "], AttributeDefinitions: [" + defs.map((d) => d.AttributeName).join(", ") + "]");
    return def.AttributeType;
  };
  const first = elements[0]!;
  const second = elements[1];
  if (first.KeyType !== "HASH") throw validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
  if (second && second.KeyType !== "RANGE") throw validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type");
  if (second && second.AttributeName === first.AttributeName) throw validation("Both the Hash Key and the Range Key element in the KeySchema have the same name");
  const schema: KeySchema = { hash: { name: String(first.AttributeName), type: typeOf(first.AttributeName) } };
  if (second) schema.range = { name: String(second.AttributeName), type: typeOf(second.AttributeName) };
  if (defs.length !== elements.length) throw validation("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions");
  return schema;
}

function throughput(raw: unknown, billing: TableInfo["billingMode"]): { read: number; write: number } {
  if (raw === undefined || raw === null) {
    if (billing === "PROVISIONED") throw validation("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED");
    return { read: 0, write: 0 };
  }
  if (billing === "PAY_PER_REQUEST") throw validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST");
  const t = object(raw, "ProvisionedThroughput");
  const read = optionalInt(t, "ReadCapacityUnits", 1);
  const write = optionalInt(t, "WriteCapacityUnits", 1);
  if (read === undefined || write === undefined) throw validation("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED");
  return { read, write };
}

const NOT_YET = "is not supported by Decant's DynamoDB front yet (no secondary indexes, streams, TTL or global tables)";

/**
 * The table options that mean something Decant does not do are refused by name when they ask for
 * it (streams, deletion protection, encryption under a KMS key, tags, resource policies);
 * TableClass, OnDemandThroughput and WarmThroughput are capacity and billing: accepted, no-ops.
 */
function tableOptions(input: Input): void {
  refuse(input, ["Tags"], "is not supported by Decant's DynamoDB front yet (tags are not kept)");
  refuse(input, ["ResourcePolicy"], "is not supported by Decant's DynamoDB front (access is the sidecar's SigV4 credentials)");
  const stream = input.StreamSpecification as { StreamEnabled?: unknown } | undefined;
  if (stream?.StreamEnabled === true) throw validation(`StreamSpecification ${NOT_YET}`);
  const sse = input.SSESpecification as { Enabled?: unknown } | undefined;
  if (sse?.Enabled === true) throw validation("SSESpecification is not supported by Decant's DynamoDB front (encryption at rest is the store's own)");
  if (input.DeletionProtectionEnabled === true) throw validation("DeletionProtectionEnabled is not supported by Decant's DynamoDB front yet");
  optionalEnum(input, "TableClass", ["STANDARD", "STANDARD_INFREQUENT_ACCESS"] as const);
}

export function describe(ctx: OpContext, t: TableInfo, status = "ACTIVE", itemCount = 0): Record<string, unknown> {
  const keys = [{ AttributeName: t.schema.hash.name, KeyType: "HASH" }, ...(t.schema.range ? [{ AttributeName: t.schema.range.name, KeyType: "RANGE" }] : [])];
  return {
    TableName: t.name,
    TableId: t.id,
    TableArn: `arn:aws:dynamodb:${ctx.region}:000000000000:table/${t.name}`,
    TableStatus: status,
    CreationDateTime: t.created,
    KeySchema: keys,
    AttributeDefinitions: t.attributeDefinitions,
    ProvisionedThroughput: { NumberOfDecreasesToday: 0, ReadCapacityUnits: t.read, WriteCapacityUnits: t.write },
    ...(t.billingMode === "PAY_PER_REQUEST" ? { BillingModeSummary: { BillingMode: "PAY_PER_REQUEST" } } : {}),
    ItemCount: itemCount,
    TableSizeBytes: 0,
  };
}

export async function createTable(ctx: OpContext, input: Input) {
  const name = tableName(input.TableName);
  refuse(input, ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"], NOT_YET);
  tableOptions(input);
  const billingMode = optionalEnum(input, "BillingMode", ["PROVISIONED", "PAY_PER_REQUEST"] as const) ?? "PROVISIONED";
  const defs = attributeDefinitions(input.AttributeDefinitions);
  const schema = keySchema(input.KeySchema, defs);
  const { read, write } = throughput(input.ProvisionedThroughput, billingMode);
  const info = await ctx.catalog.create({ name, schema, attributeDefinitions: defs, billingMode, read, write });
  return { TableDescription: describe(ctx, info) };
}

export async function describeTable(ctx: OpContext, input: Input) {
  const t = await ctx.catalog.describe(tableName(input.TableName));
  if (t.deleting !== undefined) return { Table: describe(ctx, t, "DELETING") };
  // An estimate, as DynamoDB's is (it refreshes every few hours); it counts tombstones.
  return { Table: describe(ctx, t, "ACTIVE", await ctx.store.estimateCount(t.namespace, ctx.call)) };
}

export async function listTables(ctx: OpContext, input: Input) {
  const limit = optionalInt(input, "Limit", 1, 100) ?? 100;
  const start = input.ExclusiveStartTableName === undefined ? undefined : tableName(input.ExclusiveStartTableName, "exclusiveStartTableName");
  const names = (await ctx.catalog.names()).filter((n) => start === undefined || n > start);
  const page = names.slice(0, limit);
  return { TableNames: page, ...(names.length > limit ? { LastEvaluatedTableName: page[page.length - 1] } : {}) };
}

export async function deleteTable(ctx: OpContext, input: Input) {
  const t = await ctx.catalog.delete(tableName(input.TableName));
  return { TableDescription: describe(ctx, t, "DELETING") };
}

export async function updateTable(ctx: OpContext, input: Input) {
  const name = tableName(input.TableName);
  refuse(input, ["GlobalSecondaryIndexUpdates", "ReplicaUpdates", "MultiRegionConsistency", "GlobalTableWitnessUpdates"], NOT_YET);
  tableOptions(input);
  const billingMode = optionalEnum(input, "BillingMode", ["PROVISIONED", "PAY_PER_REQUEST"] as const);
  const t = await ctx.catalog.update(name, (info) => {
    const mode = billingMode ?? info.billingMode;
    const capacity = input.ProvisionedThroughput !== undefined || mode !== info.billingMode ? throughput(input.ProvisionedThroughput, mode) : { read: info.read, write: info.write };
    return { ...info, billingMode: mode, ...capacity };
  });
  return { TableDescription: describe(ctx, t) };
}

export async function describeTimeToLive(ctx: OpContext, input: Input) {
  await ctx.catalog.get(tableName(input.TableName));
  return { TimeToLiveDescription: { TimeToLiveStatus: "DISABLED" } };
}

export const describeLimits = async () => ({ AccountMaxReadCapacityUnits: 80000, AccountMaxWriteCapacityUnits: 80000, TableMaxReadCapacityUnits: 40000, TableMaxWriteCapacityUnits: 40000 });
