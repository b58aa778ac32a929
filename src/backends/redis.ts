// The Redis backend, through ioredis. Every write is one Lua script, so the condition check,
// the version bump and the write are atomic on the server; reads of several keys are scripts
// too, so a value and its version always come from the same moment.
//
// Key layout (P = the prefix option, ns = namespace), per namespace:
//   P:{ns}:ver   hash  key -> version (decimal string), for live items and tombstones
//   P:{ns}:val   hash  key -> value bytes, live items only (a tombstone has no field here)
//   P:{ns}:live  zset  score 0, member = key of every live item (scan walks it)
//   P:{ns}:tomb  zset  score 0, member = key of every tombstone (scanRaw merges it; purge empties it)
// and for the whole store:
//   P:namespaces set   every namespace ever written through this prefix
//   P:fence      string the write fence (raiseFence), a decimal epoch; absent = 0
// (namespace keys all hold a "{", so neither can collide with them).
//
// Why sorted sets instead of SCAN: SCAN may return a key more than once and in no order, but a
// scan must see every key that existed for the whole scan exactly once. ZRANGEBYLEX over a
// score-0 set pages by key ("(" + last key), compares bytes (so scans are ordered by UTF-8
// bytes), and a prefix is the range [prefix .. (prefixEnd). Keeping live keys and tombstones in
// two sets means a scan never wades through tombstones and purging needs no full walk.
//
// Redis Cluster: the {ns} hash tag puts every key of a namespace in one slot, so each script
// touches one slot. The registry lives in another slot and is never touched by a script: a
// namespace is added (SADD, idempotent) before its first write from this process and never
// removed, and namespaces() reports only those whose sets exist. That is race-free: removing
// an entry could race a writer that registered a moment before.
//
// A fenced write is the same script with the fence key added and a first check that refuses
// the whole call when the fence is above the write's epoch: Redis runs a script alone, so the
// check and the write are one step, and raiseFence (a script too) runs wholly before or after
// it. That script reads a key outside the namespace's slot, so fencing needs one Redis server
// (which is what this adapter connects to), not a cluster.
//
// Versions are uint64 but Lua numbers are doubles (exact only to 2^53), so versions are kept
// as decimal strings without leading zeros, compared by (length, then bytes) and incremented
// digit by digit in Lua.
import { Redis } from "ioredis";
import { settleSync } from "../protocol/batch.js";
import { throwIfCancelled, type Caller } from "../protocol/call.js";
import { DecantError, deadlineExceeded, invalidArgument, isDecantError, unavailable } from "../protocol/errors.js";
import { encodeCursor, keyAfter, pageOf, prefixEnd, type Segment } from "../protocol/paging.js";
import { checkCondition, liveItems, refuseIfFenced } from "../protocol/semantics.js";
import type { Capabilities } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import { compareKeys } from "../protocol/types.js";
import { chunkBy, Envelope, isNetworkError, option, parseOptions, redactUrl, withDeadline } from "./kit.js";
import { KitStore, type Driver } from "./store.js";

export interface RedisStoreOptions {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  prefix: string;
  timeoutMs: number;
}

const LUA_HELPERS = `
local function vless(a, b) -- a < b for decimal strings without leading zeros
  if #a ~= #b then return #a < #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return false
end
local function vnext(s) -- s + 1, digit by digit
  local i = #s
  while i > 0 and string.byte(s, i) == 57 do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end
local function kless(a, b) -- byte order; Lua's own < follows the server's locale
  local n = math.min(#a, #b)
  local i = 1
  while i + 63 <= n and string.sub(a, i, i + 63) == string.sub(b, i, i + 63) do i = i + 64 end
  while i <= n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
    i = i + 1
  end
  return #a < #b
end
local function setlive(key, value)
  redis.call('HSET', KEYS[2], key, value)
  redis.call('ZADD', KEYS[3], 0, key)
  redis.call('ZREM', KEYS[4], key)
end
local function settomb(key)
  redis.call('HDEL', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  redis.call('ZADD', KEYS[4], 0, key)
end
`;

