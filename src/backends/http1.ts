// A minimal keep-alive HTTP/1.1 client for one origin, for the lean DynamoDB client: a POST with
// a string body, the whole answer back. node:http's client (ClientRequest, Agent, IncomingMessage,
// streams) cost about 0.06 ms of CPU per PutItem, 40 % of the lean client (same-process A/B
// against dynalite); this writes the request in one string and reads the answer from the socket's
// chunks. Answers are delimited by content-length or chunked encoding, or end with the connection.
//
// Errors are those of node:http where callers look: socket errors pass through with their codes;
// a connection closed before the answer ended is "socket hang up" with code ECONNRESET.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { isIP } from "node:net";

/** An answer, whole. */
export interface Reply {
  status: number;
  text: string;
  /** The body's bytes, as they came (a checksum of them is checked above this layer). */
  bytes: Buffer;
  /** Lower-cased header names; the last value of a repeated header. */
  headers: Record<string, string>;
}

const hangUp = (): Error => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
const malformed = (why: string): Error => Object.assign(new Error(`malformed HTTP answer: ${why}`), { code: "HPE_INVALID" });
const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
/** An answer's head larger than this is not DynamoDB's. */
const MAX_HEAD = 64 * 1024;

/**
 * How long an idle connection may wait for reuse: the server's Keep-Alive timeout less a second
 * (a request written as the server closes it would fail with ECONNRESET; Node servers, dynalite
 * among them, close idle sockets after 5 s), at most 30 s (a NAT may drop a quiet one unseen).
 */
export function idleLimit(keepAlive: string | undefined): number {
  const m = keepAlive ? /(?:^|[,\s])timeout=(\d+)/i.exec(keepAlive) : null;
  return m ? Math.max(0, Math.min(30_000, (Number(m[1]) - 1) * 1000)) : 30_000;
}

/** One request on one connection, until its answer is whole or it fails. */
export class Exchange {
  private conn?: Conn;
  private settled = false;

  constructor(
    readonly head: string,
    readonly body: string,
    private readonly resolve: (r: Reply) => void,
    private readonly reject: (e: Error) => void,
    private readonly pool: Http1Pool,
  ) {}

  /** Starts on `conn`: the whole request in one write. */
  start(conn: Conn): void {
    this.conn = conn;
    conn.exchange = this;
    conn.socket.write(this.head + this.body, () => {
      this.sent = true;
      if (this.releaseWhenSent !== undefined) this.pool.release(conn, this.releaseWhenSent);
    });
  }

  /** Whether the whole request has left (write's callback); a connection is reused only then. */
  private sent = false;
  /**
   * Answered before the request had left whole: whether its connection is reusable, released
   * once it has. A flag, not a function stored in a property: until the code that makes it is
   * optimized, V8 allocates a function literal assigned to a property in the old generation, where,
   * dead, it would keep this exchange (its body, and through `resolve` the answer) until the next
   * full GC. (Rare either way: a write's callback runs before any answer can be read, unless the
   * body filled the socket's buffer.)
   */
  private releaseWhenSent?: boolean;

  done(reply: Reply, reusable: boolean): void {
    if (this.settled) return;
    this.settled = true;
    const conn = this.conn!;
    conn.exchange = undefined;
    // An answer can come before the request has left whole (a big body to a server that answered
    // early): the connection waits for it, as node:http's does, before the next request follows.
    if (this.sent) this.pool.release(conn, reusable);
    else this.releaseWhenSent = reusable;
    this.resolve(reply);
  }

  /** Fails it; its connection (if it has one) is closed, the answer being unknown. */
  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    if (this.conn) {
      this.conn.exchange = undefined;
      this.pool.release(this.conn, false);
    } else this.pool.unqueue(this);
    this.reject(err);
  }
}

/** A connection and the parse state of the answer it is reading. */
class Conn {
  exchange?: Exchange;
  /** How long it may wait idle for reuse (from its last answer's Keep-Alive), and until when. */
  idleLimitMs = 30_000;
  idleUntil = 0;
  private buffered: Buffer[] = [];
  private size = 0;
  /** The answer's head once read; then the body's framing. */
  private status = 0;
  private headers: Record<string, string> = {};
  private length = -1; // content-length, -1: chunked or until close
  private chunked = false;
  private keepAlive = true;
  private body: Buffer[] = [];
  private bodySize = 0;
  private inBody = false;
  /** Bytes the buffered data must reach before the chunk it starts with is whole (not re-joined per read). */
  private chunkNeed = 0;

