// The Store service through a real grpc-js server on loopback and a real client.
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { CURRENT_VERSION_METADATA, decodeDetails } from "../../src/wire/status.js";
import { protocolRoot } from "../../src/wire/proto.js";
import { freshNamespace } from "../support/names.js";
import { grpcError } from "../support/errors.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;


describe("Store service over gRPC", function () {
  let s: Running;
  let ns: string;
  before(async () => {
    s = await startTestSidecar({ DECANT_MAX_VALUE_BYTES: String(1024) });
  });
  after(async () => s?.stop());
  beforeEach(() => {
    ns = freshNamespace();
  });

  const call = <T = any>(method: string, req: object) => s.client.call<T>("store", method, req);

  async function expectInvalid(method: string, req: object, field: string) {
    const err = await grpcError(call(method, req));
    expect(err.code, err.details).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(err.details).to.include(field);
    const details = decodeDetails(err.metadata.get("grpc-status-details-bin")[0] as Buffer);
    expect(details.fieldViolations[0]!.field).to.equal(field);
    return err;
  }

  describe("every RPC", function () {
    it("Put, Get, Delete with versions", async function () {
      expect(await call("Put", { namespace: ns, key: "k", value: Buffer.from("v1") })).to.deep.equal({ version: "1" });
      expect(await call("Put", { namespace: ns, key: "k", value: Buffer.from("v2") })).to.deep.equal({ version: "2" });
      const got = await call("Get", { namespace: ns, key: "k" });
      expect(got.found).to.equal(true);
      expect(got.item.value.toString()).to.equal("v2");
      expect(got.item.version).to.equal("2");
      expect(await call("Delete", { namespace: ns, key: "k" })).to.deep.equal({ deleted: true, version: "3" });
      expect(await call("Get", { namespace: ns, key: "k" })).to.deep.include({ found: false });
      expect(await call("Delete", { namespace: ns, key: "k" })).to.deep.equal({ deleted: false, version: "3" });
      expect(await call("Put", { namespace: ns, key: "k", value: Buffer.from("v4") })).to.deep.equal({ version: "4" });
    });

    it("BatchGet returns only the keys found", async function () {
      await call("Put", { namespace: ns, key: "a", value: Buffer.from("1") });
      await call("Put", { namespace: ns, key: "c", value: Buffer.from("3") });
      const r = await call("BatchGet", { namespace: ns, keys: ["a", "b", "c"] });
      expect(r.items.map((i: { key: string }) => i.key).sort()).to.deep.equal(["a", "c"]);
      expect((await call("BatchGet", { namespace: ns, keys: [] })).items).to.deep.equal([]);
    });

    it("BatchWrite reports each write with its own status", async function () {
      await call("Put", { namespace: ns, key: "x", value: Buffer.from("old") });
      const r = await call("BatchWrite", {
        namespace: ns,
        writes: [
          { put: { key: "a", value: Buffer.from("1") } },
          { put: { key: "x", value: Buffer.from("no"), condition: { expected_version: "7" } } },
          { delete: { key: "x" } },
        ],
      });
      expect(r.results).to.have.length(3);
      expect(r.results[0]).to.deep.include({ key: "a", version: "1", code: 0 });
      expect(r.results[1]).to.deep.include({ key: "x", code: grpc.status.FAILED_PRECONDITION, current_version: "1" });
      expect(r.results[2]).to.deep.include({ key: "x", code: 0, deleted: true, version: "2" });
      expect((await call("BatchWrite", { namespace: ns, writes: [] })).results).to.deep.equal([]);
    });

    it("Scan pages across pages with tiny pages and sees every key once", async function () {
      const keys = Array.from({ length: 17 }, (_, i) => `p/${String(i).padStart(2, "0")}`);
      await call("BatchWrite", { namespace: ns, writes: [...keys, "q/1"].map((key) => ({ put: { key, value: Buffer.from(key) } })) });
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await call("Scan", { namespace: ns, prefix: "p/", page_size: 2, page_token: token });
        expect(page.items.length).to.be.at.most(2);
        seen.push(...page.items.map((i: { key: string }) => i.key));
        token = page.next_page_token;
        pages++;
      } while (token);
      expect(pages).to.be.at.least(9);
      expect(seen).to.deep.equal(keys);
    });
  });

  describe("conditions", function () {
    it("FAILED_PRECONDITION carries the current version in metadata and details, and writes nothing", async function () {
      await call("Put", { namespace: ns, key: "k", value: Buffer.from("a") });
      await call("Put", { namespace: ns, key: "k", value: Buffer.from("b") });
      const err = await grpcError(call("Put", { namespace: ns, key: "k", value: Buffer.from("c"), condition: { expected_version: "1" } }));
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(err.metadata.get(CURRENT_VERSION_METADATA)).to.deep.equal(["2"]);
      const details = decodeDetails(err.metadata.get("grpc-status-details-bin")[0] as Buffer);
      expect(details.reason).to.equal("VERSION_MISMATCH");
      expect(details.metadata.current_version).to.equal("2");
      expect((await call("Get", { namespace: ns, key: "k" })).item.value.toString()).to.equal("b");
    });

    it("must_not_exist and conditional delete", async function () {
      expect(await call("Put", { namespace: ns, key: "k", value: Buffer.from("a"), condition: { must_not_exist: true } })).to.deep.equal({ version: "1" });
      const err = await grpcError(call("Put", { namespace: ns, key: "k", value: Buffer.from("b"), condition: { must_not_exist: true } }));
      expect(err.code).to.equal(grpc.status.FAILED_PRECONDITION);
      const del = await grpcError(call("Delete", { namespace: ns, key: "k", condition: { expected_version: "9" } }));
      expect(del.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(await call("Delete", { namespace: ns, key: "k", condition: { expected_version: "1" } })).to.deep.equal({ deleted: true, version: "2" });
    });

    it("concurrent conditional writers on one key never lose an update", async function () {
      await call("Put", { namespace: ns, key: "n", value: Buffer.from("0") });
      let conflicts = 0;
      const writer = async () => {
        for (let done = 0; done < 10; ) {
          const cur = await call("Get", { namespace: ns, key: "n" });
          try {
            await call("Put", { namespace: ns, key: "n", value: Buffer.from(String(Number(cur.item.value.toString()) + 1)), condition: { expected_version: cur.item.version } });
            done++;
          } catch (err) {
            if ((err as grpc.ServiceError).code !== grpc.status.FAILED_PRECONDITION) throw err;
            conflicts++;
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, writer));
      const final = await call("Get", { namespace: ns, key: "n" });
      expect(final.item.value.toString()).to.equal("80");
      expect(final.item.version).to.equal("81");
      expect(conflicts).to.be.greaterThan(0); // the writers really raced
    });
  });

  describe("bad input is INVALID_ARGUMENT naming the field, and writes nothing", function () {
    it("namespace", async function () {
      await expectInvalid("Put", { namespace: "Bad-NS", key: "k", value: Buffer.from("v") }, "namespace");
      await expectInvalid("Get", { namespace: "", key: "k" }, "namespace");
      await expectInvalid("Scan", { namespace: "_decant_control" }, "namespace");
      await expectInvalid("Put", { namespace: "a".repeat(64), key: "k" }, "namespace");
    });

    it("key: empty or over 1024 bytes", async function () {
      await expectInvalid("Put", { namespace: ns, key: "", value: Buffer.from("v") }, "key");
      await expectInvalid("Put", { namespace: ns, key: "é".repeat(513), value: Buffer.from("v") }, "key");
      await expectInvalid("BatchGet", { namespace: ns, keys: ["ok", ""] }, "keys[1]");
      expect((await call("Scan", { namespace: ns })).items).to.deep.equal([]);
    });

    it("value over the configured maximum", async function () {
      await expectInvalid("Put", { namespace: ns, key: "k", value: Buffer.alloc(1025) }, "value");
      expect(await call("Get", { namespace: ns, key: "k" })).to.deep.include({ found: false });
    });

    it("page_size out of range and foreign page tokens", async function () {
      await expectInvalid("Scan", { namespace: ns, page_size: 1001 }, "page_size");
      await expectInvalid("Scan", { namespace: ns, page_token: "garbage!" }, "page_token");
      await call("BatchWrite", { namespace: ns, writes: ["a", "b", "c"].map((key) => ({ put: { key, value: Buffer.from("v") } })) });
      const page = await call("Scan", { namespace: ns, page_size: 1 });
      await expectInvalid("Scan", { namespace: freshNamespace(), page_size: 1, page_token: page.next_page_token }, "page_token");
    });

    it("conditions that would silently become unconditional", async function () {
      await expectInvalid("Put", { namespace: ns, key: "k", value: Buffer.from("v"), condition: {} }, "condition");
      await expectInvalid("Put", { namespace: ns, key: "k", value: Buffer.from("v"), condition: { must_not_exist: false } }, "condition.must_not_exist");
      await expectInvalid("Put", { namespace: ns, key: "k", value: Buffer.from("v"), condition: { expected_version: "0" } }, "condition.expected_version");
      expect(await call("Get", { namespace: ns, key: "k" })).to.deep.include({ found: false });
    });

    it("unknown fields in a condition, sent on the wire by a newer client", async function () {
      // Encode a PutRequest whose Condition carries field 9, which this server does not know.
      const root = protocolRoot();
      const put = root.lookupType("decant.v1.PutRequest");
      const base = put.encode(put.create({ namespace: ns, key: "k", value: Buffer.from("v") })).finish();
      const cond = protobuf.Writer.create().uint32((9 << 3) | 0).uint64(5).finish();
      const bytes = Buffer.concat([base, protobuf.Writer.create().uint32((4 << 3) | 2).bytes(cond).finish()]);
      const raw = new grpc.Client(`127.0.0.1:${s.sidecar.grpcPort}`, grpc.credentials.createInsecure());
      const err = await new Promise<grpc.ServiceError>((resolve) =>
        raw.makeUnaryRequest("/decant.v1.Store/Put", (b: Buffer) => b, (b: Buffer) => b, bytes, (e) => resolve(e!)),
      );
      raw.close();
      expect(err.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(err.details).to.include("condition.<field 9>");
      expect(await call("Get", { namespace: ns, key: "k" })).to.deep.include({ found: false });
    });

    it("a bad write in a batch refuses the whole batch", async function () {
      await expectInvalid("BatchWrite", { namespace: ns, writes: [{ put: { key: "a", value: Buffer.from("1") } }, { put: { key: "", value: Buffer.from("2") } }] }, "writes[1].put.key");
      await expectInvalid("BatchWrite", { namespace: ns, writes: [{}] }, "writes[0]");
      expect(await call("Get", { namespace: ns, key: "a" })).to.deep.include({ found: false });
    });
  });

  describe("health, reflection and metrics", function () {
    it("health: Check, Watch and List as grpc-health-check answers them", async function () {
      const { protoPath } = await import("grpc-health-check");
      const protoLoader = await import("@grpc/proto-loader");
      const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
      const health = new def.grpc.health.v1.Health(`127.0.0.1:${s.sidecar.grpcPort}`, grpc.credentials.createInsecure());
      const unary = (method: string, req: object) =>
        new Promise<any>((res, rej) => health[method](req, (e: Error, v: unknown) => (e ? rej(e) : res(v))));
      try {
        for (const service of ["", "decant.v1.Store", "decant.v1.Migration"]) expect((await unary("Check", { service })).status).to.equal("SERVING");
        const unknown = await grpcError(unary("Check", { service: "nope.v1.Nothing" }));
        expect(unknown.code).to.equal(grpc.status.NOT_FOUND);
        expect(unknown.details).to.equal("Health status unknown for service nope.v1.Nothing");
        const list = await unary("List", {});
        expect(list.statuses).to.deep.equal({ "": { status: "SERVING" }, "decant.v1.Store": { status: "SERVING" }, "decant.v1.Migration": { status: "SERVING" } });
        for (const [service, want] of [["decant.v1.Store", "SERVING"], ["nope.v1.Nothing", "SERVICE_UNKNOWN"]]) {
          const watch = health.Watch({ service });
          const first = await new Promise<{ status: string }>((res, rej) => watch.once("data", res).once("error", rej));
          expect(first.status).to.equal(want);
          watch.cancel();
          await new Promise((r) => watch.once("error", r).once("end", r));
        }
      } finally {
        health.close();
      }
    });

    it("health: a watcher hears NOT_SERVING when the sidecar stops", async function () {
      const { protoPath } = await import("grpc-health-check");
      const protoLoader = await import("@grpc/proto-loader");
      const def = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { enums: String })) as any;
      const own = await startTestSidecar({ DECANT_DRAIN_TIMEOUT_MS: "300" });
      const health = new def.grpc.health.v1.Health(`127.0.0.1:${own.sidecar.grpcPort}`, grpc.credentials.createInsecure());
      try {
        const watch = health.Watch({ service: "decant.v1.Store" });
        const seen: string[] = [];
        const first = new Promise((resolve, reject) => watch.once("data", resolve).once("error", reject));
        const closed = new Promise((resolve) => watch.once("end", resolve).once("error", resolve));
        watch.on("data", (m: { status: string }) => seen.push(m.status));
        watch.on("error", () => {});
        await first;
        await own.stop();
        await closed; // what the server sent before it went away has been read by now
        expect(seen).to.deep.equal(["SERVING", "NOT_SERVING"]);
      } finally {
        health.close();
      }
    });

    it("reflection answers on v1 and v1alpha, also to streams opened before it has loaded", async function () {
      const protoLoader = await import("@grpc/proto-loader");
      const { createRequire } = await import("node:module");
      const require = createRequire(import.meta.url);
      const ask = (version: "v1" | "v1alpha") => {
        const file = require.resolve(`@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`);
        const def = grpc.loadPackageDefinition(protoLoader.loadSync(file, { keepCase: false, defaults: true, oneofs: true })) as any;
        const client = new def.grpc.reflection[version].ServerReflection(`127.0.0.1:${s.sidecar.grpcPort}`, grpc.credentials.createInsecure());
        const stream = client.ServerReflectionInfo();
        const answers: any[] = [];
        const done = new Promise<any[]>((resolve, reject) => {
          stream.on("data", (a: unknown) => answers.push(a));
          stream.on("error", reject);
          stream.on("end", () => {
            client.close();
            resolve(answers);
          });
        });
        // Written at once, before the server can have loaded its reflection handlers.
        stream.write({ listServices: "" });
        stream.write({ fileContainingSymbol: "decant.v1.Store" });
        stream.write({ fileContainingSymbol: "grpc.health.v1.Health" });
        stream.end();
        return done;
      };
      for (const answers of await Promise.all([ask("v1"), ask("v1alpha")])) {
        expect(answers).to.have.length(3);
        const services = answers[0].listServicesResponse.service.map((x: { name: string }) => x.name);
        expect(services).to.include.members(["decant.v1.Store", "decant.v1.Migration", "grpc.health.v1.Health"]);
        expect(answers[1].fileDescriptorResponse.fileDescriptorProto.length).to.be.greaterThan(0);
        expect(answers[2].fileDescriptorResponse.fileDescriptorProto.length).to.be.greaterThan(0);
      }
    });

    it("counts requests by rpc and code on /metrics", async function () {
      await call("Get", { namespace: ns, key: "x" });
      await grpcError(call("Get", { namespace: "BAD", key: "x" }));
      const text = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
      expect(text).to.match(/decant_requests_total\{rpc="Store\/Get",code="OK",front="grpc"\} \d+/);
      expect(text).to.match(/decant_requests_total\{rpc="Store\/Get",code="INVALID_ARGUMENT",front="grpc"\} \d+/);
      expect(text).to.include("decant_request_duration_seconds_bucket");
      expect(text).to.match(/decant_store_operation_duration_seconds_count\{store="current:memory",op="get"\} \d+/);
      expect(text).to.include("decant_process_resident_memory_bytes");
    });
  });
});

describe("Store service: store outage", function () {
  it("is UNAVAILABLE, not UNKNOWN, when the store cannot be used", async function () {
    const s = await startTestSidecar({ DECANT_CURRENT: "sqlite:/dev/null/cannot/x.db" });
    try {
      const err = await grpcError(s.client.call("store", "Get", { namespace: "ns", key: "k" }));
      expect(err.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err.details).to.include("/dev/null/cannot/x.db");
    } finally {
      await s.stop();
    }
  });
});