// The fenced scripts' first step. KEYS[5] = the fence key, ARGV[1] = the write's epoch.
const FENCE_CHECK = `
local fence = redis.call('GET', KEYS[5])
if fence and vless(ARGV[1], fence) then return {'fenced', fence} end`;

// ARGV from `first`: (op 'p'|'d', key, value, condition ''|'nx'|'v', expected version) per write,
// applied in order. Returns per write: status ('put'|'del'|'absent'|'mismatch'), version (live
// version for a mismatch).
const writeScript = (first: number) => `
local out = {}
for i = ${first}, #ARGV, 5 do
  local op, key, value, cond, want = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local cur = redis.call('HGET', KEYS[1], key)
  local live = cur and redis.call('HEXISTS', KEYS[2], key) == 1
  local livever = live and cur or '0'
  if (cond == 'nx' and live) or (cond == 'v' and livever ~= want) then
    out[#out + 1] = 'mismatch'; out[#out + 1] = livever
  elseif op == 'd' and not live then
    out[#out + 1] = 'absent'; out[#out + 1] = cur or '0'
  else
    local nv = cur and vnext(cur) or '1'
    redis.call('HSET', KEYS[1], key, nv)
    if op == 'p' then setlive(key, value); out[#out + 1] = 'put' else settomb(key); out[#out + 1] = 'del' end
    out[#out + 1] = nv
  end
end
return out`;

// ARGV from `first`: (key, version, 'v'|'t', value) per item. Returns 1/0 per item: applied or not.
const applyScript = (first: number) => `
local out = {}
for i = ${first}, #ARGV, 4 do
  local key, ver, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local cur = redis.call('HGET', KEYS[1], key)
  if cur and not vless(cur, ver) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[1], key, ver)
    if kind == 'v' then setlive(key, ARGV[i + 3]) else settomb(key) end
    out[#out + 1] = 1
  end
end
return out`;

// KEYS: ver val live tomb. Always all four, in this order (the helpers above rely on it).
const SCRIPTS = {
  decantWrite: `${LUA_HELPERS}${writeScript(1)}`,
  decantApply: `${LUA_HELPERS}${applyScript(1)}`,
  // ARGV: keys. Returns per key: version or nil, value or nil.
  decantRead: `
local out = {}
for i = 1, #ARGV do
  out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i])
  out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[i])
end
return out`,
  // ARGV: min, max (ZRANGEBYLEX bounds), count. Live items only: (key, version, value) each.
  decantScan: `
local out = {}
for _, k in ipairs(redis.call('ZRANGEBYLEX', KEYS[3], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  out[#out + 1] = k; out[#out + 1] = redis.call('HGET', KEYS[1], k); out[#out + 1] = redis.call('HGET', KEYS[2], k)
end
return out`,
  // ARGV: min, count, keysOnly ("1": every value nil). Live items and tombstones merged in byte
  // order: (key, version, value or nil) each.
  decantScanRaw: `${LUA_HELPERS}
local n = tonumber(ARGV[2])
local values = ARGV[3] ~= '1'
local a = redis.call('ZRANGEBYLEX', KEYS[3], ARGV[1], '+', 'LIMIT', 0, n)
local b = redis.call('ZRANGEBYLEX', KEYS[4], ARGV[1], '+', 'LIMIT', 0, n)
local out, i, j, taken = {}, 1, 1, 0
while taken < n and (i <= #a or j <= #b) do
  local k
  if j > #b or (i <= #a and kless(a[i], b[j])) then k = a[i]; i = i + 1 else k = b[j]; j = j + 1 end
  out[#out + 1] = k; out[#out + 1] = redis.call('HGET', KEYS[1], k); out[#out + 1] = values and redis.call('HGET', KEYS[2], k)
  taken = taken + 1
end
return out`,
  // ARGV: min, count, minBytes. Walks count live keys; returns the last key walked (or nil when
  // there were fewer), then (key, value length) for each value longer than minBytes.
  decantLargeValues: `
local ks = redis.call('ZRANGEBYLEX', KEYS[3], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {false}
if #ks == tonumber(ARGV[2]) then out[1] = ks[#ks] end
local min = tonumber(ARGV[3])
for _, k in ipairs(ks) do
  local n = redis.call('HSTRLEN', KEYS[2], k)
  if n > min then out[#out + 1] = k; out[#out + 1] = n end
end
return out`,
  // ARGV: count. Removes up to count tombstones; returns how many.
  decantPurge: `
local ks = redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[1]) - 1)
if #ks > 0 then
  redis.call('HDEL', KEYS[1], unpack(ks))
  redis.call('ZREM', KEYS[4], unpack(ks))
end
return #ks`,
} as const;

