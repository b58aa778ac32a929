// GetItem, PutItem, UpdateItem, DeleteItem. Every conditional or read-modify-write operation is
// atomic per item through the store's versions: read the item and its version, decide, write
// with expected_version (must_not_exist when absent), and on a conflict read again (bounded).
import { isDecantError } from "../../../protocol/errors.js";
import type { Item } from "../../../protocol/types.js";
import type { TableInfo } from "../catalog.js";
import { applyUpdate, checkUpdateKeys, evaluateCondition, legacyAttributeUpdates, legacyExpected, parseUpdate, project, updatedPaths, type Condition, type Update } from "../expressions/index.js";
import { encodeKey } from "../keys.js";
import { decodeItem, encodeItem, itemSize, MAX_ITEM_SIZE, validateItem } from "../item.js";
import { DynamoError, RawJson, validation, type DItem } from "../types.js";
import { Expressions, keyNames, keyParam, noMixing, optionalBoolean, optionalEnum, optionalString, projector, storeKeyOf, tableName, type Input, type OpContext, type Projector } from "./common.js";

/** Conflicting writers to one item: tries before the client is told to retry later. */
const MAX_ATTEMPTS = 50;

export const conditionFailed = (old: DItem | undefined, returnOld: boolean) =>
  new DynamoError("ConditionalCheckFailedException", "The conditional request failed", 400, returnOld && old ? { Item: old } : undefined);

/** The store value of an item, held to DynamoDB's 400 KB and to what the store can hold. */
export function encodeForStore(ctx: OpContext, item: DItem): Buffer {
  const size = itemSize(item);
  if (size > MAX_ITEM_SIZE) throw validation("Item size has exceeded the maximum allowed size");
  const value = encodeItem(item);
  if (value.length > ctx.maxValueBytes) throw validation(`Item size has exceeded the maximum allowed size: its stored form is ${value.length} bytes, more than this sidecar's max_value_bytes (${ctx.maxValueBytes})`);
  return value;
}

export type Decision = { put: DItem } | { delete: true } | { none: true };

/**
 * Reads the item with its version, lets `decide` choose the write (it throws to refuse), and
 * writes conditionally on that version. Returns the item as it was before the write.
 */
export async function readModifyWrite(ctx: OpContext, table: TableInfo, storeKey: string, decide: (old: DItem | undefined) => Decision): Promise<{ old: DItem | undefined; decision: Decision }> {
  for (let attempt = 1; ; attempt++) {
    const current: Item | null = await ctx.store.get(table.namespace, storeKey, ctx.call);
    const old = current ? decodeItem(current.value) : undefined;
    const decision = decide(old);
    try {
      const condition = current ? { kind: "expected_version" as const, version: current.version } : { kind: "must_not_exist" as const };
      if ("put" in decision) await ctx.store.put(table.namespace, storeKey, encodeForStore(ctx, decision.put), condition, undefined, ctx.call);
      else if ("delete" in decision && current) await ctx.store.delete(table.namespace, storeKey, condition, undefined, ctx.call);
      return { old, decision };
    } catch (err) {
      if (!isDecantError(err, "version_mismatch")) throw err;
      if (attempt >= MAX_ATTEMPTS) throw new DynamoError("ProvisionedThroughputExceededException", `the item was changed by other writers ${MAX_ATTEMPTS} times while this request tried to update it; retry later`);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
    }
  }
}

/** ConditionExpression, or the legacy Expected/ConditionalOperator. */
function conditionOf(input: Input, exprs: Expressions): Condition | undefined {
  noMixing(input, ["ConditionExpression", "UpdateExpression", "ProjectionExpression"], ["Expected", "AttributeUpdates", "AttributesToGet", "ConditionalOperator"]);
  const expr = exprs.condition(optionalString(input, "ConditionExpression"));
  if (expr !== undefined) return expr;
  if (input.Expected === undefined || input.Expected === null) {
    if (input.ConditionalOperator !== undefined) throw validation("ConditionalOperator can only be used when Expected or QueryFilter are present");
    return undefined;
  }
  return legacyExpected(input.Expected, optionalEnum(input, "ConditionalOperator", ["AND", "OR"] as const));
}

