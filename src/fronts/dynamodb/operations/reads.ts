// Query and Scan. A Query is a prefix scan of one partition: in key order, streamed, on a store
// that declares orderedScan; otherwise (the DynamoDB backend) the partition is read whole and
// sorted in memory per page — correct, and slow on big partitions (README says so). Limit
// counts the items read (before FilterExpression), pages stop at 1 MB, and LastEvaluatedKey is
// the key of the last item read, as in DynamoDB.
import { isDecantError } from "../../../protocol/errors.js";
import { compareKeys, type Item } from "../../../protocol/types.js";
import type { TableInfo } from "../catalog.js";
import { evaluateCondition, legacyExpected, parseKeyCondition, type Condition, type KeyCondition } from "../expressions/index.js";
import { decodeItem, itemSize, validateValue, compareScalars } from "../item.js";
import { decodeKey, encodeKeyValue, partitionPrefix } from "../keys.js";
import { validation, type AttributeValue, type DItem } from "../types.js";
import { Expressions, keyParam, noMixing, object, optionalBoolean, optionalEnum, optionalInt, optionalString, pickKey, projector, refuse, tableName, type Input, type OpContext, type Projector } from "./common.js";

const MAX_PAGE_BYTES = 1024 * 1024;
const STORE_PAGE = 1000;

/**
 * Where the store scan stood when a page ended on a key, so the next page (the client's
 * ExclusiveStartKey) resumes from there instead of walking the partition again. Only a hint:
 * on a miss (another sidecar, an evicted entry) the scan starts over and skips to the key.
 */
class ResumeHints {
  private readonly hints = new Map<string, string | undefined>();
  constructor(private readonly max = 2000) {}
  set(ns: string, prefix: string, key: string, cursor: string | undefined): void {
    const id = `${ns}\u0000${prefix}\u0000${key}`;
    this.hints.delete(id);
    this.hints.set(id, cursor);
    if (this.hints.size > this.max) this.hints.delete(this.hints.keys().next().value!);
  }
  take(ns: string, prefix: string, key: string): { cursor: string | undefined } | undefined {
    const id = `${ns}\u0000${prefix}\u0000${key}`;
    if (!this.hints.has(id)) return undefined;
    const cursor = this.hints.get(id);
    this.hints.delete(id);
    return { cursor };
  }
}
const hints = new ResumeHints();

interface Found {
  item: Item;
  /** The store cursor that produced the page holding this item (undefined = the first page). */
  pageCursor: string | undefined;
}

/**
 * Which items a walk that collects before it yields keeps: `test` on the store key (false: skip;
 * "stop": none further in ascending order), and at most the first `keep` in page order.
 */
interface Walk {
  test?: (key: string) => boolean | "stop";
  keep?: number;
}

/** Items of ns under prefix, in store-key order (reverse: descending), strictly after `after`. */
async function* inKeyOrder(ctx: OpContext, ns: string, prefix: string, after: string | undefined, reverse: boolean, pageHint: number, walk: Walk = {}): AsyncGenerator<Found> {
  const beyond = (key: string) => after === undefined || (reverse ? compareKeys(key, after) < 0 : compareKeys(key, after) > 0);
  const ordered = ctx.store.capabilities.orderedScan;
  if (ordered && !reverse) {
    const hint = after === undefined ? undefined : hints.take(ns, prefix, after);
    let cursor = hint?.cursor;
    let hinted = hint !== undefined && cursor !== undefined;
    for (;;) {
      let page;
      try {
        page = await ctx.store.scan(ns, { prefix: prefix || undefined, limit: Math.min(STORE_PAGE, pageHint), cursor }, ctx.call);
      } catch (err) {
        // A hint from before reads moved stores (a migration) is no use: start over.
        if (hinted && (isDecantError(err, "failed_precondition") || isDecantError(err, "invalid_argument"))) {
          hinted = false;
          cursor = undefined;
          continue;
        }
        throw err;
      }
      for (const item of page.items) if (beyond(item.key)) yield { item, pageCursor: cursor };
      if (!page.cursor) return;
      cursor = page.cursor;
      pageHint = STORE_PAGE;
    }
  }
  // Otherwise the walk is collected before it yields, keeping only what the page can use. On an
  // ordered store (a reverse Query) it walks up from the partition's start, already in order, and
  // ends at the start key or past the range; on an unordered one it reads the whole partition and
  // sorts what it kept. The store offers no "from this key" or "descending" scan, so that walk from
  // the start is the remaining cost (README).
  const kept: Item[] = [];
  const keep = walk.keep;
  const order = (x: Item, y: Item) => (reverse ? compareKeys(y.key, x.key) : compareKeys(x.key, y.key));
  const trim = () => {
    if (keep === undefined || kept.length <= keep) return;
    if (ordered) kept.splice(0, kept.length - keep); // ascending: the page takes the highest
    else {
      kept.sort(order);
      kept.length = keep;
    }
  };
  let cursor: string | undefined;
  walking: do {
    const page = await ctx.store.scan(ns, { prefix: prefix || undefined, limit: STORE_PAGE, cursor }, ctx.call);
    for (const item of page.items) {
      if (ordered && after !== undefined && compareKeys(item.key, after) >= 0) break walking;
      if (!beyond(item.key)) continue;
      const t = walk.test ? walk.test(item.key) : true;
      if (t === "stop" && ordered) break walking;
      if (t !== true) continue;
      kept.push(item);
      if (keep !== undefined && kept.length >= 2 * keep + STORE_PAGE) trim();
    }
    cursor = page.cursor;
  } while (cursor);
  trim();
  if (ordered) kept.reverse();
  else kept.sort(order);
  for (const item of kept) yield { item, pageCursor: undefined };
}