/** The fenced forms: KEYS ver val live tomb fence; ARGV[1] = the epoch; a refusal returns {'fenced', fence}. */
const FENCED_SCRIPTS = {
  decantWriteFenced: `${LUA_HELPERS}${FENCE_CHECK}${writeScript(2)}`,
  decantApplyFenced: `${LUA_HELPERS}${FENCE_CHECK}${applyScript(2)}`,
} as const;

// KEYS: the fence key. ARGV: the epoch. Returns the fence in force after it.
const RAISE_FENCE = `${LUA_HELPERS}
local fence = redis.call('GET', KEYS[1])
if fence and not vless(fence, ARGV[1]) then return fence end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]`;

type ScriptName = keyof typeof SCRIPTS;
type Reply = Buffer | string | number | null | Reply[];

/** Writes and key lookups go to the server in chunks, so one call never blocks Redis for long. */
const CHUNK_ITEMS = 200;
const CHUNK_BYTES = 8 * 1024 * 1024;
const PURGE_CHUNK = 500;

/** A server that accepted the connection said nothing (no handshake answer) within timeout_ms. */
class ConnectTimeout extends Error {
  constructor(ms: number) {
    super(`no answer while connecting within ${ms} ms`);
  }
}

/** Errors that may pass on their own (and a call that failed with them may be repeated if idempotent). */
function isTransient(err: unknown): boolean {
  if (isDecantError(err)) return false;
  if (isNetworkError(err)) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /Connection is closed|Stream isn't writeable|max retries per request|^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY)\b/.test(message);
}

/** What the redis store can do (see Capabilities). */
const CAPABILITIES: Capabilities = {
  orderedScan: true,
  segmentedScan: false,
  // Redis holds up to 512 MB per value, but one huge value stalls the single-threaded server for everyone.
  maxValueBytes: () => 16 * 1024 * 1024,
  durable: true,
  fencing: true,
  applyBatch: { items: CHUNK_ITEMS, bytes: CHUNK_BYTES },
};

class RedisDriver implements Driver {
  readonly kind = "redis";
  readonly description: string;
  readonly capabilities = CAPABILITIES;
  private readonly calls: Envelope;
  private client?: Redis;
  private connecting?: Promise<void>;
  private lastError?: unknown;
  private closed = false;
  /** Namespaces this process has registered already (registry entries are never removed). */
  private readonly registered = new Set<string>();
  private readonly nsKeys = new Map<string, readonly [string, string, string, string]>();
  private fenceKeyText?: string;

  constructor(
    private readonly options: RedisStoreOptions,
    description: string,
  ) {
    this.description = description;
    this.calls = new Envelope({ store: description, timeoutMs: options.timeoutMs, isTransient, mapError: (op, err) => this.mapError(op, err) });
  }

  // ---- connection -------------------------------------------------------------------------

