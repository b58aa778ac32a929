// DynamoDB: the data path through dynamodb-http.ts (a lean signed JSON client; client=sdk puts
// the AWS SDK back), table administration through @aws-sdk/client-dynamodb, whose resolved
// config also gives the lean client its credentials, region and endpoint. One table holds every
// namespace, laid out so a namespace is read by Query, never by a Scan of the whole table
// (issue 18):
//
//   pk   S     "<ns>#<bucket>"  bucket = a hash of the key mod 16 (the control namespace: one
//                              bucket), so a busy namespace spreads over 16 partition keys
//   sk   S     key               (the sort key: a prefix scan is a key condition)
//   ver  N     version (a decimal string end to end: bigint-safe)
//   val  B     value; absent on a tombstone, which carries tomb = true instead
//
// A point read is a GetItem, a namespace scan is a Query per bucket (a parallel scan's segments
// own disjoint buckets). One registry item (pk "#namespaces") lists the namespaces.
//
// Tables written by earlier versions ("legacy": pk = "<ns>#<key>", no sort key, ns and k as
// attributes) are recognised by their key schema and still served, but a namespace there costs
// a filtered Scan of the whole table; README says how to move one into a new table.
import { hash } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
  DynamoDBClient,
  type AttributeValue,
  type DynamoDBClientConfig,
  type QueryCommandInput,
  type QueryCommandOutput,
  type ScanCommandInput,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import { DecantError, deadlineExceeded, invalidArgument, isDecantError, unavailable } from "../protocol/errors.js";
import { decodeCursor, encodeCursor, type Segment } from "../protocol/paging.js";
import { checkCondition, conditionalWrite, normalizeCondition, notDeleted, type Attempt } from "../protocol/semantics.js";
import type { Caller } from "../protocol/call.js";
import type { Capabilities } from "../protocol/store.js";
import { CONTROL_NAMESPACE, type Condition, type DeleteResult, type Item, type LargeValueOptions, type RawItem, type RawScanOptions, type ScanOptions, type ScanPage, type ValueSize } from "../protocol/types.js";
import { chunkBy, Envelope, isNetworkError, lazy, mapLimit, option, parseOptions, redactUrl, retry, type Deadline, type RetryPolicy } from "./kit.js";
import { KitStore, type Driver } from "./store.js";
import { DAMAGED_ANSWER, DynamoHttp, type DataOp, type DataOps } from "./dynamodb-http.js";

type Attrs = Record<string, AttributeValue>;

/** "buckets": this version's layout (pk + sk); "legacy": pk = "<ns>#<key>" alone, read by filtered Scans. */
export type DynamoLayout = "buckets" | "legacy";

const REGISTRY_PK = "#namespaces"; // an item pk always starts with a namespace, never with "#"
const REGISTRY_SK = "#";
/** Partition keys per namespace. More spread writes wider and allow more scan segments; each costs a Query per full scan. */
export const DYNAMO_BUCKETS = 16;
const ITEM_LIMIT = 400 * 1024; // DynamoDB's item size limit: names + values, key included
const MAX_NS_BYTES = 64;
/** Attribute names pk ns k ver val (11 bytes) + the largest version number (21 bytes): the legacy layout, the larger one. */
const FIXED_OVERHEAD = 11 + 21;
const REGISTRY_TTL_MS = 60_000;
const WRITE_CONCURRENCY = 16;
/** Keep-alive sockets: enough for the backfill's and the clients' writes in flight. */
const MAX_SOCKETS = 64;
const MAX_EVALUATED = 2000;
/** estimateCount counts whole buckets until it has seen this many items, then scales up. */
const COUNT_SAMPLE = 10_000;
const TABLE_WAIT_MS = 5 * 60_000;
const RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 25, maxDelayMs: 1000 };

