// The front's HTTP protocol, outages, signatures, metrics and configuration, with real clients.
import { createServer, connect, type Server, type Socket } from "node:net";
import { crc32 } from "node:zlib";
import { expect } from "chai";
import { BatchGetItemCommand, BatchWriteItemCommand, CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../../src/backends/index.js";
import { ConfigError, loadConfig } from "../../../src/config/config.js";
import { startDynamoFront } from "../../../src/fronts/dynamodb/server.js";
import { fromStoreError, isRetryable } from "../../../src/fronts/dynamodb/errors.js";
import { DecantError } from "../../../src/protocol/errors.js";
import { silentLogger } from "../../../src/log.js";
import { scrapeMetric } from "../../support/processes.js";
import { TEST_URLS } from "../../support/servers.js";
import { CREDENTIALS, rejection, sdkClient, serverUp, startFront } from "./support.js";

const post = (endpoint: string, target: string | undefined, body: string) =>
  fetch(endpoint, { method: "POST", headers: { "content-type": "application/x-amz-json-1.0", ...(target ? { "x-amz-target": target } : {}) }, body });

/**
 * A front on the memory store whose reads can be held (a slow store: a client can leave, or
 * requests pile up, while one waits), with the table `name` created. hold() returns its release.
 */
async function frontWithHeldReads(name: string) {
  const memory = await openStore("memory:");
  let held: Promise<void> | undefined;
  const store = Object.create(memory) as typeof memory;
  store.get = async (...args) => {
    await held;
    return memory.get(...args);
  };
  const front = await startDynamoFront({ listen: "127.0.0.1:0", store, logger: silentLogger(), maxValueBytes: 400 * 1024 });
  const endpoint = `http://127.0.0.1:${front.port}`;
  const created = await post(endpoint, "DynamoDB_20120810.CreateTable", JSON.stringify({ TableName: name, AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
  expect(created.status).to.equal(200);
  return {
    front,
    endpoint,
    hold(): () => void {
      let release!: () => void;
      held = new Promise<void>((r) => (release = r));
      return () => {
        release();
        held = undefined;
      };
    },
    close: async () => {
      await front.close();
      await memory.close();
    },
  };
}

describe("DynamoDB front: protocol, signatures, metrics, config", function () {
  this.timeout(60_000);

  describe("over HTTP", () => {
    let f: Awaited<ReturnType<typeof startFront>>;
    before(async () => (f = await startFront("memory:")));
    after(async () => f?.stop());

    it("answers DynamoDB's JSON protocol: request ids, content type, typed 400 errors for bad requests (never 500)", async () => {
      const res = await post(f.endpoint, "DynamoDB_20120810.ListTables", "{}");
      expect(res.status).to.equal(200);
      expect(res.headers.get("content-type")).to.equal("application/x-amz-json-1.0");
      expect(res.headers.get("x-amzn-requestid")).to.match(/^[0-9a-f-]{36}$/);
      expect(await res.json()).to.deep.equal({ TableNames: [] });
      const cases: [string | undefined, string, string][] = [
        [undefined, "{}", "UnknownOperationException"],
        ["DynamoDB_20120810.Frobnicate", "{}", "UnknownOperationException"],
        ["DynamoDB_20120810.ListTables", "{not json", "SerializationException"],
        ["DynamoDB_20120810.ListTables", "[1]", "SerializationException"],
        ["DynamoDB_20120810.GetItem", "{}", "ValidationException"],
        ["DynamoDB_20120810.GetItem", '{"TableName":"ab"}', "ValidationException"],
        ["DynamoDB_20120810.PutItem", '{"TableName":"abc","Item":{"k":{"Q":"x"}}}', "ValidationException"],
        ["DynamoDB_20120810.CreateTable", '{"TableName":"abc","KeySchema":[{"AttributeName":"k","KeyType":"RANGE"}],"AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}', "ValidationException"],
        ["DynamoDB_20120810.ListTables", '{"Limit":0}', "ValidationException"],
        ["DynamoDB_20120810.DescribeTable", '{"TableName":"nope"}', "ResourceNotFoundException"],
      ];
      for (const [target, body, type] of cases) {
        const r = await post(f.endpoint, target, body);
        const json = (await r.json()) as { __type: string; message: string };
        expect(r.status, `${target} ${body}`).to.equal(400);
        expect(json.__type, `${target} ${body}`).to.equal(`com.amazonaws.dynamodb.v20120810#${type}`);
        expect(json.message).to.be.a("string").and.not.equal("");
      }
    });

    it("counts requests in decant_requests_total with front=dynamodb and the operation (gRPC calls carry front=grpc)", async () => {
      await f.client.send(new CreateTableCommand({ TableName: "metered", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      for (let i = 0; i < 3; i++) await f.client.send(new PutItemCommand({ TableName: "metered", Item: { k: { S: `k${i}` } } }));
      await rejection(f.client.send(new PutItemCommand({ TableName: "metered", Item: { k: { S: "k0" } }, ConditionExpression: "attribute_not_exists(k)" })));
      await f.grpc.call("store", "Get", { namespace: "x", key: "y" });
      const port = f.sidecar.metricsPort;
      expect(await scrapeMetric(port, "decant_requests_total", { front: "dynamodb", rpc: "PutItem", code: "OK" })).to.equal(3);
      expect(await scrapeMetric(port, "decant_requests_total", { front: "dynamodb", rpc: "PutItem", code: "ConditionalCheckFailedException" })).to.equal(1);
      // Every PutItem is timed (the earlier test's malformed one too).
      expect(await scrapeMetric(port, "decant_request_duration_seconds_count", { front: "dynamodb", rpc: "PutItem" })).to.equal(await scrapeMetric(port, "decant_requests_total", { front: "dynamodb", rpc: "PutItem" }));
      expect(await scrapeMetric(port, "decant_requests_total", { front: "grpc", rpc: "Store/Get" })).to.equal(1);
      const status = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as { requests: { dynamodb_total: number } };
      expect(status.requests.dynamodb_total).to.be.at.least(5);
    });

    it("GetItem and PutItem without expression parameters take a shorter path that refuses what the general one refuses", async () => {
      await f.client.send(new CreateTableCommand({ TableName: "plain", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      const answer = async (target: string, body: string) => {
        const r = await post(f.endpoint, `DynamoDB_20120810.${target}`, body);
        return { status: r.status, json: (await r.json()) as Record<string, unknown> };
      };
      expect(await answer("PutItem", '{"TableName":"plain","Item":{"k":{"S":"a"},"n":{"N":"1.50"}}}')).to.deep.equal({ status: 200, json: {} });
      expect(await answer("GetItem", '{"TableName":"plain","Key":{"k":{"S":"a"}}}')).to.deep.equal({ status: 200, json: { Item: { k: { S: "a" }, n: { N: "1.5" } } } });
      expect(await answer("GetItem", '{"TableName":"plain","Key":{"k":{"S":"b"}}}')).to.deep.equal({ status: 200, json: {} });
      const refused: [string, string, RegExp][] = [
        ["GetItem", '{"TableName":"plain","Key":{"k":{"S":"a"}},"ExpressionAttributeNames":{"#n":"n"}}', /ExpressionAttributeNames can only be specified when using expressions/],
        ["PutItem", '{"TableName":"plain","Item":{"k":{"S":"a"}},"ExpressionAttributeValues":{":v":{"S":"x"}}}', /ExpressionAttributeValues can only be specified when using expressions/],
        ["PutItem", '{"TableName":"plain","Item":{"k":{"S":"a"}},"ReturnValues":"ALL_NEW"}', /ReturnValues can only be ALL_OLD or NONE/],
        ["PutItem", '{"TableName":"plain","Item":{"k":{"S":"a"}},"ConditionalOperator":"AND"}', /ConditionalOperator can only be used when Expected/],
        ["PutItem", '{"TableName":"plain","Item":{"n":{"S":"a"}}}', /Missing the key k/],
        ["GetItem", '{"TableName":"plain","Key":{"k":{"S":"a"},"n":{"S":"x"}}}', /does not match the schema/],
        ["PutItem", '{"TableName":"nosuchtable","Item":{"k":{"S":"a"}},"ReturnValues":"ALL_NEW"}', /ReturnValues can only be ALL_OLD or NONE/],
      ];
      for (const [target, body, message] of refused) {
        const { status, json } = await answer(target, body);
        expect(status, body).to.equal(400);
        expect(json.__type, body).to.equal("com.amazonaws.dynamodb.v20120810#ValidationException");
        expect(json.message, body).to.match(message);
      }
      expect((await answer("GetItem", '{"TableName":"nosuchtable","Key":{"k":{"S":"a"}}}')).json.__type).to.equal("com.amazonaws.dynamodb.v20120810#ResourceNotFoundException");
    });

    it("refuses a body over 16 MB with a 413, and answers a health check", async () => {
      const res = await post(f.endpoint, "DynamoDB_20120810.PutItem", `{"TableName":"plain","Item":{"k":{"S":"${"x".repeat(16 * 1024 * 1024)}"}}}`).catch((err: Error) => err);
      // The server answers, then ends the connection while the body is still coming: a client sees the answer or the reset.
      if (!(res instanceof Error)) expect(res.status).to.equal(413);
      const health = await fetch(f.endpoint);
      expect(health.status).to.equal(200);
      expect(await health.text()).to.match(/healthy/);
    });

    describe("the lean HTTP path, and what it hands to node:http", () => {
      const port = () => Number(new URL(f.endpoint).port);
      const plain = (body: string, extra = "") => `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: DynamoDB_20120810.ListTables\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
      const put = (k: string) => JSON.stringify({ TableName: "lean", Item: { k: { S: k } } });
      const putRequest = (k: string, extra = "") => plain(put(k), extra).replace("ListTables", "PutItem");
      const get = async (k: string) => (await (await post(f.endpoint, "DynamoDB_20120810.GetItem", JSON.stringify({ TableName: "lean", Key: { k: { S: k } } }))).json()) as { Item?: unknown };
      before(async () => {
        await f.client.send(new CreateTableCommand({ TableName: "lean", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      });

      /** Writes the parts (a pause between each), reads until `answers` whole answers came or the server closed. */
      async function raw(parts: (string | Buffer)[], answers: number, pauseMs = 0): Promise<{ answers: { status: number; head: string; body: string }[]; closed: boolean }> {
        const socket = connect(port(), "127.0.0.1");
        await new Promise((r) => socket.once("connect", r));
        let data = Buffer.alloc(0);
        let closed = false;
        const got: { status: number; head: string; body: string }[] = [];
        const done = new Promise<void>((resolve) => {
          const parse = () => {
            for (;;) {
              const end = data.indexOf("\r\n\r\n");
              if (end < 0) return;
              const head = data.toString("latin1", 0, end);
              const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
              if (status === 100) {
                data = data.subarray(end + 4);
                continue;
              }
              const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
              if (data.length < end + 4 + length) return;
              got.push({ status, head, body: data.toString("utf8", end + 4, end + 4 + length) });
              data = data.subarray(end + 4 + length);
              if (got.length === answers) resolve();
            }
          };
          socket.on("data", (d: Buffer) => ((data = Buffer.concat([data, d])), parse()));
          socket.on("close", () => ((closed = true), resolve()));
          socket.on("error", () => undefined);
        });
        for (const part of parts) {
          socket.write(part);
          if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
        }
        await done;
        await new Promise((r) => setTimeout(r, 50)); // a close that follows the last answer
        socket.destroy();
        return { answers: got, closed };
      }

      it("answers pipelined requests in order, and a request that arrives a byte at a time, on one keep-alive connection", async () => {
        const two = await raw([putRequest("p1") + putRequest("p2") + plain("{}")], 3);
        expect(two.answers.map((a) => a.status)).to.deep.equal([200, 200, 200]);
        expect(JSON.parse(two.answers[2]!.body).TableNames).to.include("lean");
        expect(two.answers[0]!.head).to.match(/\r\nconnection: keep-alive\r\n/i).and.match(/\r\ndate: /i).and.match(/\r\nx-amz-crc32: \d+/i);
        expect(two.closed).to.equal(false);
        const bytes = Buffer.from(putRequest("p3"));
        const slow = await raw([...bytes].map((b) => Buffer.from([b])), 1, 1);
        expect(slow.answers.map((a) => a.status)).to.deep.equal([200]);
        for (const k of ["p1", "p2", "p3"]) expect((await get(k)).Item).to.deep.equal({ k: { S: k } });
      });

      it("hands a chunked body, Expect: 100-continue, HTTP/1.0, a repeated header and a malformed head to node:http, which answers each as it would", async () => {
        const body = put("c1");
        const chunked = `POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: DynamoDB_20120810.PutItem\r\ntransfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
        // A plain request first (the lean path), then a chunked one on the same connection (handed over), then a plain one (node:http's now).
        const mixed = await raw([putRequest("c0"), chunked, putRequest("c2")], 3, 30);
        expect(mixed.answers.map((a) => a.status)).to.deep.equal([200, 200, 200]);
        for (const k of ["c0", "c1", "c2"]) expect((await get(k)).Item).to.deep.equal({ k: { S: k } });
        const expect100 = await raw([putRequest("e1", "expect: 100-continue\r\n")], 1);
        expect(expect100.answers.map((a) => a.status)).to.deep.equal([200]);
        expect((await get("e1")).Item).to.deep.equal({ k: { S: "e1" } });
        const http10 = await raw([putRequest("h1").replace("HTTP/1.1", "HTTP/1.0")], 1);
        expect([http10.answers[0]?.status, http10.closed]).to.deep.equal([200, true]);
        const repeated = await raw([putRequest("r1", "x-amz-target: DynamoDB_20120810.PutItem\r\n")], 1);
        expect(repeated.answers.length).to.equal(1); // answered (node:http's rules for repeated headers), not left hanging
        const malformed = await raw(["POST / HTTP/1.1\r\nbad header line\r\n\r\n"], 1);
        expect(malformed.answers[0]?.status ?? 400).to.equal(400);
        expect(malformed.closed).to.equal(true);
        const huge = await raw([putRequest("big", `x-pad: ${"y".repeat(20_000)}\r\n`)], 1);
        expect(huge.answers[0]?.status ?? 431).to.equal(431);
      });

      it("runs no request sent after one with Connection: close (node:http refuses data after it)", async () => {
        const socket = connect({ port: port(), host: "127.0.0.1", allowHalfOpen: true }); // a client slow to see the front's end
        socket.on("data", () => undefined);
        socket.on("error", () => undefined);
        await new Promise((r) => socket.once("connect", r));
        socket.write(putRequest("cc1", "connection: close\r\n") + putRequest("cc2"));
        await new Promise((r) => setTimeout(r, 200));
        socket.write(putRequest("cc3"));
        await new Promise((r) => setTimeout(r, 200));
        socket.destroy();
        expect((await get("cc1")).Item).to.deep.equal({ k: { S: "cc1" } });
        expect((await get("cc2")).Item).to.equal(undefined);
        expect((await get("cc3")).Item).to.equal(undefined);
      });

      it("Connection: close is answered, then the connection ended", async () => {
        const closing = await raw([putRequest("cl", "connection: close\r\n")], 1);
        expect([closing.answers[0]?.status, closing.closed]).to.deep.equal([200, true]);
        expect(closing.answers[0]!.head).to.match(/\r\nconnection: close(\r\n|$)/i);
        expect((await get("cl")).Item).to.deep.equal({ k: { S: "cl" } });
      });
    });

    it("sends x-amz-crc32, the CRC32 of the body's bytes, on answers and errors (Go's SDK checks it on every call)", async () => {
      await f.client.send(new CreateTableCommand({ TableName: "crc", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
      await f.client.send(new PutItemCommand({ TableName: "crc", Item: { k: { S: "ключ 🔑" }, v: { S: "värde" } } }));
      for (const [target, body, status] of [
        ["DynamoDB_20120810.GetItem", '{"TableName":"crc","Key":{"k":{"S":"ключ 🔑"}}}', 200],
        ["DynamoDB_20120810.GetItem", '{"TableName":"nope","Key":{"k":{"S":"x"}}}', 400],
      ] as const) {
        const res = await post(f.endpoint, target, body);
        const bytes = Buffer.from(await res.arrayBuffer());
        expect(res.status).to.equal(status);
        expect(res.headers.get("x-amz-crc32")).to.equal(String(crc32(bytes)));
      }
    });

    it("refuses a parameter it does not know, and the table options it does not serve, by name; accepts the no-op ones", async () => {
      const create = (extra: Record<string, unknown>, name = "params") => JSON.stringify({ TableName: name, AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST", ...extra });
      const refused: [string, string, RegExp][] = [
        ["GetItem", '{"TableName":"params","Key":{"k":{"S":"a"}},"Frobnicate":1}', /^Frobnicate is not a parameter of GetItem/],
        ["PutItem", '{"TableName":"params","Item":{"k":{"S":"a"}},"ReturnConsumedCapacity":"ALL"}', /returnConsumedCapacity/],
        ["PutItem", '{"TableName":"params","Item":{"k":{"S":"a"}},"ReturnItemCollectionMetrics":"ALL"}', /returnItemCollectionMetrics/],
        ["BatchGetItem", '{"RequestItems":{"params":{"Keys":[{"k":{"S":"a"}}],"Frobnicate":true}}}', /RequestItems\.params\.Frobnicate is not a parameter/],
        ["CreateTable", create({ Tags: [{ Key: "a", Value: "b" }] }), /^Tags is not supported/],
        ["CreateTable", create({ DeletionProtectionEnabled: true }), /^DeletionProtectionEnabled is not supported/],
        ["CreateTable", create({ SSESpecification: { Enabled: true, SSEType: "KMS" } }), /^SSESpecification is not supported/],
        ["CreateTable", create({ ResourcePolicy: "{}" }), /^ResourcePolicy is not supported/],
        ["CreateTable", create({ StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" } }), /^StreamSpecification is not supported/],
        ["UpdateTable", '{"TableName":"params","MultiRegionConsistency":"STRONG"}', /^MultiRegionConsistency is not supported/],
      ];
      expect((await post(f.endpoint, "DynamoDB_20120810.CreateTable", create({ TableClass: "STANDARD", DeletionProtectionEnabled: false, SSESpecification: { Enabled: false } }))).status).to.equal(200);
      for (const [op, body, message] of refused) {
        const r = await post(f.endpoint, `DynamoDB_20120810.${op}`, body);
        const json = (await r.json()) as { __type: string; message: string };
        expect([r.status, json.__type], body).to.deep.equal([400, "com.amazonaws.dynamodb.v20120810#ValidationException"]);
        expect(json.message, body).to.match(message);
      }
      // Nothing was written by the refused PutItems; ReturnConsumedCapacity and ReturnItemCollectionMetrics are accepted (no figures).
      expect(await (await post(f.endpoint, "DynamoDB_20120810.GetItem", '{"TableName":"params","Key":{"k":{"S":"a"}}}')).json()).to.deep.equal({});
      const ok = await post(f.endpoint, "DynamoDB_20120810.PutItem", '{"TableName":"params","Item":{"k":{"S":"a"}},"ReturnConsumedCapacity":"TOTAL","ReturnItemCollectionMetrics":"SIZE"}');
      expect(ok.status).to.equal(200);
    });
  });

  describe("SigV4", () => {
    it("with credentials configured, accepts requests signed with them and refuses others with DynamoDB's errors", async () => {
      const f = await startFront("memory:", { DECANT_DYNAMODB_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, DECANT_DYNAMODB_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey });
      try {
        await f.client.send(new CreateTableCommand({ TableName: "signed", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
        await f.client.send(new PutItemCommand({ TableName: "signed", Item: { k: { S: "ü/x" }, v: { S: "x".repeat(5000) } } }));
        expect((await f.client.send(new GetItemCommand({ TableName: "signed", Key: { k: { S: "ü/x" } } }))).Item?.k).to.deep.equal({ S: "ü/x" });
        const wrongSecret = sdkClient(f.endpoint, { credentials: { ...CREDENTIALS, secretAccessKey: "nope" } });
        expect((await rejection(wrongSecret.send(new GetItemCommand({ TableName: "signed", Key: { k: { S: "a" } } })))).name).to.equal("InvalidSignatureException");
        const wrongKey = sdkClient(f.endpoint, { credentials: { ...CREDENTIALS, accessKeyId: "AKIDOTHER" } });
        expect((await rejection(wrongKey.send(new GetItemCommand({ TableName: "signed", Key: { k: { S: "a" } } })))).name).to.equal("UnrecognizedClientException");
        const unsigned = await post(f.endpoint, "DynamoDB_20120810.ListTables", "{}");
        expect(unsigned.status).to.equal(400);
        expect(((await unsigned.json()) as { __type: string }).__type).to.match(/MissingAuthenticationTokenException$/);
        wrongSecret.destroy();
        wrongKey.destroy();
      } finally {
        await f.stop();
      }
    });
  });

  describe("SigV4 times and payloads", () => {
    let f: Awaited<ReturnType<typeof startFront>>;
    before(async () => {
      f = await startFront("memory:", { DECANT_DYNAMODB_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, DECANT_DYNAMODB_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey });
      await f.client.send(new CreateTableCommand({ TableName: "timed", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
    });
    after(async () => f?.stop());

    it("refuses a signature more than 5 minutes off as DynamoDB does (message and Date header), by which SDKs correct their clock", async () => {
      for (const [offset, words] of [
        [-6 * 60_000, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/],
        [6 * 60_000, /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 5 min\.\)$/],
      ] as const) {
        const once = new DynamoDBClient({ endpoint: f.endpoint, region: "us-east-1", credentials: CREDENTIALS, maxAttempts: 1, systemClockOffset: offset });
        const err = (await rejection(once.send(new GetItemCommand({ TableName: "timed", Key: { k: { S: "a" } } })))) as Error & { $response?: { headers: Record<string, string> } };
        expect(err.name).to.equal("InvalidSignatureException");
        expect(err.message).to.match(words);
        expect(Math.abs(Date.parse(err.$response!.headers.date!) - Date.now())).to.be.below(5000);
        // The SDK took the server's time from that Date header: its next call is signed right.
        expect((await once.send(new GetItemCommand({ TableName: "timed", Key: { k: { S: "a" } } }))).Item).to.equal(undefined);
        once.destroy();
      }
      // Within 5 minutes: accepted.
      const near = new DynamoDBClient({ endpoint: f.endpoint, region: "us-east-1", credentials: CREDENTIALS, maxAttempts: 1, systemClockOffset: -4 * 60_000 });
      await near.send(new GetItemCommand({ TableName: "timed", Key: { k: { S: "a" } } }));
      near.destroy();
    });

    it("refuses a body other than the one the signed x-amz-content-sha256 names (a captured signature carries no other body)", async () => {
      const c = new DynamoDBClient({ endpoint: f.endpoint, region: "us-east-1", credentials: CREDENTIALS, maxAttempts: 1 });
      // After signing, before sending: the body swapped for another of the same length.
      c.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { body: string };
          request.body = request.body.replace('"S":"good"', '"S":"evil"');
          return next(args);
        },
        { step: "deserialize", priority: "low" },
      );
      const err = await rejection(c.send(new PutItemCommand({ TableName: "timed", Item: { k: { S: "good" } } })));
      expect([err.name, err.message]).to.deep.equal(["InvalidSignatureException", "The provided x-amz-content-sha256 header does not match what was computed."]);
      expect((await f.client.send(new GetItemCommand({ TableName: "timed", Key: { k: { S: "evil" } } }))).Item).to.equal(undefined);
      c.destroy();
    });
  });

  describe("store errors", () => {
    it("maps the kinds that wrote nothing and may succeed later (fenced, cancelled, unavailable) to a 503 SDKs retry; a bug to a 500", () => {
      for (const kind of ["unavailable", "deadline_exceeded", "failed_precondition", "fenced", "cancelled"] as const) {
        const e = fromStoreError(new DecantError(kind, "x"));
        expect([e.status, e.type, isRetryable(new DecantError(kind, "x"))], kind).to.deep.equal([503, "ServiceUnavailable", true]);
      }
      expect(fromStoreError(new DecantError("invalid_argument", "bad")).type).to.equal("ValidationException");
      expect(fromStoreError(new Error("bug")).status).to.equal(500);
    });

    it("20 000 pipelined requests refused at once (no X-Amz-Target), queued behind one waiting on the store, are each answered: no call stack per request, no overflow", async () => {
      const { front, hold, close } = await frontWithHeldReads("deep");
      try {
        const request = (target: string, body: string) => `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.0\r\n${target}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        let all = request("x-amz-target: DynamoDB_20120810.GetItem\r\n", JSON.stringify({ TableName: "deep", Key: { k: { S: "a" } } }));
        for (let i = 0; i < 20_000; i++) all += request("", "{}");
        const release = hold();
        const socket = connect(front.port, "127.0.0.1");
        let count = 0;
        let tail = "";
        socket.setEncoding("latin1");
        socket.on("data", (d: string) => {
          const t = tail + d;
          count += t.split("HTTP/1.1 ").length - 1;
          tail = t.slice(-8);
        });
        socket.on("error", () => undefined);
        await new Promise((r) => socket.once("connect", r));
        socket.write(all);
        await new Promise((r) => setTimeout(r, 300)); // the rest arrives, buffered, while the first waits on the store
        release();
        for (let t = 0; t < 200 && count < 20_001 && !socket.destroyed; t++) await new Promise((r) => setTimeout(r, 25));
        socket.destroy();
        expect(count).to.equal(20_001);
      } finally {
        await close();
      }
    });

    it("a client gone before its answer cancels the store work not yet started; its connection's next requests were unaffected", async () => {
      const { front, endpoint, hold, close } = await frontWithHeldReads("gone");
      try {
        // Answered requests on one keep-alive connection leave its signal untouched.
        const put = (k: string) => JSON.stringify({ TableName: "gone", Item: { k: { S: k } }, ConditionExpression: "attribute_not_exists(k)" });
        for (const k of ["a", "b"]) expect((await post(endpoint, "DynamoDB_20120810.PutItem", put(k))).status).to.equal(200);
        // A conditional put reads first (held here), then writes: the client leaves during the read.
        const release = hold();
        const socket = connect(front.port, "127.0.0.1");
        await new Promise((r) => socket.once("connect", r));
        const body = put("c");
        socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: DynamoDB_20120810.PutItem\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        await new Promise((r) => setTimeout(r, 100));
        socket.destroy();
        await new Promise((r) => setTimeout(r, 100));
        release();
        await new Promise((r) => setTimeout(r, 100));
        const got = await post(endpoint, "DynamoDB_20120810.GetItem", JSON.stringify({ TableName: "gone", Key: { k: { S: "c" } } }));
        expect(await got.json()).to.deep.equal({});
        expect(await (await post(endpoint, "DynamoDB_20120810.GetItem", JSON.stringify({ TableName: "gone", Key: { k: { S: "b" } } }))).json()).to.deep.equal({ Item: { k: { S: "b" } } });
      } finally {
        await close();
      }
    });
  });

  describe("config", () => {
    const load = (env: Record<string, string>) => loadConfig(undefined, { DECANT_CURRENT: "memory:", ...env });
    it("dynamodb_listen is off by default, validated as host:port; credentials need both halves", () => {
      expect(load({}).dynamodbListen).to.equal(undefined);
      expect(load({ DECANT_DYNAMODB_LISTEN: "127.0.0.1:8000" }).dynamodbListen).to.equal("127.0.0.1:8000");
      expect(() => load({ DECANT_DYNAMODB_LISTEN: "8000" })).to.throw(ConfigError, /^dynamodb_listen:/);
      expect(() => load({ DECANT_DYNAMODB_ACCESS_KEY_ID: "AKID" })).to.throw(ConfigError, /dynamodb.secret_access_key_file/);
      expect(() => load({ DECANT_DYNAMODB_SECRET_ACCESS_KEY: "s" })).to.throw(ConfigError, /dynamodb.access_key_id/);
      expect(load({ DECANT_DYNAMODB_ACCESS_KEY_ID: "AKID", DECANT_DYNAMODB_SECRET_ACCESS_KEY: "s" }).dynamodbAuth).to.deep.equal({ accessKeyId: "AKID", secretAccessKey: "s" });
    });
  });
});

const redisUp = await serverUp.redis();

if (redisUp) {
  describe("DynamoDB front: the store goes away (Redis behind a proxy that is cut)", function () {
    this.timeout(60_000);
    it("answers 503 (which SDKs retry), and batches hand back UnprocessedKeys/UnprocessedItems", async () => {
      const target = new URL(TEST_URLS.redis);
      const sockets = new Set<Socket>();
      let open = true;
      const proxy: Server = createServer((client) => {
        if (!open) return client.destroy();
        const upstream = connect(Number(target.port || 6379), target.hostname);
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
      });
      await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
      const url = new URL(TEST_URLS.redis);
      url.host = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
      url.searchParams.set("prefix", `ddbout${Date.now()}`);
      url.searchParams.set("timeout_ms", "300");
      const store = await openStore(url.href);
      const front = await startDynamoFront({ listen: "127.0.0.1:0", store, logger: silentLogger(), maxValueBytes: 400 * 1024 });
      const client = sdkClient(`http://127.0.0.1:${front.port}`, { maxAttempts: 1 });
      try {
        await client.send(new CreateTableCommand({ TableName: "outage", AttributeDefinitions: [{ AttributeName: "k", AttributeType: "S" }], KeySchema: [{ AttributeName: "k", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
        await client.send(new PutItemCommand({ TableName: "outage", Item: { k: { S: "a" } } }));
        open = false;
        for (const s of sockets) s.destroy();
        const get = await rejection(client.send(new GetItemCommand({ TableName: "outage", Key: { k: { S: "a" } } })));
        expect(get.$metadata?.httpStatusCode).to.equal(503);
        // The catalog entry is cached for a moment; batches go to the store and hand the work back.
        const bw = await client.send(new BatchWriteItemCommand({ RequestItems: { outage: [{ PutRequest: { Item: { k: { S: "b" } } } }] } })).catch((e: Error & { $metadata?: { httpStatusCode?: number } }) => e);
        if (bw instanceof Error) expect(bw.$metadata?.httpStatusCode).to.equal(503);
        else expect(bw.UnprocessedItems?.outage).to.have.length(1);
        const bg = await client.send(new BatchGetItemCommand({ RequestItems: { outage: { Keys: [{ k: { S: "a" } }] } } })).catch((e: Error & { $metadata?: { httpStatusCode?: number } }) => e);
        if (bg instanceof Error) expect(bg.$metadata?.httpStatusCode).to.equal(503);
        else expect(bg.UnprocessedKeys?.outage?.Keys).to.deep.equal([{ k: { S: "a" } }]);
      } finally {
        client.destroy();
        await front.close();
        await store.close().catch(() => undefined);
        proxy.close();
      }
    });
  });
}
