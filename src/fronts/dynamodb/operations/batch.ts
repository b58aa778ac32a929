// BatchGetItem (100 keys) and BatchWriteItem (25 writes). Not atomic, as in DynamoDB: what the
// store could not take because it is unavailable comes back as UnprocessedKeys/UnprocessedItems
// for the client to send again; bad input refuses the whole request before anything is written.
import type { WriteOp } from "../../../protocol/types.js";
import type { TableInfo } from "../catalog.js";
import { decodeItem, validateItem } from "../item.js";
import { validation, type DItem } from "../types.js";
import { isRetryable } from "../errors.js";
import { encodeForStore } from "./items.js";
import { Expressions, keyParam, noMixing, object, optionalBoolean, projector, storeKeyOf, tableName, type Input, type OpContext } from "./common.js";

const MAX_GET_KEYS = 100;
const MAX_WRITES = 25;
/** What each table of a BatchGetItem may carry. */
const BATCH_GET_TABLE = new Set(["Keys", "AttributesToGet", "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"]);

function requestItems(input: Input): [string, unknown][] {
  if (input.RequestItems === undefined || input.RequestItems === null) throw validation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null");
  const entries = Object.entries(object(input.RequestItems, "RequestItems"));
  if (entries.length === 0) throw validation("1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1");
  for (const [name] of entries) tableName(name, "requestItems");
  return entries;
}

function noDuplicates(keys: string[]): void {
  if (new Set(keys).size !== keys.length) throw validation("Provided list of item keys contains duplicates");
}

export async function batchGetItem(ctx: OpContext, input: Input) {
  const entries = requestItems(input);
  const plans: { name: string; table: TableInfo; raw: Input; keys: DItem[]; storeKeys: string[]; project?: (i: DItem) => DItem }[] = [];
  let total = 0;
  for (const [name, rawSpec] of entries) {
    const raw = object(rawSpec, `RequestItems.${name}`);
    for (const k in raw) if (!BATCH_GET_TABLE.has(k) && raw[k] !== null) throw validation(`RequestItems.${name}.${k} is not a parameter of BatchGetItem that Decant's DynamoDB front supports`);
    const table = await ctx.catalog.get(name);
    if (!Array.isArray(raw.Keys) || raw.Keys.length === 0) throw validation("1 validation error detected: Value null at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1");
    total += raw.Keys.length;
    if (total > MAX_GET_KEYS) throw validation(`Too many items requested for the BatchGetItem call: at most ${MAX_GET_KEYS} keys`);
    optionalBoolean(raw, "ConsistentRead");
    noMixing(raw, ["ProjectionExpression"], ["AttributesToGet"]);
    const exprs = new Expressions(raw);
    const project = projector(raw, exprs);
    exprs.finish();
    const parsed = raw.Keys.map((k) => keyParam(table, k));
    const storeKeys = parsed.map((p) => p.storeKey);
    noDuplicates(storeKeys);
    plans.push({ name, table, raw, keys: parsed.map((p) => p.key), storeKeys, project });
  }
  const responses: Record<string, DItem[]> = {};
  const unprocessed: Record<string, unknown> = {};
  await Promise.all(
    plans.map(async (p) => {
      try {
        const found = await ctx.store.batchGet(p.table.namespace, p.storeKeys, ctx.call);
        responses[p.name] = found.map((f) => {
          const item = decodeItem(f.value);
          return p.project ? p.project(item) : item;
        });
      } catch (err) {
        if (!isRetryable(err)) throw err;
        responses[p.name] = [];
        const { Keys: _keys, ...rest } = p.raw;
        unprocessed[p.name] = { ...rest, Keys: p.keys };
      }
    }),
  );
  return { Responses: responses, UnprocessedKeys: unprocessed };
}

export async function batchWriteItem(ctx: OpContext, input: Input) {
  const entries = requestItems(input);
  const plans: { name: string; table: TableInfo; requests: unknown[]; ops: WriteOp[] }[] = [];
  let total = 0;
  for (const [name, rawList] of entries) {
    const table = await ctx.catalog.get(name);
    if (!Array.isArray(rawList) || rawList.length === 0) throw validation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1");
    total += rawList.length;
    if (total > MAX_WRITES) throw validation(`1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to ${MAX_WRITES}, Member must have length greater than or equal to 1]`);
    const ops = rawList.map((r, i): WriteOp => {
      const req = object(r, `RequestItems.${name}[${i}]`);
      const put = req.PutRequest as Input | undefined;
      const del = req.DeleteRequest as Input | undefined;
      if ((put === undefined) === (del === undefined)) throw validation("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes");
      if (put) {
        const item = validateItem(object(put, "PutRequest").Item, "Item");
        return { type: "put", key: storeKeyOf(table, item), value: encodeForStore(ctx, item) };
      }
      return { type: "delete", key: keyParam(table, object(del, "DeleteRequest").Key).storeKey };
    });
    noDuplicates(ops.map((o) => o.key));
    plans.push({ name, table, requests: rawList, ops });
  }
  const unprocessed: Record<string, unknown[]> = {};
  await Promise.all(
    plans.map(async (p) => {
      let left: unknown[];
      try {
        const outcomes = await ctx.store.batchWrite(p.table.namespace, p.ops, ctx.call);
        left = p.requests.filter((_, i) => {
          const o = outcomes[i]!;
          if (o.ok) return false;
          if (!isRetryable(o.error)) throw o.error;
          return true;
        });
      } catch (err) {
        if (!isRetryable(err)) throw err;
        left = p.requests;
      }
      if (left.length) unprocessed[p.name] = left;
    }),
  );
  return { UnprocessedItems: unprocessed };
}
