// Requests hand-encoded byte by byte and sent through a real socket (grpc-js with a passthrough
// serialiser), as a black-box probe sends them: bytes protobuf would silently repair or misread
// are refused as INVALID_ARGUMENT naming the field, and nothing is written.
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { protocolRoot } from "../../src/wire/proto.js";
import { decodeDetails } from "../../src/wire/status.js";
import { freshNamespace } from "../support/names.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;
type Bytes = Buffer | string;

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;

/** One field: its tag, then the payload already in its wire form (a length prefix is added for LEN). */
function field(id: number, wire: number, payload: Bytes | number | bigint): Buffer {
  const w = protobuf.Writer.create().uint32((id << 3) | wire);
  if (wire === VARINT) w.uint64(String(payload));
  else if (wire === FIXED64) w.fixed64(String(payload));
  else w.bytes(typeof payload === "string" ? Buffer.from(payload) : (payload as Buffer));
  return Buffer.from(w.finish());
}
const msg = (...fields: Buffer[]) => Buffer.concat(fields);
const str = (id: number, s: Bytes) => field(id, LEN, s);
const hex = (h: string) => Buffer.from(h.replace(/ /g, ""), "hex");

/** Every chain of message fields from `type` to a decant.v1.Condition. */
function conditionPaths(type: protobuf.Type, seen: string[] = []): protobuf.Field[][] {
  const paths: protobuf.Field[][] = [];
  for (const f of type.fieldsArray) {
    const inner = f.resolvedType;
    if (!(inner instanceof protobuf.Type) || seen.includes(inner.fullName)) continue;
    if (inner.fullName === ".decant.v1.Condition") paths.push([f]);
    else for (const rest of conditionPaths(inner, [...seen, type.fullName])) paths.push([f, ...rest]);
  }
  return paths;
}

