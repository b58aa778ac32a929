// DynamoDB expressions: parse once per request, evaluate per item. The trees are opaque to callers.
import { checkAttributeName, validateValue } from "../item.js";
import type { AttributeValue, DItem, ExprContext, KeySchema } from "../types.js";
import { DynamoError, validation } from "../types.js";
import type { ConditionNode, ProjectionNode, UpdateNode } from "./ast.js";
import { evaluate, projectItem } from "./evaluate.js";
import { type KeyCondition, parseKeyConditionExpression } from "./keycondition.js";
import { legacyExpectedCondition, legacyUpdates } from "./legacy.js";
import { type ExpressionKind, parseConditionExpression, parseProjectionExpression, parseUpdateExpression } from "./parser.js";
import { apply, checkUpdateKeys as checkKeys } from "./update.js";

export type Condition = ConditionNode;
export type Projection = ProjectionNode;
export type Update = UpdateNode;
export type { KeyCondition, KeyOp } from "./keycondition.js";
export type { ExpressionKind } from "./parser.js";
export { isReserved, RESERVED_WORDS } from "./reserved.js";

/** A ConditionExpression (or, with kind "FilterExpression", a filter: only the messages differ). */
export function parseCondition(expr: string, ctx: ExprContext, used: Set<string>, kind: ExpressionKind = "ConditionExpression"): Condition {
  return parseConditionExpression(kind, expr, ctx, used);
}

export function evaluateCondition(c: Condition, item: DItem | undefined): boolean {
  return evaluate(c, item);
}

export function parseProjection(expr: string, ctx: ExprContext, used: Set<string>): Projection {
  return parseProjectionExpression(expr, ctx, used);
}

export function project(item: DItem, p: Projection): DItem {
  return projectItem(item, p);
}

export function parseUpdate(expr: string, ctx: ExprContext, used: Set<string>): Update {
  return parseUpdateExpression(expr, ctx, used);
}

/** The item after the update; `item` undefined starts from `key`. Throws ValidationException as DynamoDB does. */
export function applyUpdate(item: DItem | undefined, u: Update, key: DItem): DItem {
  return apply(item, u, key);
}

/** Refuses an update that names a key attribute (DynamoDB checks this before reading the item). */
export function checkUpdateKeys(u: Update, keyNames: string[]): void {
  checkKeys(u, keyNames);
}

/** The paths an update names, as a projection: ReturnValues UPDATED_OLD / UPDATED_NEW project on them. */
export function updatedPaths(u: Update): Projection {
  return { paths: u.actions.map((a) => a.path) };
}

export function parseKeyCondition(expr: string, ctx: ExprContext, schema: KeySchema, used: Set<string>): KeyCondition {
  return parseKeyConditionExpression(expr, ctx, schema, used);
}

/** DynamoDB refuses names and values that no expression of the request used. */
export function checkAllUsed(ctx: ExprContext, used: Set<string>): void {
  const unused = (m: Record<string, unknown> | undefined) => Object.keys(m ?? {}).filter((k) => !used.has(k));
  const names = unused(ctx.names);
  if (names.length) throw validation(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${names.join(", ")}}`);
  const values = unused(ctx.values);
  if (values.length) throw validation(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${values.join(", ")}}`);
}

/** ExpressionAttributeNames/Values as the request gave them: keys checked, values validated and normalized. */
export function validateExpressionContext(names: unknown, values: unknown): ExprContext {
  const ctx: ExprContext = {};
  if (names !== undefined && names !== null) {
    if (typeof names !== "object" || Array.isArray(names)) throw new DynamoError("SerializationException", "Unexpected field type");
    const entries = Object.entries(names as Record<string, unknown>);
    if (!entries.length) throw validation("ExpressionAttributeNames must not be empty");
    ctx.names = {};
    for (const [k, v] of entries) {
      if (!/^#[0-9A-Za-z_]+$/.test(k)) throw validation(`ExpressionAttributeNames contains invalid key: Syntax error; key: "${k}"`);
      if (typeof v !== "string") throw new DynamoError("SerializationException", "Unexpected value type in payload");
      if (v === "") throw validation(`ExpressionAttributeNames contains invalid value: Empty attribute name for key ${k}`);
      checkAttributeName(v);
      ctx.names[k] = v;
    }
  }
  if (values !== undefined && values !== null) {
    if (typeof values !== "object" || Array.isArray(values)) throw new DynamoError("SerializationException", "Unexpected field type");
    const entries = Object.entries(values as Record<string, unknown>);
    if (!entries.length) throw validation("ExpressionAttributeValues must not be empty");
    ctx.values = {};
    for (const [k] of entries) {
      if (!/^:[0-9A-Za-z_]+$/.test(k)) throw validation(`ExpressionAttributeValues contains invalid key: Syntax error; key: "${k}"`);
    }
    for (const [k, v] of entries) {
      let value: AttributeValue;
      try {
        value = validateValue(v);
      } catch (e) {
        if (e instanceof DynamoError && e.type === "ValidationException") {
          throw validation(`ExpressionAttributeValues contains invalid value: ${e.message} for key ${k}`);
        }
        throw e;
      }
      ctx.values[k] = value;
    }
  }
  return ctx;
}

/** The legacy `Expected` parameter (with `ConditionalOperator`) as a Condition. */
export function legacyExpected(expected: unknown, op?: "AND" | "OR"): Condition {
  return legacyExpectedCondition(expected, op);
}

/** The legacy `AttributeUpdates` parameter as an Update. */
export function legacyAttributeUpdates(updates: unknown): Update {
  return legacyUpdates(updates);
}
