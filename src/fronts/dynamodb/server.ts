// The DynamoDB front (DESIGN.md §6): an HTTP/1.1 listener speaking DynamoDB's JSON protocol
// (POST /, X-Amz-Target: DynamoDB_20120810.<Operation>, application/x-amz-json-1.0). It is a
// plain client of the Store the gRPC server serves, so every migration phase applies to it.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import { crc32 } from "node:zlib";
import { ServedCall } from "../../protocol/call.js";
import type { Logger } from "../../log.js";
import type { Metrics } from "../../metrics/metrics.js";
import type { Store } from "../../protocol/store.js";
import { Catalog } from "./catalog.js";
import { fromStoreError } from "./errors.js";
import { OPERATIONS, type OpContext } from "./operations/index.js";
import type { Operation } from "./operations/common.js";
import { checkParameters } from "./operations/parameters.js";
import { LeanServer, type LeanReply, type LeanRequest } from "../lean-http.js";
import { SigV4Verifier, type Credentials, type SignedRequest } from "./sigv4.js";
import { DynamoError, RawJson } from "./types.js";

export interface DynamoFrontOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  store: Store;
  logger: Logger;
  metrics?: Metrics;
  /** Largest encoded item the front hands the store (the sidecar's max_value_bytes). */
  maxValueBytes: number;
  /** With credentials, requests must carry a valid SigV4 signature made with them. */
  credentials?: Credentials;
  /** The longest a store call may still land after it began (config storeTimeoutMs): part of DeleteTable's grace. */
  storeTimeoutMs?: number;
}

export interface DynamoFront {
  port: number;
  /** Stops accepting, waits up to drainMs for requests in flight, then closes what is left. */
  close(drainMs?: number): Promise<void>;
}

const TARGET_PREFIX = "DynamoDB_20120810.";
const CONTENT_TYPE = "application/x-amz-json-1.0";
/** DynamoDB's largest request (a BatchWriteItem of 25 items of 400 KB is 10 MB; 16 MB allowed). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const EMPTY_BODY = Buffer.alloc(0);
/** How long an idle keep-alive connection stays open. */
const KEEP_ALIVE_MS = 60_000;

/** A body beyond MAX_BODY_BYTES: refused, and the rest of it not read. */
const tooLarge = () => new DynamoError("ValidationException", `the request body exceeds ${MAX_BODY_BYTES} bytes`, 413);

/** A request's answer on either path: the lean one (LeanReply) or node:http's (NodeReply). */
type Reply = LeanReply;

/** node:http's response as a Reply; a draining front ends each connection after its answer. */
class NodeReply implements Reply {
  constructor(
    private readonly res: ServerResponse,
    private readonly closing: () => boolean,
  ) {}
  get answered(): boolean {
    return this.res.headersSent;
  }
  send(status: number, headers: Record<string, string | number>, payload: string): void {
    if (this.closing()) headers.connection = "close";
    this.res.writeHead(status, headers);
    this.res.end(payload);
  }
  abort(): void {
    this.res.destroy();
  }
}

function send(reply: Reply, status: number, body: unknown, requestId: string): void {
  // An operation may hand back JSON it already holds (a stored item), which is sent as it is.
  const raw = body instanceof RawJson ? body : undefined;
  const payload = raw ? raw.text : JSON.stringify(body);
  // x-amz-crc32, as DynamoDB sends on every answer: Go's SDK checks it and logs a mismatch on every
  // call when it is missing; botocore checks it when present. A constant answer ("{}") keeps its
  // length and CRC from its first use.
  const length = raw ? (raw.bytes ??= Buffer.byteLength(payload)) : Buffer.byteLength(payload);
  const crc = raw ? (raw.crc32 ??= crc32(payload)) : crc32(payload);
  reply.send(status, { "content-type": CONTENT_TYPE, "content-length": length, "x-amzn-requestid": requestId, "x-amz-crc32": crc }, payload);
}

/**
 * Request ids in a UUID's shape: a random prefix per process and a counter (unique, and far
 * cheaper per request than a random UUID; the SDKs only log them).
 */
const idPrefix = randomUUID().slice(0, 24);
let idCounter = 0;
const nextRequestId = () => idPrefix + (idCounter++ % 2 ** 48).toString(16).padStart(12, "0");

