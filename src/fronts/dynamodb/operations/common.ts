// What every operation needs: its context, parameter checks with DynamoDB's messages, keys as
// store keys, and the expression parameters.
import type { Caller } from "../../../protocol/call.js";
import type { Store } from "../../../protocol/store.js";
import type { Catalog, TableInfo } from "../catalog.js";
import { checkAllUsed, validateExpressionContext, parseCondition, parseProjection, project, type Condition, type Projection } from "../expressions/index.js";
import { encodeKey } from "../keys.js";
import { validateItem } from "../item.js";
import { DynamoError, validation, type DItem, type ExprContext } from "../types.js";

export interface OpContext {
  store: Store;
  catalog: Catalog;
  /** Largest encoded item handed to the store. */
  maxValueBytes: number;
  region: string;
  /**
   * The caller of the request (the server makes one context per connection: see server.ts):
   * passed as the `call` of every Store call made for the request, so store work not yet started
   * stops once the client has gone. The catalog's calls are not given it (a table's metadata is
   * shared by every request, and its changes are several writes best not stopped halfway).
   */
  call?: Caller;
}

export type Input = Record<string, unknown>;
/** An operation: its answer's promise. It may also throw its validation errors at once (the server catches both). */
export type Operation = (ctx: OpContext, input: Input) => Promise<unknown>;

const constraint = (value: unknown, field: string, rule: string) =>
  validation(`1 validation error detected: Value ${value === undefined || value === null ? "null" : `'${typeof value === "string" ? value : JSON.stringify(value)}'`} at '${field}' failed to satisfy constraint: ${rule}`);

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;

export function tableName(value: unknown, field = "tableName"): string {
  if (value === undefined || value === null) throw constraint(value, field, "Member must not be null");
  if (typeof value !== "string") throw new DynamoError("SerializationException", `${field} must be a string`);
  if (value.length < 3 || value.length > 255) throw constraint(value, field, "Member must have length between 3 and 255");
  if (!TABLE_NAME.test(value)) throw constraint(value, field, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
  return value;
}

export function optionalString(input: Input, name: string): string | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new DynamoError("SerializationException", `${name} must be a string`);
  return v;
}

export function optionalBoolean(input: Input, name: string): boolean | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new DynamoError("SerializationException", `${name} must be a boolean`);
  return v;
}

export function optionalInt(input: Input, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new DynamoError("SerializationException", `${name} must be an integer`);
  const field = lowerFirst(name);
  if (v < min) throw constraint(v, field, `Member must have value greater than or equal to ${min}`);
  if (v > max) throw constraint(v, field, `Member must have value less than or equal to ${max}`);
  return v;
}

export function optionalEnum<T extends string>(input: Input, name: string, allowed: readonly T[]): T | undefined {
  const v = optionalString(input, name);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw constraint(v, lowerFirst(name), `Member must satisfy enum value set: [${allowed.join(", ")}]`);
  return v as T;
}

export function object(value: unknown, name: string): Input {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new DynamoError("SerializationException", `${name} must be an object`);
  return value as Input;
}

/** Parameters DynamoDB has and this front does not serve: refused by name, never ignored. */
export function refuse(input: Input, names: string[], why = "is not supported by Decant's DynamoDB front"): void {
  for (const n of names) if (input[n] !== undefined && input[n] !== null) throw validation(`${n} ${why}`);
}

/** The key attributes of a table, in schema order. */
export const keyNames = (table: TableInfo): string[] => (table.schema.range ? [table.schema.hash.name, table.schema.range.name] : [table.schema.hash.name]);

export function pickKey(table: TableInfo, item: DItem): DItem {
  const key: DItem = {};
  for (const n of keyNames(table)) if (item[n] !== undefined) key[n] = item[n];
  return key;
}

/** An item's store key (keys.ts refuses one the store cannot hold: DynamoDB allows longer keys; documented). */
export const storeKeyOf = (table: TableInfo, item: DItem): string => encodeKey(table.schema, item);

/** A `Key` parameter: exactly the table's key attributes. */
export function keyParam(table: TableInfo, value: unknown, field = "Key"): { key: DItem; storeKey: string } {
  if (value === undefined || value === null) throw constraint(value, lowerFirst(field), "Member must not be null");
  const key = validateItem(value, field);
  return { key, storeKey: encodeKey(table.schema, key, "key") };
}

/** ExpressionAttributeNames/Values, the names/values each expression used, and the check that none is left over. */
export class Expressions {
  readonly ctx: ExprContext;
  readonly used = new Set<string>();
  private any = false;

  constructor(input: Input) {
    this.ctx = validateExpressionContext(input.ExpressionAttributeNames, input.ExpressionAttributeValues);
  }

  /** Marks that an expression parameter is present (names/values are only allowed with one). */
  private note(): void {
    this.any = true;
  }

  condition(expr: string | undefined, kind: "ConditionExpression" | "FilterExpression" = "ConditionExpression"): Condition | undefined {
    if (expr === undefined) return undefined;
    this.note();
    return parseCondition(expr, this.ctx, this.used, kind);
  }

  projection(expr: string | undefined): Projection | undefined {
    if (expr === undefined) return undefined;
    this.note();
    return parseProjection(expr, this.ctx, this.used);
  }

  /** For parsers that take the context directly (update and key condition expressions). */
  mark(): ExprContext {
    this.note();
    return this.ctx;
  }

  finish(): void {
    if (!this.any) {
      if (this.ctx.names) throw validation("ExpressionAttributeNames can only be specified when using expressions");
      if (this.ctx.values) throw validation("ExpressionAttributeValues can only be specified when using expressions");
      return;
    }
    checkAllUsed(this.ctx, this.used);
  }
}

/** Refuses a request that mixes expression parameters with their legacy counterparts. */
export function noMixing(input: Input, expression: string[], legacy: string[]): void {
  if (!legacy.some((n) => input[n] !== undefined && input[n] !== null)) return; // the usual case, without building the lists
  const present = (n: string) => input[n] !== undefined && input[n] !== null;
  const e = expression.filter(present);
  const l = legacy.filter(present);
  if (e.length && l.length) throw validation(`Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {${l.join(", ")}} Expression parameters: {${e.join(", ")}}`);
}

/** A projection from ProjectionExpression or the legacy AttributesToGet. */
export type Projector = (item: DItem) => DItem;

export function projector(input: Input, exprs: Expressions): Projector | undefined {
  const p = exprs.projection(optionalString(input, "ProjectionExpression"));
  if (p !== undefined) return (item) => project(item, p);
  const names = input.AttributesToGet;
  if (names === undefined || names === null) return undefined;
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== "string")) throw validation("AttributesToGet must be a non-empty list of attribute names");
  if (new Set(names).size !== names.length) throw validation(`One or more parameter values were invalid: Duplicate value in attribute name: ${names.find((n, i) => names.indexOf(n) !== i)}`);
  return (item) => {
    const out: DItem = {};
    for (const n of names as string[]) if (item[n] !== undefined) out[n] = item[n];
    return out;
  };
}