  constructor(
    readonly socket: Socket | TLSSocket,
    private readonly pool: Http1Pool,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000); // as node:http's keep-alive Agent: probes find a peer that vanished
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (e: Error) => this.onGone(e));
    socket.on("end", () => this.onEnd());
    socket.on("close", () => this.onGone(hangUp()));
  }

  private onData(d: Buffer): void {
    if (!this.exchange) {
      // Bytes nobody asked for: the connection is out of step; drop it.
      this.socket.destroy();
      return;
    }
    this.buffered.push(d);
    this.size += d.length;
    try {
      this.parse();
    } catch (err) {
      this.exchange?.fail(err as Error);
    }
  }

  private take(): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.size);
    this.buffered = [];
    this.size = 0;
    return all;
  }

  private keep(rest: Buffer): void {
    if (rest.length > 0) {
      this.buffered = [rest];
      this.size = rest.length;
    }
  }

  private parse(): void {
    for (;;) {
      if (!this.inBody) {
        const all = this.take();
        const end = all.indexOf(HEAD_END);
        if (end < 0) {
          if (all.length > MAX_HEAD) throw malformed("head too large");
          this.keep(all);
          return;
        }
        this.readHead(all.toString("latin1", 0, end));
        this.keep(all.subarray(end + 4));
        if (this.status < 200) continue; // 1xx: an interim answer, the real one follows
        this.inBody = true;
      }
      if (this.chunked ? this.readChunks() : this.readLength()) return this.finish();
      return;
    }
  }

  private readHead(head: string): void {
    const lines = head.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]!);
    if (!m) throw malformed(`status line ${JSON.stringify(lines[0]!.slice(0, 40))}`);
    this.status = Number(m[2]);
    this.headers = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw malformed("header line");
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      // Two lengths that differ: no way to know where the answer ends (node:http refuses it too).
      if (name === "content-length" && this.headers[name] !== undefined && this.headers[name] !== value) throw malformed("conflicting content-length");
      this.headers[name] = value;
    }
    const connection = (this.headers.connection ?? "").toLowerCase();
    this.keepAlive = m[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    this.chunked = (this.headers["transfer-encoding"] ?? "").toLowerCase().includes("chunked");
    const length = this.headers["content-length"];
    if (this.chunked && length !== undefined) this.keepAlive = false; // framed by the chunks; the socket is not trusted after
    this.idleLimitMs = idleLimit(this.headers["keep-alive"]);
    if (this.chunked) this.length = -1;
    else if (length !== undefined) {
      if (!/^\d+$/.test(length)) throw malformed("content-length");
      this.length = Number(length);
    } else if (this.status === 204 || this.status === 304) this.length = 0;
    else {
      this.length = -1; // until the connection ends
      this.keepAlive = false;
    }
    this.body = [];
    this.bodySize = 0;
    this.chunkNeed = 0;
  }

  /** Whether the content-length body is whole. */
  private readLength(): boolean {
    if (this.length < 0) {
      const all = this.take();
      if (all.length) this.addBody(all);
      return false; // until the connection ends (onEnd)
    }
    if (this.size < this.length - this.bodySize) return false;
    const all = this.take();
    const need = this.length - this.bodySize;
    this.addBody(all.subarray(0, need));
    if (all.length > need) this.keepAlive = false; // bytes after the answer: it is whole, the connection out of step
    return true;
  }

  /** Whether the last chunk (and the trailers) have been read. */
  private readChunks(): boolean {
    if (this.size < this.chunkNeed) return false; // the current chunk's size is known and its bytes are not all here
    this.chunkNeed = 0;
    for (;;) {
      const all = this.take();
      const eol = all.indexOf(CRLF);
      if (eol < 0) {
        this.keep(all);
        return false;
      }
      const sizeText = all.toString("latin1", 0, eol).split(";")[0]!.trim();
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw malformed("chunk size");
      const size = parseInt(sizeText, 16);
      if (size === 0) {
        // Trailers, if any, then an empty line: the first CRLF CRLF from the size line's own CRLF.
        const end = all.indexOf(HEAD_END, eol);
        if (end < 0) {
          this.keep(all);
          return false;
        }
        if (all.length > end + 4) this.keepAlive = false; // as after a content-length answer
        return true;
      }
      if (all.length < eol + 2 + size + 2) {
        this.keep(all);
        this.chunkNeed = eol + 2 + size + 2;
        return false;
      }
      if (all[eol + 2 + size] !== 0x0d || all[eol + 3 + size] !== 0x0a) throw malformed("chunk not followed by CRLF");
      this.addBody(all.subarray(eol + 2, eol + 2 + size));
      this.keep(all.subarray(eol + 2 + size + 2));
    }
  }

  private addBody(b: Buffer): void {
    this.body.push(b);
    this.bodySize += b.length;
  }

  private finish(): void {
    const bytes = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.bodySize);
    const reply: Reply = { status: this.status, text: bytes.toString("utf8"), bytes, headers: this.headers };
    const reusable = this.keepAlive;
    this.inBody = false;
    this.body = [];
    this.bodySize = 0;
    this.exchange!.done(reply, reusable);
  }

  private onEnd(): void {
    // The server closed its side: an answer that runs until the close is whole now; anything else is lost.
    if (this.exchange && this.inBody && !this.chunked && this.length < 0) return this.finish();
    this.onGone(hangUp());
  }

  private onGone(err: Error): void {
    this.pool.forget(this);
    this.exchange?.fail(err);
    this.socket.destroy();
  }
}

