// COPY … TO STDOUT (FORMAT binary) rows (key text, value bytea, version int8), parsed straight
// from the connection's socket chunks. Values are views into those chunks: no per-row Buffer
// views, no joined chunks, no page-sized Buffer.concat (pg-copy-streams and a concat made three
// copies of every page, Buffer garbage that set a backfill's peak RSS). A value cut by a chunk
// boundary is copied out with its message, about one row per 64 KiB chunk.
//
// pg runs it as a custom query (like pg-copy-streams): submit() takes the socket's 'data' from
// pg's parser until CopyDone, then hands pg the rest, so pg sees CommandComplete, errors and
// ReadyForQuery as for any query and calls back here.
import type { RawItem } from "../protocol/types.js";

const COPY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
const COPY_DATA = 0x64; // 'd'
/** Messages that may come between CopyOutResponse and CopyDone: CopyOutResponse, CopyData, ParameterStatus, NoticeResponse, NotificationResponse. */
const DURING_COPY = new Set([0x48, COPY_DATA, 0x53, 0x4e, 0x41]);

const malformed = () => new Error("COPY returned data in an unexpected format");

/** The tuples of COPY's binary format, fed in pieces (a tuple may be cut between two): a header, then per row a field count and each field as a length (-1 = NULL) and its bytes, then -1. */
export class CopyRowParser {
  readonly items: RawItem[] = [];
  private header = false;
  private ended = false;
  /** The start of a tuple cut at the end of the last piece. */
  private rest?: Buffer;

  feed(piece: Buffer, start = 0, end = piece.length): void {
    let buf = piece;
    if (this.rest) {
      buf = Buffer.concat([this.rest, piece.subarray(start, end)]);
      [start, end, this.rest] = [0, buf.length, undefined];
    }
    let at = start;
    if (!this.header) {
      if (end - at < 19 || end - at < 19 + buf.readInt32BE(at + 15)) return void (this.rest = buf.subarray(at, end));
      if (!buf.subarray(at, at + 11).equals(COPY_SIGNATURE)) throw malformed();
      at += 19 + buf.readInt32BE(at + 15); // signature, flags, header extension
      this.header = true;
    }
    while (at < end) {
      if (this.ended) throw malformed(); // bytes after the trailer
      if (end - at < 2) break;
      const fields = buf.readInt16BE(at);
      if (fields === -1) {
        this.ended = true;
        at += 2;
        continue;
      }
      if (fields !== 3) throw malformed();
      let p = at + 2;
      if (end - p < 4) break;
      const keyLength = buf.readInt32BE(p);
      if (keyLength < 0) throw malformed();
      if (end - (p += 4) < keyLength + 4) break;
      const keyAt = p;
      p += keyLength;
      const valueLength = buf.readInt32BE(p);
      p += 4;
      if (valueLength > 0 && end - p < valueLength) break;
      const valueAt = p;
      if (valueLength > 0) p += valueLength;
      if (end - p < 12) break;
      if (buf.readInt32BE(p) !== 8) throw malformed();
      const value = valueLength < 0 ? null : buf.subarray(valueAt, valueAt + valueLength);
      // Versions below 2^53 (all but contrived ones) as one BigInt: readBigInt64BE makes four.
      const high = buf.readInt32BE(p + 4);
      const version = high >= 0 && high < 0x200000 ? BigInt(high * 2 ** 32 + buf.readUInt32BE(p + 8)) : buf.readBigInt64BE(p + 4);
      this.items.push({ key: buf.toString("utf8", keyAt, keyAt + keyLength), value, version });
      at = p + 12;
    }
    if (at < end) this.rest = buf.subarray(at, end);
  }

  /** The rows, once the whole stream was fed. */
  finish(): RawItem[] {
    if (!this.ended || this.rest) throw malformed();
    return this.items;
  }
}

/** Rows of a whole binary COPY stream (the tests', and one-buffer callers'). */
export function parseBinaryCopy(data: Buffer): RawItem[] {
  const parser = new CopyRowParser();
  parser.feed(data);
  return parser.finish();
}

interface Connection {
  stream: NodeJS.EventEmitter;
  query(text: string): void;
}
type Callback = (err: Error | null, rows?: RawItem[]) => void;