function matchesRange(range: NonNullable<KeyCondition["range"]>, v: AttributeValue): boolean {
  const c = (x: AttributeValue | undefined) => compareScalars(v, x!) ?? NaN;
  switch (range.op) {
    case "=":
      return c(range.values[0]) === 0;
    case "<":
      return c(range.values[0]) < 0;
    case "<=":
      return c(range.values[0]) <= 0;
    case ">":
      return c(range.values[0]) > 0;
    case ">=":
      return c(range.values[0]) >= 0;
    case "BETWEEN":
      return c(range.values[0]) >= 0 && c(range.values[1]) <= 0;
    case "BEGINS_WITH": {
      const p = range.values[0]!;
      if ("S" in p && "S" in v) return v.S.startsWith(p.S);
      if ("B" in p && "B" in v) return Buffer.from(v.B, "base64").subarray(0, Buffer.from(p.B, "base64").length).equals(Buffer.from(p.B, "base64"));
      return false;
    }
    default:
      return false;
  }
}

/** In ascending order, no later item can match once the range key is past the condition's upper end. */
function pastRange(range: NonNullable<KeyCondition["range"]>, v: AttributeValue): boolean {
  switch (range.op) {
    case "=":
    case "<":
    case "<=":
      return (compareScalars(v, range.values[0]!) ?? 0) > 0;
    case "BETWEEN":
      return (compareScalars(v, range.values[1]!) ?? 0) > 0;
    default:
      return false;
  }
}

interface PageSpec {
  table: TableInfo;
  prefix: string;
  after: string | undefined;
  reverse: boolean;
  limit: number | undefined;
  /** Key test on the decoded key (Query's range condition); "stop" ends the walk. */
  keyTest?: (key: DItem) => boolean | "stop";
  /** Scan's Segment/TotalSegments on the store key. */
  segment?: { segment: number; total: number };
  filter: Condition | undefined;
  projection: Projector | undefined;
  count: boolean;
}

/** FNV-1a of the store key: which Scan segment an item belongs to. */
function segmentOf(key: string, total: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % total;
}

async function readPage(ctx: OpContext, spec: PageSpec) {
  const { table } = spec;
  const items: DItem[] = [];
  let scanned = 0;
  let count = 0;
  let bytes = 0;
  let last: Found | undefined;
  let lastItem: DItem | undefined;
  let full = false;
  // Where the walk collects first (reverse, or an unordered store), it applies the segment and key tests itself and keeps only Limit items.
  const { segment, keyTest } = spec;
  const walk: Walk = {
    test: segment || keyTest ? (key) => (segment && segmentOf(key, segment.total) !== segment.segment ? false : keyTest ? keyTest(decodeKey(table.schema, key)) : true) : undefined,
    keep: spec.limit,
  };
  for await (const found of inKeyOrder(ctx, table.namespace, spec.prefix, spec.after, spec.reverse, (spec.limit ?? STORE_PAGE) + 1, walk)) {
    if (spec.limit !== undefined && scanned >= spec.limit) {
      full = true;
      break;
    }
    if (bytes >= MAX_PAGE_BYTES) {
      full = true;
      break;
    }
    if (spec.segment && segmentOf(found.item.key, spec.segment.total) !== spec.segment.segment) continue;
    if (spec.keyTest) {
      const t = spec.keyTest(decodeKey(table.schema, found.item.key));
      if (t === "stop") break;
      if (!t) continue;
    }
    const item = decodeItem(found.item.value);
    scanned++;
    bytes += itemSize(item);
    last = found;
    lastItem = item;
    if (spec.filter !== undefined && !evaluateCondition(spec.filter, item)) continue;
    count++;
    if (!spec.count) items.push(spec.projection ? spec.projection(item) : item);
  }
  // DynamoDB names a LastEvaluatedKey whenever the page hit Limit or 1 MB, even when nothing follows.
  if (!full && spec.limit !== undefined && scanned >= spec.limit) full = true;
  const out: Record<string, unknown> = { Count: count, ScannedCount: scanned };
  if (!spec.count) out.Items = items;
  if (full && last && lastItem) {
    out.LastEvaluatedKey = pickKey(table, lastItem);
    if (!spec.reverse) hints.set(table.namespace, spec.prefix, last.item.key, last.pageCursor);
  }
  return out;
}

