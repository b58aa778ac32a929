// The DynamoDB data path without the AWS SDK: the JSON protocol (POST, X-Amz-Target) over a
// pool of keep-alive HTTP/1.1 connections of its own (http1.ts), signed by PostSigner below
// (@smithy/signature-v4 for an endpoint with a path). The SDK's per-call machinery
// (a middleware stack built per command, endpoint rules evaluated per call, generic serde, a
// dozen promises per call) cost about 0.7 ms of CPU per PutItem; this costs a fraction
// (docs/PERFORMANCE.md, "CPU per item into DynamoDB"). Credentials, region and endpoint still
// come from the SDK client's resolved config, so the default provider chain (env, profiles,
// IRSA, instance roles) and its refresh keep working; table administration stays on the SDK.
//
// Errors look like the SDK's where the backend reads them: `name` is DynamoDB's error type
// (ConditionalCheckFailedException, ValidationException…, "Unknown" for an answer that is not
// DynamoDB's), `$metadata.httpStatusCode` the status, and the error body's fields (a failed
// condition's Item) are on the error. Socket errors pass through with their codes; an aborted
// call rejects with an AbortError.
import { createHash, createHmac, createSecretKey, hash, type Hash, type Hmac, type KeyObject } from "node:crypto";
import { crc32 } from "node:zlib";
import type {
  BatchGetItemCommandInput,
  BatchGetItemCommandOutput,
  BatchWriteItemCommandInput,
  BatchWriteItemCommandOutput,
  DeleteItemCommandInput,
  DeleteItemCommandOutput,
  DynamoDBClient,
  GetItemCommandInput,
  GetItemCommandOutput,
  PutItemCommandInput,
  PutItemCommandOutput,
  QueryCommandInput,
  QueryCommandOutput,
  ScanCommandInput,
  ScanCommandOutput,
  UpdateItemCommandInput,
  UpdateItemCommandOutput,
} from "@aws-sdk/client-dynamodb";
import { SignatureV4 } from "@smithy/signature-v4";
import { Http1Pool, type Exchange, type Reply } from "./http1.js";

/** The operations on the data path, with the SDK's input and output shapes. */
export interface DataOps {
  GetItem: [GetItemCommandInput, GetItemCommandOutput];
  PutItem: [PutItemCommandInput, PutItemCommandOutput];
  UpdateItem: [UpdateItemCommandInput, UpdateItemCommandOutput];
  DeleteItem: [DeleteItemCommandInput, DeleteItemCommandOutput];
  BatchGetItem: [BatchGetItemCommandInput, BatchGetItemCommandOutput];
  BatchWriteItem: [BatchWriteItemCommandInput, BatchWriteItemCommandOutput];
  Query: [QueryCommandInput, QueryCommandOutput];
  Scan: [ScanCommandInput, ScanCommandOutput];
}
export type DataOp = keyof DataOps;

/** What DynamoDB answered with an error: shaped as the SDK's service exceptions are, where the backend looks. */
export class DynamoServiceError extends Error {
  readonly $metadata: { httpStatusCode: number };
  [field: string]: unknown;
  constructor(name: string, message: string, status: number, body: Record<string, unknown>) {
    super(message);
    for (const [k, v] of Object.entries(body)) if (k !== "__type" && k !== "message" && k !== "Message") this[k] = v;
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === "string" ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);

/** SHA-256 and HMAC-SHA-256 on node:crypto, in the shape the signer (@smithy/signature-v4) takes. */
export class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.hash.digest());
  }
}

const base64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");

/**
 * The input with binary values (B, BS) as base64, as the protocol wants, copying only the
 * objects on the way to bytes, so a Buffer's toJSON (an array of numbers) never runs. A walk,
 * not a JSON.stringify replacer: a replacer takes V8 off its fast path (a third dearer per Put).
 */
function binaryAsBase64(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (value instanceof Uint8Array) return base64(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const c = binaryAsBase64(v);
      if (c !== v) (out ??= value.slice())[i] = c;
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  const o = value as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (typeof v !== "object" || v === null) continue;
    const c = binaryAsBase64(v);
    if (c !== v) (out ??= { ...o })[k] = c;
  }
  return out ?? value;
}

/** A parsed answer with every B (a base64 string) as bytes, in place, as the SDK gives them; BS is not used here. A walk, not a JSON.parse reviver (a call per value). */
function base64AsBinary(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (const v of value) base64AsBinary(v);
    return value;
  }
  const o = value as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (k === "B" && typeof v === "string") o[k] = Buffer.from(v, "base64");
    else if (typeof v === "object" && v !== null) base64AsBinary(v);
  }
  return value;
}

/** JSON text of an answer, its binaries as bytes. */
const parseAnswer = (text: string): unknown => base64AsBinary(JSON.parse(text));