  private newClient(): Redis {
    const o = this.options;
    const client = new Redis({
      host: o.host,
      port: o.port,
      db: o.db,
      username: o.username,
      password: o.password,
      tls: o.tls ? { servername: o.host } : undefined,
      lazyConnect: true, // the factory must not connect; the first operation does
      connectTimeout: o.timeoutMs,
      commandTimeout: o.timeoutMs,
      disconnectTimeout: Math.min(o.timeoutMs, 2000), // a socket the server never closes is destroyed after this
      // No background reconnect loop and no offline queue: a call on a down server fails at once,
      // and ready() reconnects on demand, so a restarted server is picked up by the next call.
      retryStrategy: () => null,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A write must never be sent twice behind our back (it would bump a version twice).
      autoResendUnfulfilledCommands: false,
    });
    client.on("error", (err: unknown) => {
      this.lastError = err; // reported in the next failure; the listener also keeps ioredis from printing it
    });
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 4, lua });
    for (const [name, lua] of Object.entries(FENCED_SCRIPTS)) client.defineCommand(name, { numberOfKeys: 5, lua });
    client.defineCommand("decantRaiseFence", { numberOfKeys: 1, lua: RAISE_FENCE });
    return client;
  }

  /** A connected client; (re)connects when the connection is new or was lost. */
  private async ready(): Promise<Redis> {
    if (this.closed) throw new DecantError("unavailable", `store ${this.description} is closed`);
    const client = (this.client ??= this.newClient());
    if (client.status === "ready") return client;
    this.connecting ??= new Promise<void>((resolve, reject) => {
      this.lastError = undefined;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        client.off("ready", onReady);
        client.off("end", onEnd);
        this.connecting = undefined;
        if (!err) return resolve();
        // Leave it in "end", so the next call starts a fresh attempt. (Not when already ended:
        // disconnect() would then mark the next attempt as manually closed and hide its error.)
        if (client.status !== "end") client.disconnect();
        reject(err instanceof ConnectTimeout ? err : (this.lastError ?? err));
      };
      const onReady = () => finish();
      const onEnd = () => finish(new Error("Connection is closed."));
      // The TCP connect and the handshake (AUTH, SELECT, ready check) together get timeout_ms: a
      // server that accepts but never answers must not leave a connection hanging.
      const timer = setTimeout(() => finish(new ConnectTimeout(this.options.timeoutMs)), this.options.timeoutMs);
      client.once("ready", onReady);
      client.once("end", onEnd);
      if (client.status === "wait" || client.status === "end") client.connect().catch(() => undefined);
    });
    await this.connecting;
    return client;
  }

  /**
   * Runs one operation, bounded by timeout_ms. Connecting is always retried (nothing was sent);
   * the operation itself only when `idempotent`. `caller`: who it runs for (see Driver), if anyone.
   */
  private call<T>(op: string, idempotent: boolean, run: (client: Redis) => Promise<T>, caller?: Caller): Promise<T> {
    return this.calls.run(
      op,
      async (deadline) => {
        // A connected client skips ready()'s promise and the connect step: nothing to wait for.
        const live = this.client;
        const client = !this.closed && live?.status === "ready" ? live : idempotent ? await this.ready() : await this.calls.connect(deadline, () => this.ready(), caller);
        throwIfCancelled(op, caller); // connected, nothing sent yet
        return run(client);
      },
      idempotent,
      caller,
    );
  }

  private mapError(op: string, err: unknown): DecantError {
    if (isDecantError(err)) return err;
    // The server accepted the connection and never answered: a timeout, like any other.
    if (err instanceof ConnectTimeout) return deadlineExceeded(this.description, op, this.options.timeoutMs);
    const cause = err instanceof Error && err.message === "Connection is closed." && this.lastError ? this.lastError : err;
    return unavailable(this.description, cause);
  }

  /** A namespace's four keys, built once per namespace (every call of every script names them). */
  private keys(ns: string): readonly [string, string, string, string] {
    let keys = this.nsKeys.get(ns);
    if (!keys) {
      const base = `${this.options.prefix}:{${ns}}:`;
      this.nsKeys.set(ns, (keys = [`${base}ver`, `${base}val`, `${base}live`, `${base}tomb`]));
    }
    return keys;
  }

  private get registryKey(): string {
    return `${this.options.prefix}:namespaces`;
  }

  private get fenceKey(): string {
    return (this.fenceKeyText ??= `${this.options.prefix}:fence`);
  }

  private script(client: Redis, name: ScriptName, ns: string, args: (string | Buffer | number)[], buffers = false): Promise<Reply> {
    return this.command(client, buffers ? `${name}Buffer` : name, [...this.keys(ns), ...args]);
  }

  /** A write script, in its fenced form when the write carries an epoch. */
  private writeScript(client: Redis, name: "decantWrite" | "decantApply", ns: string, args: (string | Buffer)[], epoch: number | undefined): Promise<Reply> {
    if (epoch === undefined) return this.script(client, name, ns, args);
    return this.command(client, `${name}Fenced`, [...this.keys(ns), this.fenceKey, String(epoch), ...args]);
  }

  private command(client: Redis, name: string, args: (string | Buffer | number)[]): Promise<Reply> {
    return (client as unknown as Record<string, (...a: unknown[]) => Promise<Reply>>)[name]!.call(client, ...args);
  }

  /** Throws `fenced` if a fenced script refused the call ({'fenced', fence}). */
  private refused(reply: Reply[], epoch: number | undefined): void {
    if (reply[0] === "fenced") refuseIfFenced(this.description, epoch, BigInt(String(reply[1])));
  }

  /** Adds ns to the registry before its first write from this process (idempotent, so safe to repeat). */
  private async register(client: Redis, ns: string): Promise<void> {
    if (this.registered.has(ns)) return;
    await client.sadd(this.registryKey, ns);
    this.registered.add(ns);
  }

  // ---- client operations ------------------------------------------------------------------

  async readRaw(ns: string, keys: string[], caller?: Caller): Promise<RawItem[]> {
    const out: RawItem[] = [];
    for (let i = 0; i < keys.length; i += CHUNK_ITEMS * 2) {
      const chunk = keys.slice(i, i + CHUNK_ITEMS * 2);
      const reply = (await this.call("get", true, (c) => this.script(c, "decantRead", ns, chunk, true), caller)) as (Buffer | null)[];
      chunk.forEach((key, j) => {
        const version = reply[2 * j];
        if (version) out.push({ key, version: BigInt(version.toString()), value: reply[2 * j + 1] ?? null });
      });
    }
    return out;
  }

  async put(ns: string, key: string, value: Buffer, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<bigint> {
    const [outcome] = await this.write(ns, [{ type: "put", key, value, condition }], fence, caller);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.version;
  }

  async delete(ns: string, key: string, condition: Condition | undefined, fence: number | undefined, caller?: Caller): Promise<DeleteResult> {
    const [outcome] = await this.write(ns, [{ type: "delete", key, condition }], fence, caller);
    if (!outcome!.ok) throw outcome!.error;
    return { deleted: outcome!.deleted === true, version: outcome!.version };
  }

  /**
   * Sends the writes in chunks, each one script call (so writes to one key keep their order). Not
   * retried: a blind put repeated would bump the version twice. A chunk that fails fails the
   * whole call (the batch rule); the chunks before it were applied.
   */
  writeBatch(ns: string, ops: WriteOp[]): Promise<WriteOutcome[]> {
    return this.write(ns, ops);
  }

  /** batchWrite, fenced where `epoch` is given (put and delete: one op, so one script, and their caller). */
  private async write(ns: string, ops: WriteOp[], epoch?: number, caller?: Caller): Promise<WriteOutcome[]> {
    const results: WriteOutcome[] = [];
    for (const chunk of chunkBy(ops, (op) => (op.type === "put" ? op.value.length : 0), CHUNK_ITEMS, CHUNK_BYTES)) {
      const args: (string | Buffer)[] = [];
      for (const op of chunk) {
        const cond = op.condition;
        args.push(op.type === "put" ? "p" : "d", op.key, op.type === "put" ? op.value : "", !cond ? "" : cond.kind === "must_not_exist" ? "nx" : "v", cond?.kind === "expected_version" ? cond.version.toString() : "");
      }
      const reply = (await this.call("write", false, async (c) => {
        await this.register(c, ns);
        return this.writeScript(c, "decantWrite", ns, args, epoch);
      }, caller)) as string[];
      this.refused(reply, epoch);
      chunk.forEach((op, j) => results.push(settleSync(op.key, () => this.outcome(op, reply[2 * j]!, BigInt(reply[2 * j + 1]!)))));
    }
    return results;
  }

  private outcome(op: WriteOp, status: string, version: bigint): WriteOutcome {
    if (status === "put") return { ok: true, key: op.key, version };
    if (status === "del") return { ok: true, key: op.key, version, deleted: true };
    if (status === "absent") return { ok: true, key: op.key, version, deleted: false };
    // The script found the condition false; checkCondition throws the same error every backend reports.
    if (status === "mismatch") checkCondition(op.key, version === 0n ? null : { key: op.key, value: Buffer.alloc(0), version }, op.condition);
    throw new DecantError("internal", `redis write script returned ${status} for key ${JSON.stringify(op.key)}`);
  }

  async scan(ns: string, options: ScanOptions, caller?: Caller): Promise<ScanPage<Item>> {
    const prefix = options.prefix ?? "";
    const after = keyAfter(options.cursor);
    const min = after !== "" && compareKeys(after, prefix) >= 0 ? `(${after}` : prefix ? `[${prefix}` : "-";
    const end = prefix ? prefixEnd(prefix) : null;
    const max = end === null ? "+" : `(${end}`;
    const reply = (await this.call("scan", true, (c) => this.script(c, "decantScan", ns, [min, max, options.limit + 1], true), caller)) as (Buffer | null)[];
    return pageOf(liveItems(triples(reply)), options.limit);
  }

  // ---- replication operations -------------------------------------------------------------

  async applyIfNewer(ns: string, items: RawItem[], fence: number | undefined): Promise<boolean[]> {
    const applied: boolean[] = [];
    const indexes = items.map((_, i) => i);
    // Fenced, the whole call is one script, so it is refused or applied under one fence (and
    // blocks Redis for its whole size: fenced batches are meant to be small).
    for (const chunk of fence === undefined ? chunkBy(indexes, (i) => items[i]!.value?.length ?? 0, CHUNK_ITEMS, CHUNK_BYTES) : [indexes]) {
      const args: (string | Buffer)[] = [];
      for (const i of chunk) {
        const item = items[i]!;
        args.push(item.key, item.version.toString(), item.value === null ? "t" : "v", item.value ?? "");
      }
      // Idempotent by version, so retried like a read.
      const reply = (await this.call("applyIfNewer", true, async (c) => {
        await this.register(c, ns);
        return this.writeScript(c, "decantApply", ns, args, fence);
      })) as number[];
      this.refused(reply, fence);
      applied.push(...reply.map((r) => r === 1));
    }
    return applied;
  }

  async scanRaw(ns: string, options: RawScanOptions, segment: Segment, caller?: Caller): Promise<ScanPage<RawItem>> {
    const after = keyAfter(options.cursor, segment);
    const min = after === "" ? "-" : `(${after}`;
    const reply = (await this.call("scanRaw", true, (c) => this.script(c, "decantScanRaw", ns, [min, options.limit + 1, options.keysOnly ? "1" : "0"], true), caller)) as (Buffer | null)[];
    return pageOf(triples(reply), options.limit, segment);
  }

  /**
   * Walks `limit` live keys per call: a page may hold fewer items (even none) and still have a
   * cursor, but each call does bounded work on the server.
   */
  async largeValues(ns: string, options: LargeValueOptions, caller?: Caller): Promise<ScanPage<ValueSize>> {
    const after = keyAfter(options.cursor);
    const min = after === "" ? "-" : `(${after}`;
    const reply = (await this.call("largeValues", true, (c) => this.script(c, "decantLargeValues", ns, [min, options.limit, options.minBytes], true), caller)) as (Buffer | number | null)[];
    const items: ValueSize[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) items.push({ key: (reply[i] as Buffer).toString("utf8"), bytes: Number(reply[i + 1]) });
    const last = reply[0];
    return { items, cursor: last ? encodeCursor({ k: (last as Buffer).toString("utf8") }) : undefined };
  }

  async namespaces(caller?: Caller): Promise<string[]> {
    return this.call("namespaces", true, async (c) => {
      const names = await c.smembers(this.registryKey);
      const pipeline = c.pipeline();
      for (const ns of names) pipeline.exists(this.keys(ns)[2], this.keys(ns)[3]);
      const counts = (await pipeline.exec()) ?? [];
      return names
        .filter((_, i) => {
          const [err, n] = counts[i] ?? [new Error("no reply")];
          if (err) throw err;
          return Number(n) > 0;
        })
        .sort();
    }, caller);
  }

  async estimateCount(ns: string, caller?: Caller): Promise<number> {
    const [, , live, tomb] = this.keys(ns);
    return this.call("estimateCount", true, async (c) => (await c.zcard(live)) + (await c.zcard(tomb)), caller);
  }

  async dropNamespace(ns: string): Promise<void> {
    // One command over one slot: atomic, and UNLINK frees the memory in the background.
    await this.call("dropNamespace", true, (c) => c.unlink(...this.keys(ns)));
  }

  async purgeTombstones(ns: string): Promise<number> {
    let purged = 0;
    for (;;) {
      const n = Number(await this.call("purgeTombstones", true, (c) => this.script(c, "decantPurge", ns, [PURGE_CHUNK])));
      purged += n;
      if (n < PURGE_CHUNK) return purged;
    }
  }

  async raiseFence(epoch: number): Promise<number> {
    return Number(await this.call("raiseFence", true, (c) => this.command(c, "decantRaiseFence", [this.fenceKey, String(epoch)])));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.status === "ready") {
      try {
        await withDeadline(this.description, "quit", this.options.timeoutMs, () => client.quit());
        return;
      } catch {
        // fall through: drop the connection instead
      }
    }
    client.disconnect();
  }
}