const returnOnFailure = (input: Input) => optionalEnum(input, "ReturnValuesOnConditionCheckFailure", ["ALL_OLD", "NONE"] as const) === "ALL_OLD";

// Each operation checks its whole request before it looks the table up, as DynamoDB does
// (a malformed request to a missing table is a ValidationException, not ResourceNotFound).

/** A Key parameter's shape, before the table is known. */
function keyShape(value: unknown): DItem {
  if (value === undefined || value === null) throw validation("1 validation error detected: Value null at 'key' failed to satisfy constraint: Member must not be null");
  return validateItem(value, "Key");
}

/** GetItem's projection, if it asks for one (none of its expression or legacy parameters: nothing to check). */
function getProjection(input: Input): Projector | undefined {
  if (input.ProjectionExpression == null && input.ExpressionAttributeNames == null && input.ExpressionAttributeValues == null && input.AttributesToGet == null) return undefined;
  noMixing(input, ["ProjectionExpression"], ["AttributesToGet"]);
  const exprs = new Expressions(input);
  const projection = projector(input, exprs);
  exprs.finish();
  return projection;
}

const NO_ITEM = new RawJson("{}");

function readItem(ctx: OpContext, table: TableInfo, key: DItem, projection: Projector | undefined): Promise<unknown> {
  return ctx.store.get(table.namespace, encodeKey(table.schema, key, "key"), ctx.call).then((found) => {
    if (!found) return NO_ITEM;
    // The stored value is the item's canonical JSON: without a projection it goes out as it is.
    if (!projection) return new RawJson(`{"Item":${found.value.toString("utf8")}}`);
    return { Item: projection(decodeItem(found.value)) };
  });
}

// GetItem and PutItem are plain functions returning the store's promise (they may throw their
// validation errors at once): the commonest calls, kept to the fewest promises.
export function getItem(ctx: OpContext, input: Input): Promise<unknown> {
  const name = tableName(input.TableName);
  const key = keyShape(input.Key);
  optionalBoolean(input, "ConsistentRead"); // every read is consistent
  const projection = getProjection(input);
  const table = ctx.catalog.cached(name);
  if (table) return readItem(ctx, table, key, projection);
  return ctx.catalog.get(name).then((t) => readItem(ctx, t, key, projection));
}

interface WriteOptions {
  condition: Condition | undefined;
  allOld: boolean;
  onFailure: boolean;
}