/** A pg custom query: `client.query(new CopyOutRows(sql, callback))` calls back with the rows of `COPY (sql) TO STDOUT (FORMAT binary)`. */
export class CopyOutRows {
  readonly text: string;
  private readonly rows = new CopyRowParser();
  private stream?: NodeJS.EventEmitter;
  private pgOnData?: (chunk: Buffer) => void;
  /** A message cut by a chunk boundary: its parts so far, their length, and its whole length once its header is in. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private error?: Error;
  private called = false;

  constructor(
    sql: string,
    public callback: Callback,
  ) {
    this.text = `COPY (${sql}) TO STDOUT (FORMAT binary)`;
  }

  submit(connection: Connection): void {
    const stream = connection.stream;
    const listeners = stream.listeners("data");
    if (listeners.length !== 1) throw new Error(`COPY expected one reader of the connection, found ${listeners.length}`);
    this.stream = stream;
    this.pgOnData = listeners[0] as (chunk: Buffer) => void;
    stream.removeListener("data", this.pgOnData);
    stream.on("data", this.onData);
    connection.query(this.text);
  }

  private readonly onData = (chunk: Buffer): void => {
    let at = 0;
    if (this.parts.length > 0) {
      // Complete the message the last chunk cut: its header first, then its body.
      if (this.partsLength < 5) {
        const take = Math.min(5 - this.partsLength, chunk.length);
        this.carry(chunk.subarray(0, take));
        at = take;
        if (this.partsLength < 5) return;
      }
      const head = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      [this.parts, this.partsLength] = [[head], head.length];
      const whole = 1 + head.readInt32BE(1);
      const take = Math.min(whole - this.partsLength, chunk.length - at);
      this.carry(chunk.subarray(at, at + take));
      at += take;
      if (this.partsLength < whole) return;
      const message = Buffer.concat(this.parts, whole);
      [this.parts, this.partsLength] = [[], 0];
      if (!this.message(message, 0, whole)) return this.detach(Buffer.concat([message, chunk.subarray(at)]));
    }
    while (at < chunk.length) {
      if (chunk.length - at < 5 || chunk.length - at < 1 + chunk.readInt32BE(at + 1)) {
        // Copied: a view would keep this whole chunk for one message's start.
        this.carry(Buffer.from(chunk.subarray(at)));
        return;
      }
      const end = at + 1 + chunk.readInt32BE(at + 1);
      if (!this.message(chunk, at, end)) return this.detach(chunk.subarray(at));
      at = end;
    }
  };

  private carry(part: Buffer): void {
    this.parts.push(part);
    this.partsLength += part.length;
  }

  /** Handles one message; false (not consumed) when it ends the copy: CopyDone, an error or anything else is pg's. */
  private message(buf: Buffer, start: number, end: number): boolean {
    const code = buf[start]!;
    if (code === COPY_DATA) {
      // Malformed rows: the rest of the copy is read and dropped, and the query fails at its end.
      if (this.error === undefined) {
        try {
          this.rows.feed(buf, start + 5, end);
        } catch (err) {
          this.error = err as Error;
        }
      }
    } else if (!DURING_COPY.has(code)) return false;
    return true;
  }

  /** Gives the socket back to pg, with the bytes it has not read. */
  private detach(rest: Buffer): void {
    if (!this.stream || !this.pgOnData) return;
    const pgOnData = this.pgOnData;
    this.stream.removeListener("data", this.onData);
    this.stream.on("data", pgOnData);
    [this.stream, this.pgOnData] = [undefined, undefined];
    pgOnData(rest);
  }

  private done(err: Error | null, rows?: RawItem[]): void {
    if (this.called) return;
    this.called = true;
    this.callback(err, rows);
  }

  // pg calls these as for any query.
  handleError(err: Error): void {
    // pg failed the query while the copy still runs (its query_timeout, or the connection failed:
    // the driver's read backstop): the part of a message read so far is pg's too, or its parser
    // starts mid-message and the connection never syncs.
    const carried = Buffer.concat(this.parts, this.partsLength);
    [this.parts, this.partsLength] = [[], 0];
    this.detach(carried);
    this.done(err);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    if (this.error) return this.done(this.error);
    let rows: RawItem[];
    try {
      rows = this.rows.finish();
    } catch (err) {
      return this.done(err as Error);
    }
    this.done(null, rows);
  }

  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}