/** Select, and whether the projection may be given with it. */
function selectOf(input: Input, projection: Projector | undefined): boolean {
  const select = optionalEnum(input, "Select", ["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT"] as const);
  if (select === "ALL_PROJECTED_ATTRIBUTES") throw validation("One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is not supported: secondary indexes are not supported by Decant's DynamoDB front yet");
  if (projection && (select === "ALL_ATTRIBUTES" || select === "COUNT")) throw validation(`Cannot specify the ProjectionExpression or AttributesToGet when choosing to get ${select}`);
  if (select === "SPECIFIC_ATTRIBUTES" && !projection) throw validation("Must specify the ProjectionExpression or AttributesToGet when choosing to get SPECIFIC_ATTRIBUTES");
  return select === "COUNT";
}

/** The filter: FilterExpression, or the legacy QueryFilter/ScanFilter. */
function filterOf(input: Input, exprs: Expressions, legacy: "QueryFilter" | "ScanFilter"): Condition | undefined {
  const f = exprs.condition(optionalString(input, "FilterExpression"), "FilterExpression");
  if (f !== undefined) return f;
  if (input[legacy] === undefined || input[legacy] === null) return undefined;
  return legacyExpected(input[legacy], optionalEnum(input, "ConditionalOperator", ["AND", "OR"] as const));
}

/** The legacy KeyConditions parameter as a KeyCondition. */
function legacyKeyConditions(table: TableInfo, raw: unknown): KeyCondition {
  const conds = object(raw, "KeyConditions");
  const ops: Record<string, NonNullable<KeyCondition["range"]>["op"]> = { EQ: "=", LT: "<", LE: "<=", GT: ">", GE: ">=", BETWEEN: "BETWEEN", BEGINS_WITH: "BEGINS_WITH" };
  const names = Object.keys(conds);
  if (names.length < 1 || names.length > 2) throw validation("Conditions can be of length 1 or 2 only");
  const h = table.schema.hash;
  const r = table.schema.range;
  const parse = (name: string) => {
    const c = object(conds[name], `KeyConditions.${name}`);
    const list = Array.isArray(c.AttributeValueList) ? c.AttributeValueList.map((v) => validateValue(v)) : [];
    const op = ops[String(c.ComparisonOperator)];
    if (!op) throw validation("Attempted conditional constraint is not an indexable operation");
    return { op, values: list };
  };
  if (!conds[h.name]) throw validation(`Query condition missed key schema element: ${h.name}`);
  const hash = parse(h.name);
  const hashValue = hash.values[0];
  if (hash.op !== "=" || hash.values.length !== 1 || !hashValue || !(h.type in hashValue)) throw validation("Query key condition not supported");
  const other = names.find((n) => n !== h.name);
  if (other !== undefined && other !== r?.name) throw validation(`Query condition missed key schema element: ${r?.name ?? other}`);
  if (other === undefined) return { hash: hashValue };
  const range = parse(other);
  if (range.values.length !== (range.op === "BETWEEN" ? 2 : 1) || range.values.some((v) => !(r!.type in v))) throw validation("One or more parameter values were invalid: Condition parameter type does not match schema type");
  return { hash: hashValue, range };
}

