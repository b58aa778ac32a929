// A lean HTTP/1.1 server for the plain requests SDKs send: `POST /` with a Content-Length body on
// a keep-alive connection, parsed and answered here in one write. node:http's layers (its
// IncomingMessage and ServerResponse streams, header validation, per-request timers) cost more
// CPU per request than the DynamoDB front's own work. Anything else — another method or path,
// chunked bodies, Expect, HTTP/1.0, repeated or unusual headers, malformed or oversized input —
// is handed, with the bytes already read, to a node:http server at a request boundary, which
// then serves that connection to its end; so every case outside the plain one keeps
// node:http's behaviour and its errors.
import { STATUS_CODES, type Server } from "node:http";
import type { Socket } from "node:net";

export interface LeanRequest {
  method: string;
  url: string;
  /** Lower-case names; each appears once (a repeated header is handed to node:http). */
  headers: Record<string, string>;
  socket: Socket;
}

/** One request's answer, written once. */
export interface LeanReply {
  send(status: number, headers: Record<string, string | number>, payload: string): void;
  /** Ends the connection without an answer. */
  abort(): void;
  /** Whether send() has been called for this request. */
  readonly answered: boolean;
}

export interface LeanServerOptions {
  /** Serves the connections (or their rest) that the lean path does not. */
  fallback: Server;
  /** Largest body taken on the lean path; a larger one is node:http's (and the handler's refusal). */
  maxBodyBytes: number;
  keepAliveMs: number;
  /** node:http's headersTimeout and requestTimeout (60 s and 300 s), and how often they are checked. */
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  checkEveryMs?: number;
  handle(req: LeanRequest, body: Buffer, reply: LeanReply): void;
}

const HEAD_END = Buffer.from("\r\n\r\n");
/** node:http's default limit on a request's head. */
const MAX_HEAD = 16 * 1024;
/** node:http's defaults: the whole head within a minute, the whole request within five. */
const HEADERS_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 300_000;
/**
 * Headers whose presence means a framing or protocol the lean path leaves to node:http
 * (its parser, llhttp, reads Proxy-Connection as Connection).
 */
const NOT_PLAIN = new Set(["transfer-encoding", "expect", "upgrade", "te", "trailer", "proxy-connection"]);

/**
 * Whether a head not yet whole has a LF without its CR, or a CR without its LF: node:http refuses
 * it at once (400), and its CRLF CRLF may never come, so it is handed over now rather than held
 * until the headers timeout.
 */
function bareLineEnd(b: Buffer): boolean {
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) if (i === 0 || b[i - 1] !== 13) return true;
  for (let i = b.indexOf(13); i >= 0 && i < b.length - 1; i = b.indexOf(13, i + 1)) if (b[i + 1] !== 10) return true;
  return false;
}

/** The Date header, made once per second as node:http does. */
let dateSecond = -1;
let dateText = "";
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/** A connection served by the lean path until it closes or is handed over. */
class LeanConnection {
  private chunks: Buffer[] = [];
  private size = 0;
  /** A parsed head whose body is still arriving (the bytes are joined once, when it is whole). */
  private pending: (Head & { start: number }) | undefined;
  /** A request is being answered: later (pipelined) bytes wait for its answer. */
  private busy = false;
  private closeAfter = false;
  /** An answer that ends the connection was sent: no further request is taken (node:http refuses data after it). */
  private finished = false;
  private handedOver = false;
  /** next() is taking requests: an answer sent synchronously returns to its loop instead of recursing. */
  private dispatching = false;
  /** When the bytes of a request not yet whole began to arrive (for the server's header and request timeouts). */
  private partialSince = 0;
  private readonly onData = (d: Buffer) => this.received(d);
  /** The client ended its side: as node:http (without httpAllowHalfOpen), its request is abandoned. */
  private readonly onEnd = () => this.socket.end();
  private readonly onError = () => this.socket.destroy();
  /** Idle between requests for keepAliveMs: closed. A request being answered is not idle, nor one
   * still arriving (the headers and request timeouts are its limits, as node:http's). A listener
   * for every timeout, not once: a timeout met while answering must not leave the next idle one unheard. */
  private readonly onTimeout = () => (this.busy || this.size > 0 ? undefined : this.socket.destroy());