const TARGET_PREFIX = "DynamoDB_20120810.";
const CONTENT_TYPE = "application/x-amz-json-1.0";

type Identity = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };
type CredentialsProvider = () => Promise<Identity>;

/** One-shot: half the CPU of createHash().update().digest() for a Put's body. */
const sha256Hex = (data: string): string => hash("sha256", data, "hex");
/**
 * Credentials that expire are asked of the provider again this long before they do: the SDK's
 * memoized providers refresh 5 minutes ahead, so we never sign with what they would replace.
 */
const IDENTITY_MARGIN_MS = 6 * 60_000;

/**
 * SigV4 for the one request shape this client sends (POST /, four headers, a JSON body): the
 * signature @smithy/signature-v4 computes, without its generic request preparation and its
 * per-call HMAC of the credentials (its signing-key cache key), a tenth of the sidecar's CPU per
 * Put in a profile. The signing key is kept per day, region and secret.
 */
export class PostSigner {
  private key?: { scope: string; secret: string; key: KeyObject };
  /** The last X-Amz-Date made, for its second: most calls come within the same one. */
  private date = { second: NaN, text: "" };
  /** The provider's last answer, reused while it cannot have changed (see current). */
  private identity?: Identity;

  constructor(private readonly credentials: CredentialsProvider) {}

  /** `at`: the signing time (a Date, or ms since the epoch). */
  async sign(host: string, region: string, target: string, body: string, at: Date | number): Promise<Record<string, string>> {
    return this.signWith(this.current() ?? (await this.fetch()), host, region, target, body, typeof at === "number" ? at : at.getTime());
  }

  /**
   * The credentials without a call to the provider (a promise or more per Put), while the
   * provider would answer the same: ones with no expiration (static, env, a profile: the
   * SDK's providers never refresh them), or ones that expire more than IDENTITY_MARGIN_MS from
   * now. Undefined otherwise: then fetch().
   */
  current(): Identity | undefined {
    const c = this.identity;
    if (c === undefined) return undefined;
    if (c.expiration === undefined || c.expiration.getTime() - Date.now() > IDENTITY_MARGIN_MS) return c;
    this.identity = undefined;
    return undefined;
  }

  /** Asks the provider (which refreshes what is about to expire), and keeps its answer. */
  async fetch(): Promise<Identity> {
    const c = await this.credentials();
    this.identity = c;
    return c;
  }

