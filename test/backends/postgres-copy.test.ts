import { EventEmitter } from "node:events";
import { expect } from "chai";
import { CopyOutRows, CopyRowParser, parseBinaryCopy } from "../../src/backends/postgres-copy.js";
import type { RawItem } from "../../src/protocol/types.js";

/** COPY's binary format of `items` (key text, value bytea, version int8), as PostgreSQL writes it. */
function copyStream(items: RawItem[]): Buffer {
  const parts: Buffer[] = [Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)];
  for (const item of items) {
    const key = Buffer.from(item.key);
    const head = Buffer.alloc(6);
    head.writeInt16BE(3, 0);
    head.writeInt32BE(key.length, 2);
    const valueLength = Buffer.alloc(4);
    valueLength.writeInt32BE(item.value === null ? -1 : item.value.length);
    const version = Buffer.alloc(12);
    version.writeInt32BE(8, 0);
    version.writeBigInt64BE(item.version, 4);
    parts.push(head, key, valueLength, ...(item.value === null ? [] : [item.value]), version);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

/** A protocol message: code, length, body. */
function message(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(code, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const ITEMS: RawItem[] = [
  { key: "a", value: Buffer.from("one"), version: 1n },
  { key: "tomb", value: null, version: 7n },
  { key: "empty", value: Buffer.alloc(0), version: 2n },
  { key: "ünï ✓", value: Buffer.alloc(300, 9), version: 2n ** 63n - 1n },
];

const plain = (items: RawItem[]) => items.map((i) => ({ key: i.key, value: i.value === null ? null : i.value.toString("hex"), version: i.version }));

describe("postgres binary COPY reader", function () {
  it("parses a whole stream, and the same stream cut anywhere", function () {
    const data = copyStream(ITEMS);
    expect(plain(parseBinaryCopy(data))).to.deep.equal(plain(ITEMS));
    for (let cut = 0; cut <= data.length; cut++) {
      const parser = new CopyRowParser();
      parser.feed(data.subarray(0, cut));
      parser.feed(data, cut);
      expect(plain(parser.finish()), `cut at ${cut}`).to.deep.equal(plain(ITEMS));
    }
  });

  it("refuses a stream without its trailer, with the wrong signature or field count", function () {
    const data = copyStream(ITEMS);
    expect(() => parseBinaryCopy(data.subarray(0, data.length - 2))).to.throw(/unexpected format/);
    expect(() => parseBinaryCopy(Buffer.concat([Buffer.from("X"), data.subarray(1)]))).to.throw(/unexpected format/);
    const twoFields = copyStream(ITEMS.slice(0, 1));
    twoFields.writeInt16BE(2, 19);
    expect(() => parseBinaryCopy(twoFields)).to.throw(/unexpected format/);
  });

  it("reads the copy from socket chunks cut anywhere and hands pg the rest from CopyDone on", function () {
    // PostgreSQL sends the header, each row and the trailer as CopyData messages.
    const data = copyStream(ITEMS);
    const rows = [data.subarray(0, 19)];
    for (let at = 19, i = 0; i < ITEMS.length; i++) {
      const item = ITEMS[i]!;
      const length = 2 + 4 + Buffer.byteLength(item.key) + 4 + (item.value?.length ?? 0) + 12;
      rows.push(data.subarray(at, (at += length)));
    }
    rows.push(data.subarray(data.length - 2));
    const afterCopy = Buffer.concat([message("c", Buffer.alloc(0)), message("C", Buffer.from("COPY 4\0")), message("Z", Buffer.from("I"))]);
    const wire = Buffer.concat([message("H", Buffer.from([1, 0, 3, 0, 1, 0, 1, 0, 1])), message("N", Buffer.from("notice\0")), ...rows.map((r) => message("d", r)), afterCopy]);
    for (const chunk of [1, 2, 3, 5, 7, 64, wire.length]) {
      for (let first = 0; first <= Math.min(chunk, 40); first++) {
        const stream = new EventEmitter();
        const pgRead: Buffer[] = [];
        stream.on("data", (b: Buffer) => pgRead.push(b));
        let result: RawItem[] | undefined;
        const query = new CopyOutRows("SELECT 1", (err, r) => {
          if (err) throw err;
          result = r;
        });
        let sent = "";
        query.submit({ stream, query: (text) => (sent = text) });
        expect(sent).to.equal("COPY (SELECT 1) TO STDOUT (FORMAT binary)");
        const cuts = [0, first, ...Array.from({ length: Math.ceil(wire.length / chunk) }, (_, i) => first + (i + 1) * chunk)].filter((c, i, a) => c <= wire.length && (i === 0 || c > a[i - 1]!));
        if (cuts[cuts.length - 1] !== wire.length) cuts.push(wire.length);
        for (let i = 1; i < cuts.length; i++) stream.emit("data", wire.subarray(cuts[i - 1], cuts[i]));
        expect(Buffer.concat(pgRead).equals(afterCopy), `chunks of ${chunk} after ${first}`).to.equal(true);
        expect(stream.listenerCount("data")).to.equal(1);
        query.handleCommandComplete();
        query.handleReadyForQuery();
        expect(plain(result!)).to.deep.equal(plain(ITEMS));
      }
    }
  });

  /** A CopyOutRows on a fake connection: the bytes pg's own reader got back, and every outcome reported. */
  function fakeCopy() {
    const stream = new EventEmitter();
    const pgRead: Buffer[] = [];
    stream.on("data", (b: Buffer) => pgRead.push(b));
    const outcomes: (Error | null)[] = [];
    const query = new CopyOutRows("SELECT 1", (err) => outcomes.push(err));
    query.submit({ stream, query: () => undefined });
    return { stream, pgRead, outcomes, query };
  }

  it("gives pg an error response at once, and reports the error once", function () {
    const { stream, pgRead, outcomes, query } = fakeCopy();
    const error = message("E", Buffer.from("SERROR\0\0"));
    stream.emit("data", error);
    expect(Buffer.concat(pgRead).equals(error)).to.equal(true);
    query.handleError(new Error("boom"));
    query.handleReadyForQuery();
    expect(outcomes.map((e) => e?.message)).to.deep.equal(["boom"]);
  });

  it("fails a copy whose rows are malformed at its end, reading the rest", function () {
    const { stream, pgRead, outcomes, query } = fakeCopy();
    const after = Buffer.concat([message("c", Buffer.alloc(0)), message("Z", Buffer.from("I"))]);
    stream.emit("data", Buffer.concat([message("d", Buffer.from("NOTPGCOPY-HEADER-XXXXXX")), message("d", Buffer.alloc(30)), after]));
    expect(Buffer.concat(pgRead).equals(after)).to.equal(true);
    query.handleReadyForQuery();
    expect(outcomes.map((e) => e?.message)).to.deep.equal(["COPY returned data in an unexpected format"]);
  });
});