export class RedisStore extends KitStore<RedisDriver> {}

/** Script replies of (key, version, value) triples. */
function triples(reply: (Buffer | null)[]): RawItem[] {
  const out: RawItem[] = [];
  for (let i = 0; i + 2 < reply.length; i += 3) {
    out.push({ key: reply[i]!.toString("utf8"), version: BigInt(reply[i + 1]!.toString()), value: reply[i + 2] ?? null });
  }
  return out;
}

/**
 * redis://[user][:password@]host[:6379][/db][?options]
 *   prefix=P        every key starts with "P:" (default "decant"), so several services can share
 *                   one Redis (and an ACL can grant ~P:*); letters, digits and _ . : / - only
 *   timeout_ms=N    bound on every call, connecting included (default 5000)
 *   tls=true        connect with TLS (default false)
 */
export function createRedisStore(url: URL, raw: string): RedisStore {
  const o = parseOptions("redis", url, {
    prefix: option.text("decant", /^[A-Za-z0-9_.:/-]{1,100}$/, "must be 1-100 letters, digits or _ . : / - (no braces: they would change the cluster hash tag)"),
    timeout_ms: option.int(5000, 1, 600_000),
    tls: option.bool(false),
  });
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!host) throw invalidArgument("store", "redis: needs a host, e.g. redis://127.0.0.1:6379/0");
  const dbText = url.pathname.replace(/^\//, "") || "0";
  if (!/^\d+$/.test(dbText)) throw invalidArgument("store", `redis database (the URL path) must be a number, got ${JSON.stringify(dbText)}`);
  return new RedisStore(
    new RedisDriver(
      {
        host,
        port: url.port ? Number(url.port) : 6379,
        db: Number(dbText),
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: o.tls,
        prefix: o.prefix,
        timeoutMs: o.timeout_ms,
      },
      redactUrl(raw),
    ),
  );
}