/** Rejected before execution: safe to repeat even for a write that bumps a version. */
const THROTTLED = new Set(["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]);
/** Failures that may pass on their own; an answer damaged on the way (its x-amz-crc32) among them. */
const SERVER_FAULTS = new Set(["InternalServerError", "ServiceUnavailable", "InternalFailure", DAMAGED_ANSWER]);

const httpStatus = (err: unknown): number => (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode ?? 0;
const errName = (err: unknown): string => (typeof err === "object" && err !== null ? String((err as { name?: unknown }).name ?? "") : "");
const errCode = (err: unknown): string => (typeof err === "object" && err !== null ? String((err as { code?: unknown }).code ?? "") : "");
const notExecuted = (err: unknown): boolean => THROTTLED.has(errName(err));
/** For reads and idempotent writes (applyIfNewer, the deletes of drop and purge): anything that may pass. */
const transient = (err: unknown): boolean => notExecuted(err) || SERVER_FAULTS.has(errName(err)) || httpStatus(err) >= 500 || isNetworkError(err);
const isConditionFailed = (err: unknown): err is { Item?: Attrs } => errName(err) === "ConditionalCheckFailedException";
/** The SDK names a reset connection "TimeoutError" too; only a real timeout is one. */
const isReset = (err: unknown): boolean => errCode(err) === "ECONNRESET" || errCode(err) === "EPIPE";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The SDK's per-call options: the deadline's signal, made only when the SDK reads it. A class: no getter defined per call. */
class SdkCallOptions {
  constructor(private readonly deadline: Deadline) {}
  get abortSignal(): AbortSignal {
    return this.deadline.signal;
  }
}

/** What DynamoDB left undone of a batch call (throttled): the rest is asked again after a backoff. */
class Unprocessed extends Error {
  constructor(readonly pending: number) {
    super(`${pending} requests stayed unprocessed (throttled)`);
  }
}

/** names() of each set of expressions seen: they are the adapter's constants, so few (bounded anyway). */
const NAMES = new Map<string, Readonly<Record<string, string>>>();
const NAMES_KEPT = 256;

/**
 * Expression attribute names for every #name used (DynamoDB refuses unused ones). Shared and
 * frozen: a Put no longer scans its expressions with a regex per call.
 */
function names(...expressions: (string | undefined)[]): Record<string, string> {
  const key = expressions.join("\u0000");
  const hit = NAMES.get(key);
  if (hit) return hit as Record<string, string>;
  const out: Record<string, string> = {};
  for (const e of expressions) for (const m of (e ?? "").matchAll(/#(\w+)/g)) out[m[0]] = m[1]!;
  if (NAMES.size >= NAMES_KEPT) NAMES.clear();
  NAMES.set(key, Object.freeze(out));
  return out;
}

/** An update's expressions and their names, made once: a Put builds no expression strings. */
interface UpdateExpr {
  update: string;
  guard?: string;
  names: Record<string, string>;
}
const updateExpr = (update: string, guard?: string): UpdateExpr => ({ update, guard, names: names(update, guard) });

/** A Put: the version bumped, the value set, a tombstone mark removed; guarded by its condition (none, must be absent, a version). */
const putExprs = (layout: DynamoLayout) => {
  const update = `SET #ver = if_not_exists(#ver, :zero) + :one, #val = :val${layout === "legacy" ? ", #ns = :ns, #k = :k" : ""} REMOVE #tomb`;
  return { none: updateExpr(update), absent: updateExpr(update, "attribute_not_exists(#val)"), version: updateExpr(update, "attribute_exists(#val) AND #ver = :expected") };
};
const PUT_EXPRS = { buckets: putExprs("buckets"), legacy: putExprs("legacy") };
const DELETE_UPDATE = "SET #ver = #ver + :one, #tomb = :true REMOVE #val";
const DELETE_EXPRS = { any: updateExpr(DELETE_UPDATE, "attribute_exists(#val)"), version: updateExpr(DELETE_UPDATE, "attribute_exists(#val) AND #ver = :expected") };

const bucketsOf = (ns: string): number => (ns === CONTROL_NAMESPACE ? 1 : DYNAMO_BUCKETS);

/** The bucket of a key: a stable hash of its UTF-8 bytes, so every sidecar agrees. */
export function bucketOf(ns: string, key: string): number {
  const n = bucketsOf(ns);
  return n === 1 ? 0 : hash("md5", key, "buffer").readUInt32BE(0) % n; // one-shot: a third of createHash's CPU
}

/** The table key of (ns, key) in a layout. */
function keyOf(layout: DynamoLayout, ns: string, key: string): Attrs {
  return layout === "legacy" ? { pk: { S: `${ns}#${key}` } } : { pk: { S: `${ns}#${bucketOf(ns, key)}` }, sk: { S: key } };
}

/** A whole item as applyIfNewer writes it (exported so tests can seed a table fast, in bulk). */
export function itemAttrs(layout: DynamoLayout, ns: string, item: RawItem): Attrs {
  const attrs: Attrs = { ...keyOf(layout, ns, item.key), ver: { N: item.version.toString() } };
  if (layout === "legacy") Object.assign(attrs, { ns: { S: ns }, k: { S: item.key } });
  if (item.value === null) attrs.tomb = { BOOL: true };
  else attrs.val = { B: item.value };
  return attrs;
}

const isLegacyCursor = (v: unknown): v is { s: string } =>
  typeof v === "object" && v !== null && typeof (v as { s?: unknown }).s === "string" && (v as { s: string }).s.length > 0;

/** One page read: a Query or a Scan. */
type Page = { target: "Query"; input: QueryCommandInput } | { target: "Scan"; input: ScanCommandInput };

/** Where a bucketed scan resumes: bucket b (of a scan split into n segments), after sort key s. */
interface BucketCursor {
  b: number;
  n: number;
  s?: string;
}
const isBucketCursor = (v: unknown): v is BucketCursor => {
  const c = v as BucketCursor;
  return typeof v === "object" && v !== null && Number.isInteger(c.b) && Number.isInteger(c.n) && (c.s === undefined || (typeof c.s === "string" && c.s.length > 0));
};

/** What a scan reads: a filter on each item (undefined = all) and, for client scans, a key prefix. */
interface ScanSpec {
  filter?: string;
  values?: Attrs;
  prefix?: string;
}

export interface DynamoOptions {
  table: string;
  region?: string;
  endpoint?: string;
  create: boolean;
  timeoutMs: number;
  /** The data path's client: "lean" (dynamodb-http.ts), or "sdk" (the AWS SDK, as before it; a fallback, and the bench's baseline). */
  client: "lean" | "sdk";
  /** The lean client's clock (tests skew it); Date.now by default. */
  clock?: () => number;
}

/** The SDK's command for each data-path operation (client=sdk). */
const SDK_COMMANDS = {
  GetItem: GetItemCommand,
  PutItem: PutItemCommand,
  UpdateItem: UpdateItemCommand,
  DeleteItem: DeleteItemCommand,
  BatchGetItem: BatchGetItemCommand,
  BatchWriteItem: BatchWriteItemCommand,
  Query: QueryCommand,
  Scan: ScanCommand,
};

/**
 * The SDK client as the adapter builds it (bench/cost.ts measures it against the default one).
 * Keep-alive sockets, enough for the backfill's and the clients' writes in flight; no
 * account-id endpoint lookups.
 */
export function dynamoClientConfig(o: { region?: string; endpoint?: string; timeoutMs: number }): DynamoDBClientConfig {
  const agent = { keepAlive: true, maxSockets: MAX_SOCKETS };
  return {
    region: o.region ?? (o.endpoint ? "us-east-1" : undefined),
    endpoint: o.endpoint,
    maxAttempts: 1, // retries are ours: only we know whether an operation is safe to repeat
    requestHandler: { connectionTimeout: o.timeoutMs, requestTimeout: o.timeoutMs, throwOnRequestTimeout: true, httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent) },
    accountIdEndpointMode: "disabled",
  };
}

/** What the dynamodb store can do (see Capabilities). */
const CAPABILITIES: Capabilities = {
  // Keys are ordered within a bucket only; a merge of 16 Queries would read 16 pages per page.
  orderedScan: false,
  segmentedScan: true,
  // Sized for the legacy layout (the key stored twice, in pk and k; the namespace twice, in pk
  // and ns), which holds more per item than the bucketed one: true for both.
  maxValueBytes: (key) => ITEM_LIMIT - FIXED_OVERHEAD - 2 * (MAX_NS_BYTES + 1) - 2 * Buffer.byteLength(key, "utf8"),
  durable: true,
  // One conditional PutItem per item, WRITE_CONCURRENCY at a time.
  applyBatch: { items: 4 * WRITE_CONCURRENCY, bytes: 16 * 1024 * 1024 },
};

class DynamoDriver implements Driver {
  readonly kind = "dynamodb";
  readonly description: string;
  readonly capabilities = CAPABILITIES;
  /** BatchWriteItem cannot carry conditions: a batch is one UpdateItem per write, this many at a time. */
  readonly batchConcurrency = WRITE_CONCURRENCY;
  private client?: DynamoDBClient;
  private lean?: DynamoHttp;
  private readonly calls: Envelope;
  /** Checks (and, with create=true, creates) the table once; a failure is retried on the next call. */
  private readonly ready = lazy(() => this.prepareTable());
  private tableLayout?: DynamoLayout;
  private readonly registered = new Map<string, { until: number; done: Promise<unknown>; ok: boolean }>();

  constructor(
    private readonly options: DynamoOptions,
    raw: string,
  ) {
    this.description = redactUrl(raw);
    this.calls = new Envelope({ store: this.description, timeoutMs: options.timeoutMs, isTransient: transient, mapError: (op, err) => (isConditionFailed(err) ? err : this.fail(err, op)), retry: RETRY });
  }

  private get table(): string {
    return this.options.table;
  }

  private db(): DynamoDBClient {
    if (this.client) return this.client;
    const { region, endpoint, timeoutMs } = this.options;
    // A local server (dynalite, DynamoDB Local) accepts any credentials; AWS uses the default chain.
    const local = endpoint !== undefined && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE;
    this.client = new DynamoDBClient({
      ...dynamoClientConfig({ region, endpoint, timeoutMs }),
      credentials: local ? { accessKeyId: "decant-local", secretAccessKey: "decant-local" } : undefined,
    });
    return this.client;
  }

  /** The data path's client (dynamodb-http.ts): the SDK's credentials, region and endpoint, without its per-call cost. */
  private http(): DynamoHttp {
    this.lean ??= new DynamoHttp({ sdk: this.db(), endpoint: this.options.endpoint, maxSockets: MAX_SOCKETS, clock: this.options.clock });
    return this.lean;
  }

  /** One data-path call (see send), on the client the URL chose. */
  private call<K extends DataOp>(op: string, target: K, input: DataOps[K][0], retryOn: (e: unknown) => boolean, binary = true, caller?: Caller): Promise<DataOps[K][1]> {
    if (this.options.client === "sdk") {
      const Command = SDK_COMMANDS[target] as unknown as new (i: DataOps[K][0]) => Parameters<DynamoDBClient["send"]>[0];
      return this.send(op, (c, o) => c.send(new Command(input), o) as Promise<DataOps[K][1]>, retryOn, true, caller);
    }
    return this.send(op, (_c, _o, deadline) => this.http().call(target, input, deadline, binary), retryOn, true, caller);
  }

  /**
   * One bounded round trip (with retries where `retryOn` allows); errors become DecantErrors, a
   * failed condition stays itself. `caller`: who it runs for (see Driver), if anyone.
   */
  private async send<T>(op: string, run: (c: DynamoDBClient, o: { readonly abortSignal: AbortSignal }, deadline: Deadline) => Promise<T>, retryOn: (e: unknown) => boolean, ensure = true, caller?: Caller): Promise<T> {
    // Set while the retries wait out a throttle (no attempt in flight, nothing applied): a deadline
    // then is the store refusing us, UNAVAILABLE with its reason, not a store that did not answer.
    let throttled: unknown;
    try {
      return await this.calls.run(
        op,
        async (deadline) => {
          // Once the table is ready a call skips the await (a promise and a microtask per call, on every request).
          if (ensure && !this.ready.done) await this.ready.get();
          throttled = undefined;
          // The signal only when the SDK asks for it (the lean client watches the deadline itself).
          return run(this.db(), new SdkCallOptions(deadline), deadline);
        },
        (e) => ((throttled = notExecuted(e) ? e : undefined), retryOn(e)),
        caller,
      );
    } catch (err) {
      if (throttled !== undefined && isDecantError(err, "deadline_exceeded")) throw unavailable(this.description, throttled);
      // The table was deleted under us: check (and maybe create) it again next time.
      if (ensure && isDecantError(err) && errName(err.cause) === "ResourceNotFoundException") this.ready.reset();
      throw err;
    }
  }

  /** Sends a batch call again, after a backoff, for what DynamoDB left unprocessed (throttled), until nothing is left. */
  private async untilProcessed<R>(first: R[], call: (pending: R[]) => Promise<R[]>): Promise<void> {
    let pending = first;
    const again = async () => {
      pending = await call(pending);
      if (pending.length > 0) throw new Unprocessed(pending.length);
    };
    try {
      await retry(again, (err) => err instanceof Unprocessed, { attempts: 8, baseDelayMs: 50, maxDelayMs: 1000 });
    } catch (err) {
      throw err instanceof Unprocessed ? unavailable(this.description, err) : err;
    }
  }

  private fail(err: unknown, op: string): DecantError {
    if (isDecantError(err)) return err;
    const name = errName(err);
    const message = err instanceof Error ? err.message : String(err);
    if ((name === "TimeoutError" || name === "AbortError") && !isReset(err)) return deadlineExceeded(this.description, op, this.options.timeoutMs);
    if (name === "ResourceNotFoundException") {
      return new DecantError("unavailable", `store ${this.description} is unavailable: table ${this.table} was not found (${message})`, { cause: err });
    }
    if (name === "ValidationException") {
      if (/start(ing)? ?key/i.test(message)) return invalidArgument("page_token", "is not a token this server issued");
      if (/size/i.test(message)) return invalidArgument("value", `is too large for a DynamoDB item: ${message}`);
      return new DecantError("internal", `store ${this.description} refused ${op}: ${message}`, { cause: err });
    }
    // An answer that is not DynamoDB's (a proxy, a wrong endpoint) has no useful name: show the status.
    const status = httpStatus(err);
    if (status && name === "Unknown") return new DecantError("unavailable", `store ${this.description} is unavailable: HTTP ${status} from the endpoint, not a DynamoDB answer`, { cause: err });
    return unavailable(this.description, err);
  }

  // ---- table -------------------------------------------------------------------------------

  /** The table's layout, checking (or creating) the table first, bounded like any call. */
  private async layout(op: string): Promise<DynamoLayout> {
    if (!this.tableLayout) await this.send(op, async () => undefined, () => false);
    return this.tableLayout!;
  }

  private async describeTable(): Promise<TableDescription | null> {
    try {
      const out = await this.send("describe table", (c, o) => c.send(new DescribeTableCommand({ TableName: this.table }), o), transient, false);
      return out.Table ?? null;
    } catch (err) {
      if (isDecantError(err) && err.cause !== undefined && errName(err.cause) === "ResourceNotFoundException") return null;
      throw err;
    }
  }

  private async prepareTable(): Promise<void> {
    let table = await this.describeTable();
    if (!table) {
      if (!this.options.create) {
        throw new DecantError(
          "failed_precondition",
          `store ${this.description}: table ${this.table} does not exist and create=false; create it with partition key "pk" (type S) and sort key "sk" (type S), or set create=true`,
        );
      }
      try {
        await this.send(
          "create table",
          (c, o) =>
            c.send(
              new CreateTableCommand({
                TableName: this.table,
                BillingMode: "PAY_PER_REQUEST",
                AttributeDefinitions: [
                  { AttributeName: "pk", AttributeType: "S" },
                  { AttributeName: "sk", AttributeType: "S" },
                ],
                KeySchema: [
                  { AttributeName: "pk", KeyType: "HASH" },
                  { AttributeName: "sk", KeyType: "RANGE" },
                ],
              }),
              o,
            ),
          notExecuted,
          false,
        );
      } catch (err) {
        // Another sidecar created it first: fine.
        if (!(isDecantError(err) && errName(err.cause) === "ResourceInUseException")) throw err;
      }
    }
    const deadline = Date.now() + TABLE_WAIT_MS;
    while (table?.TableStatus !== "ACTIVE" && table?.TableStatus !== "UPDATING") {
      if (table?.TableStatus === "DELETING") throw unavailable(this.description, new Error(`table ${this.table} is being deleted`));
      if (Date.now() > deadline) throw unavailable(this.description, new Error(`table ${this.table} did not become ACTIVE within ${TABLE_WAIT_MS / 1000} s`));
      await sleep(200);
      table = await this.describeTable();
    }
    this.tableLayout = this.layoutOf(table);
  }

  /** Recognises this version's key schema and the legacy one; anything else is someone else's table. */
  private layoutOf(table: TableDescription): DynamoLayout {
    const keys = (table.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}:${table.AttributeDefinitions?.find((a) => a.AttributeName === k.AttributeName)?.AttributeType}`);
    if (keys.join() === "pk:HASH:S,sk:RANGE:S") return "buckets";
    if (keys.join() === "pk:HASH:S") return "legacy";
    const found = (table.KeySchema ?? []).map((k) => `${k.AttributeName} (${k.KeyType})`).join(", ");
    throw new DecantError(
      "failed_precondition",
      `store ${this.description}: table ${this.table} has key schema [${found}]; decant needs partition key "pk" (type S) and sort key "sk" (type S) — name another table`,
    );
  }

  // ---- items -------------------------------------------------------------------------------

  private static registryKey(layout: DynamoLayout): Attrs {
    return layout === "legacy" ? { pk: { S: REGISTRY_PK } } : { pk: { S: REGISTRY_PK }, sk: { S: REGISTRY_SK } };
  }

  /** The table key of an item read back (pk, and sk in the bucketed layout). */
  private static primaryKey(a: Attrs): Attrs {
    return a.sk ? { pk: a.pk!, sk: a.sk } : { pk: a.pk! };
  }

  /** The attribute that holds the key as written: sk, or k in the legacy layout. */
  private static keyAttr(layout: DynamoLayout): string {
    return layout === "legacy" ? "k" : "sk";
  }

  private static toRaw(a: Attrs): RawItem {
    const val = a.val?.B;
    return { key: (a.sk ?? a.k)!.S!, value: val ? Buffer.from(val.buffer, val.byteOffset, val.byteLength) : null, version: BigInt(a.ver!.N!) };
  }

  /**
   * Makes sure namespaces() lists ns before its first item is written (cached for a while).
   * Undefined when it is known listed: the caller's write goes on without an await.
   */
  private register(ns: string): Promise<void> | undefined {
    const hit = this.registered.get(ns);
    if (hit && hit.until > Date.now()) return hit.ok ? undefined : hit.done.then(() => undefined);
    return this.registerNow(ns);
  }

  private async registerNow(ns: string): Promise<void> {
    const done = this.layout("register namespace").then((layout) =>
      this.call(
        "register namespace",
        "UpdateItem",
        {
          TableName: this.table,
          Key: DynamoDriver.registryKey(layout),
          UpdateExpression: "ADD #names :ns",
          ExpressionAttributeNames: names("#names"),
          ExpressionAttributeValues: { ":ns": { SS: [ns] } },
        },
        transient, // adding to a set is idempotent
      ),
    );
    const entry = { until: Date.now() + REGISTRY_TTL_MS, done, ok: false };
    this.registered.set(ns, entry);
    done.then(
      () => (entry.ok = true),
      () => this.registered.get(ns) === entry && this.registered.delete(ns),
    );
    await done;
  }

  async readOne(ns: string, key: string, caller?: Caller): Promise<RawItem | null> {
    const layout = await this.layout("get");
    const projection = `#${DynamoDriver.keyAttr(layout)}, #ver, #val`;
    const out = await this.call(
      "get",
      "GetItem",
      { TableName: this.table, Key: keyOf(layout, ns, key), ConsistentRead: true, ProjectionExpression: projection, ExpressionAttributeNames: names(projection) },
      transient,
      true,
      caller,
    );
    return out.Item ? DynamoDriver.toRaw(out.Item) : null;
  }

  async readRaw(ns: string, keys: string[], caller?: Caller): Promise<RawItem[]> {
    const layout = await this.layout("batchGet");
    const projection = `#${DynamoDriver.keyAttr(layout)}, #ver, #val`;
    const found: RawItem[] = [];
    await mapLimit(chunkBy(keys, () => 0, 100), 4, (chunk) =>
      this.untilProcessed(
        chunk.map((k) => keyOf(layout, ns, k)),
        async (pending) => {
          const out = await this.call(
            "batchGet",
            "BatchGetItem",
            { RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true, ProjectionExpression: projection, ExpressionAttributeNames: names(projection) } } },
            transient,
            true,
            caller,
          );
          for (const a of out.Responses?.[this.table] ?? []) found.push(DynamoDriver.toRaw(a));
          return out.UnprocessedKeys?.[this.table]?.Keys ?? [];
        },
      ),
    );
    return found;
  }

  /**
   * One conditional UpdateItem: the new version, or, refused by its condition, the item DynamoDB
   * saw (AWS returns it; dynalite does not, and conditionalWrite then reads it back). Never
   * repeated once sent: it may have bumped the version already.
   */
  private async update(op: string, layout: DynamoLayout, ns: string, key: string, expr: UpdateExpr, values: Attrs, caller: Caller | undefined): Promise<Attempt<bigint>> {
    const { update, guard } = expr;
    try {
      const out = await this.call(
        op,
        "UpdateItem",
        {
          TableName: this.table,
          Key: keyOf(layout, ns, key),
          UpdateExpression: update,
          ConditionExpression: guard,
          ExpressionAttributeNames: expr.names,
          ExpressionAttributeValues: values,
          ReturnValues: "UPDATED_NEW",
          ReturnValuesOnConditionCheckFailure: guard ? "ALL_OLD" : undefined,
        },
        notExecuted,
        false, // only the new version is read (UPDATED_NEW carries the value back too: not decoded)
        caller,
      );
      return { done: BigInt(out.Attributes!.ver!.N!) };
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      return { refused: err.Item?.sk || err.Item?.k ? DynamoDriver.toRaw(err.Item) : undefined };
    }
  }

  async put(ns: string, key: string, value: Buffer, condition: Condition | undefined, _fence?: number, caller?: Caller): Promise<bigint> {
    const registering = this.register(ns);
    if (registering) await registering;
    const layout = this.tableLayout ?? (await this.layout("put"));
    const mustBeAbsent = normalizeCondition(condition)?.kind === "must_not_exist";
    const exprs = PUT_EXPRS[layout];
    const expr = !condition ? exprs.none : mustBeAbsent ? exprs.absent : exprs.version;
    const values: Attrs = { ":zero": { N: "0" }, ":one": { N: "1" }, ":val": { B: value } };
    if (layout === "legacy") Object.assign(values, { ":ns": { S: ns }, ":k": { S: key } });
    if (condition?.kind === "expected_version" && !mustBeAbsent) values[":expected"] = { N: condition.version.toString() };
    return conditionalWrite(key, condition, () => this.update("put", layout, ns, key, expr, values, caller), () => this.readOne(ns, key, caller));
  }

  async delete(ns: string, key: string, condition: Condition | undefined, _fence?: number, caller?: Caller): Promise<DeleteResult> {
    if (normalizeCondition(condition)?.kind === "must_not_exist") {
      // Only an absent key passes, and then there is nothing to delete: no write at all.
      const stored = await this.readOne(ns, key, caller);
      checkCondition(key, stored, condition);
      return { deleted: false, version: stored?.version ?? 0n };
    }
    const layout = await this.layout("delete");
    const expr = condition ? DELETE_EXPRS.version : DELETE_EXPRS.any;
    const values: Attrs = { ":one": { N: "1" }, ":true": { BOOL: true } };
    if (condition?.kind === "expected_version") values[":expected"] = { N: condition.version.toString() };
    const attempt = async (): Promise<Attempt<DeleteResult>> => {
      const r = await this.update("delete", layout, ns, key, expr, values, caller);
      return "done" in r ? { done: { deleted: true, version: r.done } } : r;
    };
    return conditionalWrite(key, condition, attempt, () => this.readOne(ns, key, caller), notDeleted);
  }

  async applyIfNewer(ns: string, items: RawItem[]): Promise<boolean[]> {
    const registering = this.register(ns);
    if (registering) await registering;
    const layout = this.tableLayout ?? (await this.layout("applyIfNewer"));
    // BatchWriteItem cannot carry conditions, so: one conditional PutItem per item, in parallel.
    const guard = "attribute_not_exists(#pk) OR #ver < :v";
    return mapLimit(items, WRITE_CONCURRENCY, async (item) => {
      const attrs = itemAttrs(layout, ns, item);
      let mayHaveApplied = false; // an earlier attempt failed after it may have reached the table
      try {
        await this.call(
          "applyIfNewer",
          "PutItem",
          { TableName: this.table, Item: attrs, ConditionExpression: guard, ExpressionAttributeNames: names(guard), ExpressionAttributeValues: { ":v": attrs.ver! } },
          (e) => transient(e) && ((mayHaveApplied ||= !notExecuted(e)), true), // idempotent: the same version never applies twice
        );
        return true;
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
        // The retry met that attempt's own write, whose answer was lost: the item stored at this
        // very version is this item (one primary names each version), so it was applied.
        return mayHaveApplied && (await this.readOne(ns, item.key))?.version === item.version;
      }
    });
  }

  // ---- scans -------------------------------------------------------------------------------

  /** A page of a namespace's items matching `spec`, from whichever layout the table has. */
  private async scanItems(op: string, ns: string, limit: number, cursor: string | undefined, spec: ScanSpec, segment = 0, total = 1, caller?: Caller): Promise<ScanPage<RawItem>> {
    return (await this.layout(op)) === "legacy"
      ? this.scanTable(op, ns, limit, cursor, spec, total > 1 ? { segment, total } : undefined, caller)
      : this.queryBuckets(op, ns, limit, cursor, spec, segment, total, caller);
  }

  /**
   * The bucketed layout: a Query per bucket this segment owns (bucket b belongs to segment
   * b mod total), one after the other, until `limit` items matched. DynamoDB applies Limit
   * before the filter, so a bucket is read in growing pages; the cursor is the bucket and the
   * last sort key returned, so nothing is buffered and nothing is skipped. Only the
   * namespace's items are read, and with a prefix only the keys that have it.
   */
  private async queryBuckets(op: string, ns: string, limit: number, cursor: string | undefined, spec: ScanSpec, segment: number, total: number, caller?: Caller): Promise<ScanPage<RawItem>> {
    const count = bucketsOf(ns);
    let at: BucketCursor = cursor === undefined ? { b: segment, n: total } : decodeCursor(cursor, isBucketCursor);
    if (at.n !== total || at.b % total !== segment || at.b < 0) throw invalidArgument("page_token", "is not a token this server issued for this segment");
    const keyCondition = `#pk = :pk${spec.prefix ? " AND begins_with(#sk, :prefix)" : ""}`;
    const projection = "#sk, #ver, #val";
    const began = Date.now();
    let evaluate = Math.min(MAX_EVALUATED, limit + 1);
    const out: RawItem[] = [];
    while (at.b < count) {
      const query: Page = {
        target: "Query",
        input: {
          TableName: this.table,
          KeyConditionExpression: keyCondition,
          FilterExpression: spec.filter,
          ProjectionExpression: projection,
          ExpressionAttributeNames: names(keyCondition, spec.filter, projection),
          ExpressionAttributeValues: { ":pk": { S: `${ns}#${at.b}` }, ...(spec.prefix ? { ":prefix": { S: spec.prefix } } : {}), ...spec.values },
          ExclusiveStartKey: at.s === undefined ? undefined : { pk: { S: `${ns}#${at.b}` }, sk: { S: at.s } },
          Limit: evaluate,
          ConsistentRead: true,
        },
      };
      const page = await this.readPage(op, query, caller);
      const items = page.Items ?? [];
      const last = !page.LastEvaluatedKey && at.b + total >= count;
      for (let i = 0; i < items.length; i++) {
        out.push(DynamoDriver.toRaw(items[i]!));
        if (out.length === limit) {
          return { items: out, cursor: last && i === items.length - 1 ? undefined : encodeCursor({ b: at.b, n: total, s: items[i]!.sk!.S! }) };
        }
      }
      at = page.LastEvaluatedKey ? { b: at.b, n: total, s: page.LastEvaluatedKey.sk!.S! } : { b: at.b + total, n: total };
      if (at.b >= count) break;
      // A slow store: return a short page rather than outrun the timeout.
      if (Date.now() - began > this.options.timeoutMs / 2) return { items: out, cursor: encodeCursor(at) };
      if (page.LastEvaluatedKey) evaluate = Math.min(MAX_EVALUATED, evaluate * 4);
    }
    return { items: out };
  }

  /**
   * The legacy layout: a table Scan filtered on ns, so every item of the table is read.
   * DynamoDB applies Limit before the filter, so pages are read until `limit` items matched or
   * the table ends; the cursor is the pk of the last item returned (a valid ExclusiveStartKey).
   */
  private async scanTable(op: string, ns: string, limit: number, cursor: string | undefined, spec: ScanSpec, segment?: { segment: number; total: number }, caller?: Caller): Promise<ScanPage<RawItem>> {
    let start = cursor === undefined ? undefined : decodeCursor(cursor, isLegacyCursor).s;
    const filterExpression = this.legacyFilter(spec);
    const projection = "#pk, #k, #ver, #val";
    const began = Date.now();
    let evaluate = Math.min(MAX_EVALUATED, limit + 1);
    const out: RawItem[] = [];
    for (;;) {
      const scan: Page = {
        target: "Scan",
        input: {
          TableName: this.table,
          Limit: evaluate,
          ExclusiveStartKey: start === undefined ? undefined : { pk: { S: start } },
          FilterExpression: filterExpression,
          ProjectionExpression: projection,
          ExpressionAttributeNames: names(filterExpression, projection),
          ExpressionAttributeValues: this.legacyValues(ns, spec),
          ConsistentRead: true,
          Segment: segment?.segment,
          TotalSegments: segment?.total,
        },
      };
      const page = await this.readPage(op, scan, caller);
      const items = page.Items ?? [];
      for (let i = 0; i < items.length; i++) {
        out.push(DynamoDriver.toRaw(items[i]!));
        if (out.length === limit) {
          const done = i === items.length - 1 && !page.LastEvaluatedKey;
          return { items: out, cursor: done ? undefined : encodeCursor({ s: items[i]!.pk!.S! }) };
        }
      }
      if (!page.LastEvaluatedKey) return { items: out };
      start = page.LastEvaluatedKey.pk!.S!;
      // A sparse namespace in a big table: return a short page rather than outrun the timeout.
      if (Date.now() - began > this.options.timeoutMs / 2) return { items: out, cursor: encodeCursor({ s: start }) };
      evaluate = Math.min(MAX_EVALUATED, evaluate * 4);
    }
  }

  private legacyFilter(spec: ScanSpec): string {
    return `#ns = :ns${spec.filter ? ` AND ${spec.filter}` : ""}${spec.prefix ? " AND begins_with(#k, :prefix)" : ""}`;
  }

  private legacyValues(ns: string, spec: ScanSpec): Attrs {
    return { ":ns": { S: ns }, ...(spec.prefix ? { ":prefix": { S: spec.prefix } } : {}), ...spec.values };
  }

  async scan(ns: string, options: ScanOptions, caller?: Caller): Promise<ScanPage<Item>> {
    const page = await this.scanItems("scan", ns, options.limit, options.cursor, { filter: "attribute_exists(#val)", prefix: options.prefix || undefined }, 0, 1, caller);
    return page as ScanPage<Item>;
  }

  async scanRaw(ns: string, options: RawScanOptions, segment: Segment, caller?: Caller): Promise<ScanPage<RawItem>> {
    return this.scanItems("scanRaw", ns, options.limit, options.cursor, {}, segment.segment, segment.total, caller);
  }

  /** The size filter runs in DynamoDB; only the few large items come back, values included. */
  async largeValues(ns: string, options: LargeValueOptions, caller?: Caller): Promise<ScanPage<ValueSize>> {
    const page = await this.scanItems("largeValues", ns, options.limit, options.cursor, { filter: "size(#val) > :min", values: { ":min": { N: String(options.minBytes) } } }, 0, 1, caller);
    return { items: page.items.map((i) => ({ key: i.key, bytes: i.value!.length })), cursor: page.cursor };
  }

  /** Every item's table key and version matching a filter, page by page, for drop and purge. */
  private async *keys(op: string, ns: string, filter?: string): AsyncGenerator<Attrs[]> {
    const layout = await this.layout(op);
    const spec: ScanSpec = { filter };
    const projection = layout === "legacy" ? "#pk, #ver" : "#pk, #sk, #ver";
    for (let b = 0; b < (layout === "legacy" ? 1 : bucketsOf(ns)); b++) {
      let start: Attrs | undefined;
      do {
        const from = start;
        // Consistent, so a drop or purge sees the latest writes.
        const filterExpression = this.legacyFilter(spec);
        const page =
          layout === "legacy"
            ? await this.call(
                op,
                "Scan",
                {
                  TableName: this.table,
                  ExclusiveStartKey: from,
                  ConsistentRead: true,
                  FilterExpression: filterExpression,
                  ProjectionExpression: projection,
                  ExpressionAttributeNames: names(filterExpression, projection),
                  ExpressionAttributeValues: this.legacyValues(ns, spec),
                },
                transient,
              )
            : await this.call(
                op,
                "Query",
                {
                  TableName: this.table,
                  KeyConditionExpression: "#pk = :pk",
                  ExclusiveStartKey: from,
                  ConsistentRead: true,
                  FilterExpression: filter,
                  ProjectionExpression: projection,
                  ExpressionAttributeNames: names("#pk", filter, projection),
                  ExpressionAttributeValues: { ":pk": { S: `${ns}#${b}` } },
                },
                transient,
              );
        if (page.Items?.length) yield page.Items;
        start = page.LastEvaluatedKey;
      } while (start);
    }
  }

  async namespaces(caller?: Caller): Promise<string[]> {
    const layout = await this.layout("namespaces");
    const out = await this.call("namespaces", "GetItem", { TableName: this.table, Key: DynamoDriver.registryKey(layout), ConsistentRead: true }, transient, true, caller);
    return [...(out.Item?.names?.SS ?? [])].sort();
  }

  /**
   * Approximate, and cheap however big the namespace: counts whole buckets until it has seen
   * COUNT_SAMPLE items (a hash spreads keys evenly over buckets) and scales up, so a small
   * namespace is counted exactly. Legacy tables: see estimateLegacyCount.
   */
  async estimateCount(ns: string): Promise<number> {
    if ((await this.layout("estimateCount")) === "legacy") return this.estimateLegacyCount(ns);
    const count = bucketsOf(ns);
    const began = Date.now();
    let seen = 0;
    for (let b = 0; b < count; b++) {
      const query = (from: Attrs | undefined): Page => ({
        target: "Query",
        input: {
          TableName: this.table,
          Select: "COUNT",
          KeyConditionExpression: "#pk = :pk",
          ExpressionAttributeNames: names("#pk"),
          ExpressionAttributeValues: { ":pk": { S: `${ns}#${b}` } },
          ExclusiveStartKey: from,
        },
      });
      seen += await this.countPages(query, began);
      if (seen >= COUNT_SAMPLE || Date.now() - began >= this.options.timeoutMs / 2) return Math.round((seen * count) / (b + 1));
    }
    return seen;
  }

  /**
   * Legacy tables: counts the namespace's items in one parallel-scan segment sized to about
   * 10 000 table items (from DescribeTable's ItemCount, which AWS refreshes every ~6 hours) and
   * scales up, so the cost stays small however big the table is.
   */
  private async estimateLegacyCount(ns: string): Promise<number> {
    const table = await this.send("estimateCount", (c, o) => c.send(new DescribeTableCommand({ TableName: this.table }), o), transient);
    const total = Math.max(1, Math.min(1_000_000, Math.ceil((table.Table?.ItemCount ?? 0) / COUNT_SAMPLE)));
    const scan = (from: Attrs | undefined): Page => ({
      target: "Scan",
      input: {
        TableName: this.table,
        Select: "COUNT",
        ExclusiveStartKey: from,
        FilterExpression: "#ns = :ns",
        ExpressionAttributeNames: names("#ns"),
        ExpressionAttributeValues: { ":ns": { S: ns } },
        Segment: total > 1 ? 0 : undefined,
        TotalSegments: total > 1 ? total : undefined,
      },
    });
    return (await this.countPages(scan, Date.now())) * total;
  }

  /** One page of a Query or a Scan (reads: retried while the failure may pass). */
  private readPage(op: string, page: Page, caller?: Caller): Promise<QueryCommandOutput> {
    return page.target === "Query" ? this.call(op, "Query", page.input, transient, true, caller) : this.call(op, "Scan", page.input, transient, true, caller);
  }

  /** Counts what a COUNT Query or Scan finds, page by page, until it ends or half of timeout_ms has passed since `began`. */
  private async countPages(command: (from: Attrs | undefined) => Page, began: number): Promise<number> {
    let count = 0;
    let start: Attrs | undefined;
    do {
      const from = start;
      const page = await this.readPage("estimateCount", command(from));
      count += page.Count ?? 0;
      start = page.LastEvaluatedKey;
    } while (start && Date.now() - began < this.options.timeoutMs / 2);
    return count;
  }

  async dropNamespace(ns: string): Promise<void> {
    this.registered.delete(ns);
    for await (const items of this.keys("dropNamespace", ns)) {
      await mapLimit(chunkBy(items, () => 0, 25), 4, (chunk) => this.batchDelete(chunk.map(DynamoDriver.primaryKey)));
    }
    const layout = await this.layout("dropNamespace");
    await this.call(
      "dropNamespace",
      "UpdateItem",
      {
        TableName: this.table,
        Key: DynamoDriver.registryKey(layout),
        UpdateExpression: "DELETE #names :ns",
        ExpressionAttributeNames: names("#names"),
        ExpressionAttributeValues: { ":ns": { SS: [ns] } },
      },
      transient,
    );
  }

  private async batchDelete(keys: Attrs[]): Promise<void> {
    await this.untilProcessed(
      keys.map((Key) => ({ DeleteRequest: { Key } })),
      async (requests) => {
        const out = await this.call("dropNamespace", "BatchWriteItem", { RequestItems: { [this.table]: requests } }, transient);
        return (out.UnprocessedItems?.[this.table] ?? []).filter((r) => r.DeleteRequest?.Key).map((r) => ({ DeleteRequest: { Key: r.DeleteRequest!.Key! } }));
      },
    );
  }

  async purgeTombstones(ns: string): Promise<number> {
    let purged = 0;
    const guard = "attribute_exists(#tomb) AND #ver = :v"; // a re-created or newer item stays
    for await (const items of this.keys("purgeTombstones", ns, "attribute_exists(#tomb)")) {
      const done = await mapLimit(items, WRITE_CONCURRENCY, async (a) => {
        try {
          await this.call(
            "purgeTombstones",
            "DeleteItem",
            { TableName: this.table, Key: DynamoDriver.primaryKey(a), ConditionExpression: guard, ExpressionAttributeNames: names(guard), ExpressionAttributeValues: { ":v": a.ver! } },
            transient,
          );
          return true;
        } catch (err) {
          if (isConditionFailed(err)) return false;
          throw err;
        }
      });
      purged += done.filter(Boolean).length;
    }
    return purged;
  }

  async close(): Promise<void> {
    this.lean?.destroy();
    this.lean = undefined;
    this.client?.destroy();
    this.client = undefined;
    this.ready.reset();
    this.tableLayout = undefined;
    this.registered.clear();
  }
}

export class DynamoStore extends KitStore<DynamoDriver> {}

/**
 * dynamodb://TABLE?region=R&endpoint=URL&create=true|false&timeout_ms=5000&client=lean|sdk (endpoint only for local servers).
 * `testing` carries what no URL sets (a skewed clock).
 */
export function createDynamoStore(url: URL, raw: string, testing: Pick<DynamoOptions, "clock"> = {}): DynamoStore {
  const table = decodeURIComponent(url.hostname || url.pathname.replace(/^\/+/, ""));
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(table)) {
    throw invalidArgument("store", `dynamodb: needs a table name of 3-255 letters, digits, _ . or - (dynamodb://TABLE?region=...), got ${JSON.stringify(table)}`);
  }
  const o = parseOptions("dynamodb", url, {
    region: option.passed(),
    endpoint: option.passed(),
    create: option.bool(true),
    timeout_ms: option.int(5000, 1, 600_000),
    client: option.text("lean", /^(lean|sdk)$/, "must be lean or sdk"),
  });
  const endpoint = o.endpoint;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) throw invalidArgument("store", `dynamodb endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  const region = o.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || undefined;
  return new DynamoStore(new DynamoDriver({ table, region, endpoint, create: o.create, timeoutMs: o.timeout_ms, client: o.client as "lean" | "sdk", ...testing }, raw));
}