describe("the wire check of raw request bytes", function () {
  let s: Running;
  let raw: grpc.Client;
  let ns: string;
  before(async () => {
    s = await startTestSidecar({ DECANT_MAX_VALUE_BYTES: "1024" });
    raw = new grpc.Client(`127.0.0.1:${s.sidecar.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    raw?.close();
    await s?.stop();
  });
  beforeEach(() => {
    ns = freshNamespace();
  });

  const send = (path: string, bytes: Buffer) =>
    new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) =>
      raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 10_000 }, (err, res) => resolve({ err, res })),
    );

  async function expectInvalid(method: string, bytes: Buffer, fieldName: string, service = "decant.v1.Store") {
    const { err } = await send(`/${service}/${method}`, bytes);
    expect(err, `${method} should be refused`).to.not.equal(null);
    expect(err!.code, err!.details).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err!.details.startsWith(`${fieldName}: `), err!.details).to.equal(true);
    const details = decodeDetails(err!.metadata.get("grpc-status-details-bin")[0] as Buffer);
    expect(details.fieldViolations[0]!.field).to.equal(fieldName);
    return err!;
  }

  async function expectNothingWritten() {
    const page = await s.client.scan(ns);
    expect(page.items.map((i) => i.key)).to.deep.equal([]);
  }

  const putReq = (key: Bytes, value: Bytes = "v", ...more: Buffer[]) => msg(str(1, ns), str(2, key), field(3, LEN, value), ...more);

  describe("invalid UTF-8 (decoding would make it U+FFFD, so distinct keys would collide)", function () {
    it("Put refuses both probe keys, 6b ff fe and 6b c0 af, and writes nothing", async function () {
      await expectInvalid("Put", putReq(hex("6b ff fe")), "key");
      await expectInvalid("Put", putReq(hex("6b c0 af")), "key");
      await expectNothingWritten();
    });

    it("Get, Delete, BatchGet and Scan name the field", async function () {
      await s.client.put(ns, "k\ufffd", Buffer.from("real"));
      await expectInvalid("Get", msg(str(1, ns), str(2, hex("6b ff"))), "key");
      await expectInvalid("Delete", msg(str(1, ns), str(2, hex("6b ff"))), "key");
      await expectInvalid("BatchGet", msg(str(1, ns), str(2, "a"), str(2, "b"), str(2, hex("6b ff"))), "keys[2]");
      await expectInvalid("Scan", msg(str(1, ns), str(2, hex("6b ff"))), "prefix");
      await expectInvalid("Scan", msg(str(1, ns), str(4, hex("ff fe 41"))), "page_token");
      expect((await s.client.get(ns, "k\ufffd")).item!.value.toString()).to.equal("real");
    });

    it("a namespace, and a key inside a BatchWrite, refuse the whole batch", async function () {
      await expectInvalid("Put", msg(str(1, hex("61 ff")), str(2, "k"), str(3, "v")), "namespace");
      const put = (key: Bytes) => str(2, str(1, str(1, key)));
      await expectInvalid("BatchWrite", msg(str(1, ns), put("a"), put("b"), put("c"), put(hex("ff"))), "writes[3].put.key");
      await expectInvalid("BatchWrite", msg(str(1, ns), put("a"), str(2, str(2, str(1, hex("c0 af"))))), "writes[1].delete.key");
      await expectNothingWritten();
    });

    it("the Migration service's namespace (Verify)", async function () {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        const stream = raw.makeServerStreamRequest("/decant.v1.Migration/Verify", (b: Buffer) => b, (b: Buffer) => b, msg(str(1, hex("75 ff"))));
        stream.on("data", () => undefined);
        stream.on("error", resolve);
      });
      expect(err.code, err.details).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err.details).to.match(/^namespace: is not valid UTF-8/);
    });
  });

  describe("fields sent with the wrong wire type", function () {
    it("a key sent as fixed64 is refused, not stored as garbage", async function () {
      // The probe's bytes: the key as fixed64 "aaaaaaaa", then a value field.
      await expectInvalid("Put", msg(str(1, ns), field(2, FIXED64, Buffer.from("aaaaaaaa").readBigUInt64LE()), str(3, "v")), "key");
      await expectInvalid("Put", msg(str(1, ns), field(2, VARINT, 7)), "key");
      await expectNothingWritten();
    });

    it("a value or a condition as a varint, page_size as a string: INVALID_ARGUMENT, not INTERNAL", async function () {
      await expectInvalid("Put", msg(str(1, ns), str(2, "k"), field(3, VARINT, 5)), "value");
      await expectInvalid("Put", putReq("k", "v", field(4, VARINT, 1)), "condition");
      await expectInvalid("Delete", msg(str(1, ns), str(2, "k"), field(3, VARINT, 1)), "condition");
      await expectInvalid("Scan", msg(str(1, ns), str(3, "10")), "page_size");
      await expectInvalid("BatchWrite", msg(str(1, ns), field(2, VARINT, 1)), "writes[0]");
      await expectNothingWritten();
    });

    it("a uint32 holding more than 32 bits is refused, not cut to its low bits", async function () {
      await expectInvalid("Scan", msg(str(1, ns), field(3, VARINT, 2n ** 32n + 5n)), "page_size");
      await expectInvalid("StartBackfill", msg(field(2, VARINT, 2n ** 33n)), "concurrency", "decant.v1.Migration");
    });
  });

  describe("undecodable bytes", function () {
    it("lengths that run past the end name the field, as INVALID_ARGUMENT", async function () {
      await expectInvalid("Put", msg(str(1, ns), hex("12 05 6b")), "key");
      await expectInvalid("Put", msg(str(1, ns), str(2, "k"), hex("1a 80 80 04 00")), "value");
      await expectInvalid("BatchWrite", msg(str(1, ns), str(2, msg(str(1, hex("0a 09 61"))))), "writes[0].put.key");
      await expectInvalid("Put", msg(str(1, ns), hex("12")), "key");
      await expectNothingWritten();
    });

    it("an invalid wire type, a varint without end and field number 0", async function () {
      await expectInvalid("Put", msg(str(1, ns), hex("17 00")), "key");
      await expectInvalid("Put", msg(str(1, ns), hex("12 ff ff ff ff ff ff ff ff ff ff 01")), "key");
      await expectInvalid("Put", msg(str(1, ns), hex("08 01")), "namespace");
      await expectInvalid("Get", hex("00 00"), "<field 0>");
      await expectInvalid("Get", msg(str(1, ns), hex("7e")), "<field 15>");
    });

    it("unknown fields outside a condition are still ignored (a newer client's extras)", async function () {
      const { err, res } = await send("/decant.v1.Store/Put", putReq("k", "v", field(9, VARINT, 1), str(10, hex("ff"))));
      expect(err).to.equal(null);
      expect(res!.length).to.be.greaterThan(0);
      expect((await s.client.get(ns, "k")).item!.version).to.equal("1");
    });
  });

  describe("a field a Condition does not have, wherever a request holds a Condition", function () {
    it("is refused in every request of every service (the paths are found by walking the protocol, so a new one is covered)", async function () {
      const covered: string[] = [];
      for (const service of ["decant.v1.Store", "decant.v1.Migration"]) {
        for (const method of protocolRoot().lookupService(service).methodsArray) {
          const request = method.resolvedRequestType!;
          const namespace = request.fields.namespace ? str(request.fields.namespace.id, ns) : Buffer.alloc(0);
          for (const path of conditionPaths(request)) {
            const unknown = field(9, VARINT, 5); // a field number Condition does not have
            const bytes = path.reduceRight((inner, f) => str(f.id, inner), unknown);
            const name = path.map((f, i) => `${i ? "." : ""}${f.name}${f.repeated ? "[0]" : ""}`).join("");
            await expectInvalid(method.name, msg(namespace, bytes), `${name}.<field 9>`, service);
            covered.push(`${method.name} ${name}`);
          }
        }
      }
      expect(covered).to.include.members(["Put condition", "Delete condition", "BatchWrite writes[0].put.condition", "BatchWrite writes[0].delete.condition"]);
      await expectNothingWritten();
    });
  });

  describe("what protobuf would let the last one win", function () {
    const cond = (...f: Buffer[]) => str(4, msg(...f));

    it("a condition with both expected_version and must_not_exist (Put, Delete, BatchWrite)", async function () {
      const both = msg(field(1, VARINT, 1), field(2, VARINT, 1));
      await expectInvalid("Put", putReq("k", "v", cond(field(1, VARINT, 1), field(2, VARINT, 1))), "condition");
      await expectInvalid("Put", putReq("k", "v", cond(field(2, VARINT, 1), field(1, VARINT, 1))), "condition");
      await expectInvalid("Delete", msg(str(1, ns), str(2, "k"), str(3, both)), "condition");
      await expectInvalid("BatchWrite", msg(str(1, ns), str(2, str(1, msg(str(1, "k"), str(3, both))))), "writes[0].put.condition");
      await expectNothingWritten();
    });

    it("the same, through the client library, which encodes both members", async function () {
      const err = await s.client.put(ns, "k", Buffer.from("v"), { expected_version: "1", must_not_exist: true }).catch((e: grpc.ServiceError) => e);
      expect((err as grpc.ServiceError).code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect((err as grpc.ServiceError).details).to.match(/^condition: sets both expected_version and must_not_exist/);
    });

    it("two conditions, a key sent twice, or a write with both put and delete", async function () {
      await expectInvalid("Put", putReq("k", "v", cond(field(2, VARINT, 1)), cond(field(1, VARINT, 3))), "condition");
      await expectInvalid("Put", msg(str(1, ns), str(2, "a"), str(2, "b"), str(3, "v")), "key");
      await expectInvalid("BatchWrite", msg(str(1, ns), str(2, msg(str(1, str(1, "a")), str(2, str(1, "a"))))), "writes[0]");
      await expectNothingWritten();
    });
  });

  describe("documented edges", function () {
    it("a NUL in a key is refused", async function () {
      await expectInvalid("Put", putReq("a\u0000b"), "key");
    });

    it("a BatchWrite with no writes is OK with no results, once its namespace is valid", async function () {
      const { err, res } = await send("/decant.v1.Store/BatchWrite", msg(str(1, ns)));
      expect(err).to.equal(null);
      expect(res!.length).to.equal(0); // an empty BatchWriteResponse
      await expectInvalid("BatchWrite", msg(str(1, "Bad")), "namespace");
    });
  });
});