  /** The headers of a signed POST (content-length is the caller's: it is not signed). `at`: ms since the epoch. */
  signWith(c: Identity, host: string, region: string, target: string, body: string, at: number): Record<string, string> {
    const amzDate = this.amzDate(at);
    const scope = `${amzDate.slice(0, 8)}/${region}/dynamodb/aws4_request`;
    if (this.key?.scope !== scope || this.key.secret !== c.secretAccessKey) {
      let key = createHmac("sha256", `AWS4${c.secretAccessKey}`).update(amzDate.slice(0, 8)).digest();
      for (const part of [region, "dynamodb", "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
      // A KeyObject: createHmac takes it without preparing the key again per call.
      this.key = { scope, secret: c.secretAccessKey, key: createSecretKey(key) };
    }
    // Canonical headers in name order: content-type, host, x-amz-date, [x-amz-security-token,] x-amz-target.
    const token = c.sessionToken ? `x-amz-security-token:${c.sessionToken.trim()}\n` : "";
    const signedHeaders = c.sessionToken ? "content-type;host;x-amz-date;x-amz-security-token;x-amz-target" : "content-type;host;x-amz-date;x-amz-target";
    const canonical = `POST\n/\n\ncontent-type:${CONTENT_TYPE}\nhost:${host}\nx-amz-date:${amzDate}\n${token}x-amz-target:${target}\n\n${signedHeaders}\n${sha256Hex(body)}`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
    const signature = createHmac("sha256", this.key.key).update(toSign).digest("hex");
    const headers: Record<string, string> = { "content-type": CONTENT_TYPE, host, "x-amz-date": amzDate, "x-amz-target": target };
    if (c.sessionToken) headers["x-amz-security-token"] = c.sessionToken;
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${c.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  /** ISO 8601 basic format, to the second (20261206T155500Z). */
  private amzDate(at: number): string {
    const second = Math.floor(at / 1000);
    if (second !== this.date.second) this.date = { second, text: new Date(at).toISOString().replace(/[-:]|\.\d{3}/g, "") };
    return this.date.text;
  }
}


export interface DynamoHttpOptions {
  /** The SDK client whose resolved config gives credentials, region and endpoint. */
  sdk: DynamoDBClient;
  /** The endpoint= URL option, if any (a local server); otherwise the SDK's endpoint rules decide. */
  endpoint?: string;
  maxSockets: number;
  /** This machine's time in ms (tests give a skewed one); Date.now by default. */
  clock?: () => number;
}

/** The errors DynamoDB answers a request signed at the wrong time with (the SDK's list, @smithy/core retry). */
const CLOCK_SKEW_ERRORS = new Set(["AccessDeniedException", "AuthFailure", "InvalidSignatureException", "RequestExpired", "RequestInTheFuture", "RequestTimeTooSkewed", "SignatureDoesNotMatch"]);
/** A correction smaller than this is not why a request was refused (DynamoDB allows 5 minutes): the SDK's threshold. */
const SKEW_THRESHOLD_MS = 240_000;

interface Target {
  url: URL;
  region: string;
}

/** What abandons a call: the backend's Deadline (expired once its caller was answered deadline_exceeded). */
export interface Abandon {
  readonly expired?: boolean;
}

const abandoned = (): Error => Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR" });
/**
 * How often requests of abandoned calls are looked for and ended (freeing their sockets). A sweep,
 * not an AbortSignal per call: the signal, its controller and its listener were 5% of the sidecar's
 * CPU per Put in a profile.
 */
const SWEEP_MS = 1000;

/** The error of an answer whose bytes do not match its x-amz-crc32: damaged on the way (a proxy, a plain-HTTP link). */
export const DAMAGED_ANSWER = "CRC32CheckFailed";

/**
 * The answer, once its bytes match the CRC32 DynamoDB sends with every answer (as botocore and
 * Go's SDK check it; an emulator that sends none is not checked). A damaged answer is an error
 * the backend retries where a retry is safe (reads, idempotent writes) and reports as unavailable
 * elsewhere: the write may have landed.
 */
function answerOf(r: Reply): Answer {
  const sent = r.headers["x-amz-crc32"];
  if (sent !== undefined && String(crc32(r.bytes)) !== sent) {
    throw Object.assign(new Error(`DynamoDB's answer (HTTP ${r.status}, ${r.bytes.length} bytes) does not match its x-amz-crc32 ${sent}: damaged on the way`), { name: DAMAGED_ANSWER });
  }
  return { status: r.status, text: r.text, date: r.headers.date, age: r.headers.age };
}

/** An HTTP answer, whole; `error` once an error answer has been parsed. */
interface Answer {
  status: number;
  text: string;
  date?: string;
  age?: string;
  error?: DynamoServiceError;
}

/** The lean client: one signed POST per call (two when a refusal corrects the clock). */
export class DynamoHttp {
  private target?: Promise<Target>;
  /** The target once resolved: a call then does not await it. */
  private resolved?: Target;
  /** For an endpoint whose path is not "/" (a proxy's), whose canonical form the general signer knows. */
  private readonly signer: SignatureV4;
  private readonly postSigner: PostSigner;
  /** Keep-alive connections to the target (http1.ts), made with it. */
  private pool?: Http1Pool;
  private readonly clock: () => number;
  /** Requests in flight of calls that can be abandoned, for the sweep. */
  private readonly inflight = new Map<Exchange, Abandon>();
  private sweeper?: NodeJS.Timeout;
  /** Server time minus ours, learnt from a refusal's Date header (as the SDK's systemClockOffset): every signature uses it. */
  private clockOffset = 0;

  constructor(private readonly options: DynamoHttpOptions) {
    const config = options.sdk.config;
    this.signer = new SignatureV4({ service: "dynamodb", region: config.region, credentials: config.credentials, sha256: Sha256, applyChecksum: false });
    this.postSigner = new PostSigner(config.credentials as CredentialsProvider);
    this.clock = options.clock ?? Date.now;
  }

  /** Endpoint and region as the SDK resolves them (its endpoint rules: FIPS, dual-stack, partitions), once. */
  private resolve(): Promise<Target> {
    this.target ??= (async () => {
      const config = this.options.sdk.config;
      const region = await config.region();
      if (this.options.endpoint) return { url: new URL(this.options.endpoint), region };
      const endpoint = config.endpointProvider({ Region: region, UseFIPS: await config.useFipsEndpoint(), UseDualStack: await config.useDualstackEndpoint() } as never);
      return { url: new URL(endpoint.url.href), region };
    })();
    this.target.then(
      (t) => (this.resolved = t),
      () => (this.target = undefined), // a failed resolution is tried again next call
    );
    return this.target;
  }

  /**
   * One call; `o.expired` (the backend's Deadline) turning true abandons it: its request is ended within a second.
   * `binary` false: the answer's B values stay base64 text, for a caller that reads none (a Put's
   * UPDATED_NEW answer carries the value back). An error answer is always decoded whole.
   */
  async call<K extends DataOp>(op: K, input: DataOps[K][0], o: Abandon, binary = true): Promise<DataOps[K][1]> {
    if (o.expired) throw abandoned();
    const target = this.resolved ?? (await this.resolve());
    const body = JSON.stringify(binaryAsBase64(input));
    const offset = this.clockOffset;
    let answer = await this.attempt(target, op, body, offset, o);
    // Refused as signed at the wrong time: correct the clock from the answer and try again, once, now.
    if (answer.status !== 200 && this.correctClock(answer, offset)) answer = await this.attempt(target, op, body, this.clockOffset, o);
    if (answer.status === 200) return (answer.text ? (binary ? parseAnswer(answer.text) : JSON.parse(answer.text)) : {}) as DataOps[K][1];
    throw answer.error ?? DynamoHttp.error(answer.status, answer.text);
  }

  /** One signed POST, signed at our time plus `offset`. Not async: with known credentials the request leaves without a promise of its own. */
  private attempt(target: Target, op: DataOp, body: string, offset: number, o: Abandon): Promise<Answer> {
    const { url, region } = target;
    const at = this.clock() + offset;
    if (url.pathname === "/" || url.pathname === "") {
      const known = this.postSigner.current();
      if (known) return this.post(url, this.postSigner.signWith(known, url.host, region, TARGET_PREFIX + op, body, at), body, o);
      return this.postSigner.sign(url.host, region, TARGET_PREFIX + op, body, at).then((headers) => this.post(url, headers, body, o));
    }
    return this.signGeneral(url, region, op, body, at).then((headers) => this.post(url, headers, body, o));
  }

  /** The general signer's headers, for an endpoint with a path. */
  private async signGeneral(url: URL, region: string, op: DataOp, body: string, at: number): Promise<Record<string, string>> {
    const signed = await this.signer.sign(
      {
        method: "POST",
        protocol: url.protocol,
        hostname: url.hostname,
        port: url.port ? Number(url.port) : undefined,
        path: url.pathname,
        query: {},
        headers: { host: url.host, "content-type": CONTENT_TYPE, "x-amz-target": TARGET_PREFIX + op },
        body,
      },
      { signingRegion: region, signingDate: new Date(at) },
    );
    return signed.headers;
  }

  /**
   * After a refusal: whether it was for a signature at the wrong time, by more than the SDK's threshold,
   * by the answer's Date header (not one a cache served: Age). If so the offset becomes the server's time minus ours.
   */
  private correctClock(answer: Answer, usedOffset: number): boolean {
    if (answer.date === undefined || answer.age !== undefined) return false;
    const error = (answer.error = DynamoHttp.error(answer.status, answer.text));
    if (!CLOCK_SKEW_ERRORS.has(error.name)) return false;
    const serverTime = Date.parse(answer.date);
    if (Number.isNaN(serverTime)) return false;
    const offset = serverTime - this.clock();
    if (Math.abs(offset - usedOffset) < SKEW_THRESHOLD_MS) return false;
    this.clockOffset = offset;
    return true;
  }

  /** One POST; resolves with the status and the whole body. `headers` (fresh, the signer's) gets the content-length. */
  private post(url: URL, headers: Record<string, string>, body: string, o: Abandon): Promise<Answer> {
    headers["content-length"] = String(Buffer.byteLength(body));
    this.pool ??= new Http1Pool({ url, maxSockets: this.options.maxSockets });
    if (o.expired === undefined) return this.pool.post(url.pathname || "/", headers, body).then(answerOf);
    let exchange: Exchange | undefined;
    return this.pool
      .post(url.pathname || "/", headers, body, (x) => this.track((exchange = x), o))
      .then(
        (reply) => (this.inflight.delete(exchange!), answerOf(reply)),
        (err: unknown) => {
          this.inflight.delete(exchange!);
          throw err;
        },
      );
  }

  private track(x: Exchange, o: Abandon): void {
    this.inflight.set(x, o);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  /** Ends the requests of abandoned calls; stops when none is in flight. */
  private sweep(): void {
    for (const [x, o] of this.inflight) {
      if (!o.expired) continue;
      this.inflight.delete(x);
      x.fail(abandoned());
    }
    if (this.inflight.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** DynamoDB's error answer as an error named by its type; anything else (a proxy's page) is "Unknown". */
  private static error(status: number, text: string): DynamoServiceError {
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = parseAnswer(text);
      if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: not DynamoDB's answer
    }
    const type = typeof body.__type === "string" ? body.__type.slice(body.__type.lastIndexOf("#") + 1) : "";
    const message = typeof body.message === "string" ? body.message : typeof body.Message === "string" ? body.Message : `HTTP ${status}${type ? "" : `: ${text.slice(0, 200)}`}`;
    return new DynamoServiceError(type || "Unknown", message, status, type ? body : {});
  }

  destroy(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const x of this.inflight.keys()) x.fail(abandoned());
    this.inflight.clear();
    this.pool?.destroy();
    this.pool = undefined;
  }
}