/** The labelled metric children per operation (and code), made once: prom-client's labels() validates and allocates per call. */
function meters(metrics: Metrics) {
  const byOperation = new Map<string, { duration: Histogram; counts: Map<string, Counter> }>();
  return (operation: string, code: string, seconds: number) => {
    let m = byOperation.get(operation);
    if (!m) byOperation.set(operation, (m = { duration: metrics.requestDuration.labels(operation, "dynamodb"), counts: new Map() }));
    m.duration.observe(seconds);
    let c = m.counts.get(code);
    if (!c) m.counts.set(code, (c = metrics.requests.labels(operation, code, "dynamodb")));
    c.inc();
  };
}
type Histogram = ReturnType<Metrics["requestDuration"]["labels"]>;
type Counter = ReturnType<Metrics["requests"]["labels"]>;


function errorBody(err: DynamoError): Record<string, unknown> {
  return { __type: `com.amazonaws.dynamodb.v20120810#${err.type}`, message: err.message, ...(err.extra ?? {}) };
}

export async function startDynamoFront(options: DynamoFrontOptions): Promise<DynamoFront> {
  const { logger, metrics } = options;
  const catalog = new Catalog(options.store, options.storeTimeoutMs ?? 0, (err) => logger.warn("could not finish deleting a DynamoDB table (the next sidecar to look will)", { error: String(err) }));
  // Deletions a stopped sidecar left unfinished (their namespaces still hold items).
  void catalog.sweep().catch(() => undefined);
  const verifier = options.credentials ? new SigV4Verifier(options.credentials) : undefined;
  if (!verifier) logger.warn("the DynamoDB front does not check request signatures (no dynamodb.access_key_id configured): any client that reaches it can read and write");
  const meter = metrics ? meters(metrics) : undefined;
  let closing = false; // once set, responses end their connection, so a drain does not wait on keep-alive
  const shared: OpContext = { store: options.store, catalog, maxValueBytes: options.maxValueBytes, region: "us-east-1" };

  /**
   * A client gone before its answer cancels the store work not yet started (src/protocol/call.ts).
   * HTTP/1.1 answers a connection's requests one at a time, so a request is unanswered exactly
   * while its connection is open: one caller per connection, cancelled when it closes, serves every
   * request on it (an AbortSignal per request cost more than the rest of a GetItem's own work; a
   * ServedCall makes its signal only if a driver asks for one). Each connection has its own
   * operation context, carrying that caller to every Store call its requests make.
   */
  const contexts = new WeakMap<Socket, OpContext>();
  const watchConnection = (socket: Socket): OpContext => {
    const call = new ServedCall();
    socket.once("close", () => call.cancel(new Error("the DynamoDB client closed its connection before the answer")));
    const ctx: OpContext = { ...shared, call };
    contexts.set(socket, ctx);
    return ctx;
  };
  // A socket not met as a connection (handed over by another server) is watched from its first request on.
  const contextOf = (socket: Socket): OpContext => contexts.get(socket) ?? watchConnection(socket);

  /** Ends a request: its answer (or the error an operation threw) and its metrics. */
  const answer = (reply: Reply, requestId: string, operation: string, started: number, output: unknown): void => {
    try {
      send(reply, 200, output, requestId);
    } catch (caught) {
      return fail(reply, requestId, operation, started, caught);
    }
    meter?.(operation, "OK", (performance.now() - started) / 1000);
  };

  const fail = (reply: Reply, requestId: string, operation: string, started: number, caught: unknown): void => {
    const err = caught instanceof DynamoError ? caught : fromStoreError(caught);
    if (err.status >= 500 && err.type === "InternalServerError") logger.error("DynamoDB request failed unexpectedly", { operation, error: caught instanceof Error ? caught.stack : String(caught) });
    if (!reply.answered) send(reply, err.status, errorBody(err), requestId);
    else reply.abort();
    meter?.(operation, err.type, (performance.now() - started) / 1000);
  };

  /**
   * Parses the body and runs the operation, with the context (and so the caller) of the client's
   * connection. An operation's promise is answered through then() (no async layers of our own:
   * each costs a promise and microtasks on every request).
   */
  const run = (socket: Socket, reply: Reply, requestId: string, operation: string, op: Operation, started: number, body: Buffer): void => {
    let output: unknown;
    try {
      let input: unknown;
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString("utf8"));
      } catch {
        throw new DynamoError("SerializationException", "the request body is not valid JSON");
      }
      if (typeof input !== "object" || input === null || Array.isArray(input)) throw new DynamoError("SerializationException", "the request body must be a JSON object");
      checkParameters(operation, input as Record<string, unknown>);
      output = op(contextOf(socket), input as Record<string, unknown>);
    } catch (caught) {
      return fail(reply, requestId, operation, started, caught);
    }
    if (output instanceof Promise) {
      output.then(
        (out: unknown) => answer(reply, requestId, operation, started, out),
        (caught: unknown) => fail(reply, requestId, operation, started, caught),
      );
    } else answer(reply, requestId, operation, started, output);
  };

  /** The operation a POST names in X-Amz-Target (throws DynamoDB's error for none or an unknown one). */
  const operationOf = (target: string | string[] | undefined): [string, Operation] => {
    if (typeof target !== "string" || !target.startsWith(TARGET_PREFIX)) throw new DynamoError("UnknownOperationException", "the X-Amz-Target header must name a DynamoDB_20120810 operation");
    const operation = target.slice(TARGET_PREFIX.length);
    const op = Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
    if (!op) throw new DynamoError("UnknownOperationException", `unknown operation ${JSON.stringify(operation)}`);
    return [operation, op];
  };

  /** A request with its whole body: its signature checked (when configured), then run. */
  const serve = (req: SignedRequest & { socket: Socket }, reply: Reply, requestId: string, operation: string, op: Operation, started: number, body: Buffer): void => {
    if (!verifier) return run(req.socket, reply, requestId, operation, op, started, body);
    verifier.verify(req, body).then(
      () => run(req.socket, reply, requestId, operation, op, started, body),
      (caught: unknown) => fail(reply, requestId, operation, started, caught),
    );
  };

  /** A plain POST on the lean path (src/fronts/lean-http.ts), its body already whole. */
  const handleLean = (req: LeanRequest, body: Buffer, reply: LeanReply): void => {
    const requestId = nextRequestId();
    const started = performance.now();
    let found: [string, Operation];
    try {
      found = operationOf(req.headers["x-amz-target"]);
    } catch (caught) {
      return fail(reply, requestId, "unknown", started, caught);
    }
    serve(req, reply, requestId, found[0], found[1], started, body);
  };

  /** Any other request, through node:http. */
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = nextRequestId();
    const started = performance.now();
    const reply = new NodeReply(res, () => closing);
    let operation = "unknown";
    let op: Operation;
    try {
      if (req.method === "GET" && (req.url === "/" || req.url === "")) {
        res.writeHead(200, { "content-type": "text/plain", "x-amzn-requestid": requestId }).end("healthy: decant dynamodb front\n");
        meter?.(operation, "OK", (performance.now() - started) / 1000);
        return;
      }
      if (req.method !== "POST") throw new DynamoError("UnknownOperationException", `${req.method} is not supported; DynamoDB's protocol is POST /`);
      [operation, op] = operationOf(req.headers["x-amz-target"]);
    } catch (caught) {
      return fail(reply, requestId, operation, started, caught);
    }
    // The body, read with the request's own events (no promise per request). `size` past the
    // limit also marks a request already answered (by the refusal or an error).
    let chunks: Buffer[] | Buffer | undefined;
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (size > MAX_BODY_BYTES) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        fail(reply, requestId, operation, started, tooLarge());
        return;
      }
      if (chunks === undefined) chunks = chunk;
      else if (Array.isArray(chunks)) chunks.push(chunk);
      else chunks = [chunks, chunk];
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      size = Infinity;
      serve(req, reply, requestId, operation, op, started, chunks === undefined ? EMPTY_BODY : Array.isArray(chunks) ? Buffer.concat(chunks) : chunks);
    });
    req.on("error", (caught: unknown) => {
      if (size > MAX_BODY_BYTES) return;
      size = Infinity;
      fail(reply, requestId, operation, started, caught);
    });
  };

  // node:http serves what the lean path hands it; it never listens itself. Its 'listening' event
  // starts its tracking of connections (for closeIdleConnections and its header timeouts).
  const fallback: Server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, handle);
  fallback.emit("listening");
  const lean = new LeanServer({ fallback, maxBodyBytes: MAX_BODY_BYTES, keepAliveMs: KEEP_ALIVE_MS, handle: handleLean });
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    watchConnection(socket);
    lean.accept(socket);
  });
  const host = options.listen.slice(0, options.listen.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  const port = Number(options.listen.slice(options.listen.lastIndexOf(":") + 1));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`dynamodb_listen: cannot bind ${options.listen}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: (drainMs = 0) =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        lean.closeIdle();
        fallback.closeIdleConnections();
        setTimeout(() => {
          lean.closeAll();
          fallback.closeAllConnections();
          fallback.close(() => undefined); // its connection-checking timer
        }, drainMs).unref();
      }),
  };
}