  constructor(
    readonly socket: Socket,
    private readonly server: LeanServer,
  ) {
    socket.setNoDelay(true);
    socket.setTimeout(server.options.keepAliveMs);
    socket.on("timeout", this.onTimeout);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("error", this.onError);
  }

  get idle(): boolean {
    return !this.busy && this.size === 0;
  }

  /** Whether the head (once it is whole: the request) has taken longer than node:http's timeouts allow. */
  late(now: number): boolean {
    if (this.busy || this.partialSince === 0) return false;
    const o = this.server.options;
    return now - this.partialSince > (this.pending ? (o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS) : (o.headersTimeoutMs ?? HEADERS_TIMEOUT_MS));
  }

  private received(d: Buffer): void {
    if (this.finished) return;
    if (this.size === 0) this.partialSince = Date.now();
    this.chunks.push(d);
    this.size += d.length;
    if (!this.busy) this.next();
    // A client sending on without reading its answers waits for them (TCP holds the rest).
    else if (this.size > MAX_HEAD + this.server.options.maxBodyBytes) this.socket.pause();
  }

  private joined(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0]!;
  }

  /**
   * Takes the buffered requests while each is answered at once. A loop, not recursion: a request
   * answered synchronously calls ready() and so next() again, and thousands of pipelined requests
   * buffered behind a slow one would otherwise each add frames to the stack until it overflowed.
   */
  private next(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (!this.busy && !this.finished && !this.handedOver && this.size > 0 && this.take());
    } finally {
      this.dispatching = false;
    }
  }

  /** Takes the next whole request from the buffered bytes: whether one was taken. */
  private take(): boolean {
    let head = this.pending;
    if (!head) {
      const all = this.joined(); // a head is small: joined until it is whole
      const end = all.indexOf(HEAD_END);
      if (end < 0 ? all.length > MAX_HEAD || bareLineEnd(all) : end > MAX_HEAD) return this.handOver();
      if (end < 0) return false;
      const parsed = parseHead(all.toString("latin1", 0, end), this.server.options.maxBodyBytes);
      if (!parsed) return this.handOver();
      head = this.pending = { ...parsed, start: end + 4 };
    }
    const whole = head.start + head.length;
    if (this.size < whole) return false; // the body is still coming
    const all = this.joined();
    const body = all.subarray(head.start, whole);
    this.pending = undefined;
    this.chunks = all.length > whole ? [all.subarray(whole)] : [];
    this.size = all.length - whole;
    this.busy = true;
    if (head.close || this.server.closing) this.closeAfter = true;
    this.server.options.handle({ method: "POST", url: "/", headers: head.headers, socket: this.socket }, body, new LeanAnswer(this));
    return true;
  }

  /** The current request's answer (LeanAnswer lets each request answer once). */
  write(status: number, headers: Record<string, string | number>, payload: string): void {
    if (!this.busy || this.socket.destroyed) return;
    if (this.server.closing) this.closeAfter = true;
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n`;
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
    text += this.closeAfter ? `date: ${httpDate()}\r\nconnection: close\r\n\r\n` : `date: ${httpDate()}\r\nconnection: keep-alive\r\nkeep-alive: timeout=${Math.floor(this.server.options.keepAliveMs / 1000)}\r\n\r\n`;
    if (this.closeAfter) {
      this.busy = false;
      this.finished = true;
      this.chunks = [];
      this.size = 0;
      this.socket.end(text + payload);
      return;
    }
    // The next request waits until this answer is on its way: a client that sends without reading
    // its answers is held by TCP, not by answers piling up here.
    if (this.socket.write(text + payload)) this.ready();
    else this.socket.once("drain", () => this.ready());
  }

  private ready(): void {
    this.busy = false;
    if (this.server.closing && this.size === 0) {
      // The server began draining while this (keep-alive) answer waited on its client: the
      // connection is idle now, and closeIdle() has already passed it by.
      this.finished = true;
      this.socket.end();
      return;
    }
    this.partialSince = this.size > 0 ? Date.now() : 0;
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  }

  /** Gives the connection, and the bytes read but not served, to node:http. */
  private handOver(): false {
    if (this.handedOver) return false;
    this.handedOver = true;
    this.server.forget(this);
    this.socket.removeListener("data", this.onData);
    this.socket.removeListener("end", this.onEnd);
    this.socket.removeListener("error", this.onError);
    this.socket.removeListener("timeout", this.onTimeout);
    this.socket.setTimeout(0);
    const rest = this.size > 0 ? this.joined() : undefined;
    this.chunks = [];
    this.size = 0;
    this.server.options.fallback.emit("connection", this.socket);
    if (rest !== undefined) this.socket.unshift(rest);
    return false;
  }
}

/** One request's side of its connection. */
class LeanAnswer implements LeanReply {
  answered = false;
  constructor(private readonly conn: LeanConnection) {}
  send(status: number, headers: Record<string, string | number>, payload: string): void {
    if (this.answered) return;
    this.answered = true;
    this.conn.write(status, headers, payload);
  }
  abort(): void {
    this.answered = true;
    this.conn.socket.destroy();
  }
}

interface Head {
  headers: Record<string, string>;
  length: number;
  close: boolean;
}

const REQUEST_LINE = "POST / HTTP/1.1\r\n";
/**
 * The whole head of a plain request in one linear pass: the request line, then header lines of a
 * token, a colon and a value of visible characters, spaces, tabs and obs-text (RFC 9110).
 */
const PLAIN_HEAD = /^POST \/ HTTP\/1\.1(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)+$/;

/** Spaces and tabs around a header value (what RFC 9110 trims: not JavaScript's wider whitespace). */
function trimValue(text: string, from: number, to: number): string {
  while (from < to && (text.charCodeAt(from) === 32 || text.charCodeAt(from) === 9)) from++;
  while (to > from && (text.charCodeAt(to - 1) === 32 || text.charCodeAt(to - 1) === 9)) to--;
  return text.slice(from, to);
}

/** The head of a plain `POST /` HTTP/1.1 request, or undefined for anything else. */
function parseHead(text: string, maxBody: number): Head | undefined {
  if (!text.startsWith(REQUEST_LINE) || !PLAIN_HEAD.test(text)) return undefined;
  const headers: Record<string, string> = {};
  for (let pos = REQUEST_LINE.length; pos < text.length; ) {
    let eol = text.indexOf("\r\n", pos);
    if (eol < 0) eol = text.length;
    const colon = text.indexOf(":", pos);
    const name = text.slice(pos, colon).toLowerCase();
    if (headers[name] !== undefined || NOT_PLAIN.has(name)) return undefined;
    headers[name] = trimValue(text, colon + 1, eol);
    pos = eol + 2;
  }
  // node:http answers a request without Host with a 400 (requireHostHeader).
  if (headers.host === undefined) return undefined;
  const length = headers["content-length"];
  if (length === undefined || !/^\d{1,9}$/.test(length) || Number(length) > maxBody) return undefined;
  const connection = headers.connection;
  let close = false;
  if (connection !== undefined) {
    const c = connection.toLowerCase();
    if (c === "close") close = true;
    else if (c !== "keep-alive") return undefined;
  }
  return { headers, length: Number(length), close };
}

/** Serves accepted sockets on the lean path; see the file's comment. */
export class LeanServer {
  closing = false;
  private readonly connections = new Set<LeanConnection>();
  private readonly checker: NodeJS.Timeout;

  constructor(readonly options: LeanServerOptions) {
    // As node:http's connection checker: a client that trickles a head or a body is cut off.
    this.checker = setInterval(() => this.cutLate(), options.checkEveryMs ?? 30_000).unref();
  }

  private cutLate(): void {
    const now = Date.now();
    for (const c of this.connections) if (c.late(now)) c.socket.destroy();
  }

  accept(socket: Socket): void {
    const conn = new LeanConnection(socket, this);
    this.connections.add(conn);
    socket.once("close", () => this.connections.delete(conn));
  }

  forget(conn: LeanConnection): void {
    this.connections.delete(conn);
  }

  /** From now on answers end their connections; connections with nothing in progress end now. */
  closeIdle(): void {
    this.closing = true;
    for (const c of this.connections) if (c.idle) c.socket.destroy();
  }

  closeAll(): void {
    clearInterval(this.checker);
    for (const c of this.connections) c.socket.destroy();
  }
}