/** ExclusiveStartKey as a store key (validated as the table's key). */
function startKey(table: TableInfo, raw: unknown): { key: DItem; storeKey: string } | undefined {
  if (raw === undefined || raw === null) return undefined;
  try {
    return keyParam(table, raw, "ExclusiveStartKey");
  } catch (err) {
    if (err instanceof Error && /does not match the schema/.test(err.message)) throw validation("The provided starting key is invalid: The provided key element does not match the schema");
    throw err;
  }
}

export async function query(ctx: OpContext, input: Input) {
  const table = await ctx.catalog.get(tableName(input.TableName));
  refuse(input, ["IndexName"], "is not supported by Decant's DynamoDB front yet (no secondary indexes)");
  optionalBoolean(input, "ConsistentRead");
  noMixing(input, ["ProjectionExpression", "FilterExpression", "KeyConditionExpression"], ["AttributesToGet", "QueryFilter", "ConditionalOperator", "KeyConditions"]);
  const exprs = new Expressions(input);
  const keyExpr = optionalString(input, "KeyConditionExpression");
  let cond: KeyCondition;
  if (keyExpr !== undefined) cond = parseKeyCondition(keyExpr, exprs.mark(), table.schema, exprs.used);
  else if (input.KeyConditions !== undefined && input.KeyConditions !== null) cond = legacyKeyConditions(table, input.KeyConditions);
  else throw validation("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.");
  const filter = filterOf(input, exprs, "QueryFilter");
  const projection = projector(input, exprs);
  exprs.finish();
  const count = selectOf(input, projection);
  const limit = optionalInt(input, "Limit", 1);
  const forward = optionalBoolean(input, "ScanIndexForward") ?? true;
  const start = startKey(table, input.ExclusiveStartKey);
  const prefix = partitionPrefix(table.schema, cond.hash);
  if (start) {
    if (!start.storeKey.startsWith(prefix)) throw validation("The provided starting key is outside query boundaries based on provided conditions");
    if (cond.range && table.schema.range && !matchesRange(cond.range, start.key[table.schema.range.name]!)) throw validation("The provided starting key does not match the range key predicate");
  }
  const range = cond.range;
  const rangeName = table.schema.range?.name;
  const keyTest = range && rangeName
    ? (key: DItem): boolean | "stop" => {
        const v = key[rangeName]!;
        // Ordered stores walk up in both directions (a reverse Query collects), so past the range nothing further matches.
        if (ctx.store.capabilities.orderedScan && pastRange(range, v)) return "stop";
        return matchesRange(range, v);
      }
    : undefined;
  // begins_with narrows the scan: the key encoding maps a string/binary prefix to a store-key prefix.
  const scanPrefix = range?.op === "BEGINS_WITH" && table.schema.range ? prefix + encodeKeyValue(table.schema.range.type, range.values[0]!) : prefix;
  return readPage(ctx, { table, prefix: scanPrefix, after: start?.storeKey, reverse: !forward, limit, keyTest, filter, projection, count });
}

export async function scan(ctx: OpContext, input: Input) {
  const table = await ctx.catalog.get(tableName(input.TableName));
  refuse(input, ["IndexName"], "is not supported by Decant's DynamoDB front yet (no secondary indexes)");
  optionalBoolean(input, "ConsistentRead");
  noMixing(input, ["ProjectionExpression", "FilterExpression"], ["AttributesToGet", "ScanFilter", "ConditionalOperator"]);
  const exprs = new Expressions(input);
  const filter = filterOf(input, exprs, "ScanFilter");
  const projection = projector(input, exprs);
  exprs.finish();
  const count = selectOf(input, projection);
  const limit = optionalInt(input, "Limit", 1);
  const segment = optionalInt(input, "Segment", 0, 999_999);
  const total = optionalInt(input, "TotalSegments", 1, 1_000_000);
  if ((segment === undefined) !== (total === undefined)) throw validation(`The ${segment === undefined ? "Segment" : "TotalSegments"} parameter is required but was not present in the request when parameter ${segment === undefined ? "TotalSegments" : "Segment"} is present`);
  if (segment !== undefined && total !== undefined && segment >= total) throw validation(`The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: ${segment} is not less than TotalSegments: ${total}`);
  const start = startKey(table, input.ExclusiveStartKey);
  if (start && segment !== undefined && segmentOf(start.storeKey, total!) !== segment) throw validation("The provided Exclusive start key does not map to the provided Segment and TotalSegments values.");
  return readPage(ctx, { table, prefix: "", after: start?.storeKey, reverse: false, limit, segment: segment === undefined ? undefined : { segment, total: total! }, filter, projection, count });
}