/** ConditionExpression/Expected and ReturnValues of PutItem and DeleteItem. */
function writeOptions(input: Input): WriteOptions {
  if (plainWrite(input)) return PLAIN_WRITE;
  const exprs = new Expressions(input);
  const condition = conditionOf(input, exprs);
  exprs.finish();
  const returnValues = optionalEnum(input, "ReturnValues", ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"] as const) ?? "NONE";
  if (returnValues !== "NONE" && returnValues !== "ALL_OLD") throw validation("ReturnValues can only be ALL_OLD or NONE");
  return { condition, allOld: returnValues === "ALL_OLD", onFailure: returnOnFailure(input) };
}

/** What writeOptions makes of a write without any of its parameters (every check passes: nothing to check). */
const PLAIN_WRITE: WriteOptions = { condition: undefined, allOld: false, onFailure: false };

const plainWrite = (input: Input): boolean =>
  input.ConditionExpression == null &&
  input.ExpressionAttributeNames == null &&
  input.ExpressionAttributeValues == null &&
  input.Expected == null &&
  input.ConditionalOperator == null &&
  input.ReturnValues == null &&
  input.ReturnValuesOnConditionCheckFailure == null &&
  input.UpdateExpression == null &&
  input.ProjectionExpression == null &&
  input.AttributeUpdates == null &&
  input.AttributesToGet == null;

/**
 * PutItem and DeleteItem: with no condition and no ReturnValues a blind write (no read);
 * otherwise read-modify-write, returning the old item for ALL_OLD.
 */
async function writeWhole(ctx: OpContext, table: TableInfo, storeKey: string, o: WriteOptions, blind: () => Promise<unknown>, decide: (old: DItem | undefined) => Decision) {
  if (o.condition === undefined && !o.allOld) {
    await blind();
    return {};
  }
  const { old } = await readModifyWrite(ctx, table, storeKey, (old) => {
    if (o.condition !== undefined && !evaluateCondition(o.condition, old)) throw conditionFailed(old, o.onFailure);
    return decide(old);
  });
  return o.allOld && old ? { Attributes: old } : {};
}

const EMPTY = new RawJson("{}");
const answerEmpty = () => EMPTY;

export function putItem(ctx: OpContext, input: Input): Promise<unknown> {
  const name = tableName(input.TableName);
  if (input.Item === undefined || input.Item === null) throw validation("1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null");
  const item = validateItem(input.Item, "Item");
  const options = writeOptions(input);
  const table = ctx.catalog.cached(name);
  if (table) return putWith(ctx, table, item, options);
  return ctx.catalog.get(name).then((t) => putWith(ctx, t, item, options));
}

function putWith(ctx: OpContext, table: TableInfo, item: DItem, options: WriteOptions): Promise<unknown> {
  const storeKey = storeKeyOf(table, item);
  // The commonest write: blind, with no read and no async layer of its own.
  if (options.condition === undefined && !options.allOld) return ctx.store.put(table.namespace, storeKey, encodeForStore(ctx, item), undefined, undefined, ctx.call).then(answerEmpty);
  return writeWhole(ctx, table, storeKey, options, () => ctx.store.put(table.namespace, storeKey, encodeForStore(ctx, item), undefined, undefined, ctx.call), () => ({ put: item }));
}

export async function deleteItem(ctx: OpContext, input: Input) {
  const name = tableName(input.TableName);
  const key = keyShape(input.Key);
  const options = writeOptions(input);
  const table = ctx.catalog.cached(name) ?? (await ctx.catalog.get(name));
  const storeKey = encodeKey(table.schema, key, "key");
  return writeWhole(ctx, table, storeKey, options, () => ctx.store.delete(table.namespace, storeKey, undefined, undefined, ctx.call), (old) => (old ? { delete: true } : { none: true }));
}

/** ReturnValues UPDATED_OLD / UPDATED_NEW: the item projected on the paths the update names. */
function updatedPart(item: DItem | undefined, update: Update | undefined): Record<string, unknown> {
  if (!item || !update) return {};
  const attrs = project(item, updatedPaths(update));
  return Object.keys(attrs).length ? { Attributes: attrs } : {};
}

export async function updateItem(ctx: OpContext, input: Input) {
  const name = tableName(input.TableName);
  const rawKey = keyShape(input.Key);
  const exprs = new Expressions(input);
  const condition = conditionOf(input, exprs);
  const updateExpr = optionalString(input, "UpdateExpression");
  let update: Update | undefined;
  if (updateExpr !== undefined) update = parseUpdate(updateExpr, exprs.mark(), exprs.used);
  else if (input.AttributeUpdates !== undefined && input.AttributeUpdates !== null) update = legacyAttributeUpdates(input.AttributeUpdates);
  exprs.finish();
  const returnValues = optionalEnum(input, "ReturnValues", ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"] as const) ?? "NONE";
  const onFailure = returnOnFailure(input);
  const table = ctx.catalog.cached(name) ?? (await ctx.catalog.get(name));
  const { key, storeKey } = keyParam(table, rawKey);
  if (update) checkUpdateKeys(update, keyNames(table));
  const { old, decision } = await readModifyWrite(ctx, table, storeKey, (old) => {
    if (condition !== undefined && !evaluateCondition(condition, old)) throw conditionFailed(old, onFailure);
    return { put: update === undefined ? { ...(old ?? {}), ...key } : applyUpdate(old, update, key) };
  });
  const after = (decision as { put: DItem }).put;
  switch (returnValues) {
    case "ALL_OLD":
      return old ? { Attributes: old } : {};
    case "ALL_NEW":
      return { Attributes: after };
    case "UPDATED_OLD":
      return updatedPart(old, update);
    case "UPDATED_NEW":
      return updatedPart(after, update);
    default:
      return {};
  }
}