export interface Http1Options {
  url: URL;
  maxSockets: number;
  /** More TLS options (tests give a CA); certificates are verified against Node's CAs otherwise. */
  tls?: Pick<ConnectionOptions, "ca">;
}

/** Keep-alive connections to one origin, at most maxSockets; requests beyond wait in order. */
export class Http1Pool {
  private readonly idle: Conn[] = [];
  private readonly queue: Exchange[] = [];
  private open = 0;
  private readonly conns = new Set<Conn>();
  private readonly host: string;
  private readonly port: number;
  private readonly tls: boolean;
  /** The last TLS session, resumed by the next connection (as https.Agent does). */
  private session?: Buffer;
  private closed = false;

  constructor(private readonly options: Http1Options) {
    const { url } = options;
    this.tls = url.protocol === "https:";
    this.host = url.hostname.replace(/^\[|\]$/g, "");
    this.port = url.port ? Number(url.port) : this.tls ? 443 : 80;
  }

  /** One POST of `path` with `headers` (host and content-length included by the caller) and `body`; `track` sees the exchange before it starts. */
  post(path: string, headers: Record<string, string>, body: string, track?: (x: Exchange) => void): Promise<Reply> {
    let head = `POST ${path} HTTP/1.1\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    head += "\r\n";
    return new Promise<Reply>((resolve, reject) => {
      const x = new Exchange(head, body, resolve, reject, this);
      track?.(x);
      if (this.closed) return x.fail(Object.assign(new Error("the client was closed"), { code: "ERR_HTTP1_CLOSED" }));
      const conn = this.reusable();
      if (conn) {
        conn.socket.ref();
        x.start(conn);
      } else if (this.open < this.options.maxSockets) x.start(this.connect());
      else this.queue.push(x);
    });
  }

  /** The most recently used idle connection still within its server's keep-alive timeout; older ones are closed. */
  private reusable(): Conn | undefined {
    const now = Date.now();
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (now < conn.idleUntil) return conn;
      this.forget(conn);
      conn.socket.destroy();
    }
    return undefined;
  }

  private connect(): Conn {
    this.open++;
    const socket = this.tls
      ? tlsConnect({ ...this.options.tls, host: this.host, port: this.port, servername: isIP(this.host) ? undefined : this.host, session: this.session, ALPNProtocols: ["http/1.1"] })
      : netConnect({ host: this.host, port: this.port });
    if (this.tls) socket.on("session", (s: Buffer) => (this.session = s));
    const conn = new Conn(socket, this);
    this.conns.add(conn);
    return conn;
  }

  /** An exchange is over on `conn`: it serves the next waiting one, waits idle, or closes. */
  release(conn: Conn, reusable: boolean): void {
    if (!this.conns.has(conn)) return; // gone meanwhile (closed while its request was still leaving)
    if (!reusable || this.closed) {
      this.forget(conn);
      conn.socket.destroy();
      this.next();
      return;
    }
    const waiting = this.queue.shift();
    if (waiting) return waiting.start(conn);
    conn.socket.unref(); // an idle connection does not keep the process alive
    conn.idleUntil = Date.now() + conn.idleLimitMs;
    this.idle.push(conn);
  }

  /** A connection is gone (closed, failed): its slot serves a waiting exchange. */
  forget(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    this.open--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.next();
  }

  private next(): void {
    if (this.closed || this.queue.length === 0 || this.open >= this.options.maxSockets) return;
    this.queue.shift()!.start(this.connect());
  }

  /** A waiting exchange failed before it had a connection. */
  unqueue(x: Exchange): void {
    const i = this.queue.indexOf(x);
    if (i >= 0) this.queue.splice(i, 1);
  }

  destroy(): void {
    this.closed = true;
    for (const x of this.queue.splice(0)) x.fail(Object.assign(new Error("the client was closed"), { code: "ERR_HTTP1_CLOSED" }));
    for (const conn of [...this.conns]) {
      this.forget(conn);
      conn.exchange?.fail(hangUp());
      conn.socket.destroy();
    }
  }
}
