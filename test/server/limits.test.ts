// The gRPC listener's bounds, from outside: the receive limit sized from max_value_bytes and the
// batch limits (and a real `decant serve` process's memory while oversize requests arrive), and
// connections that never speak, idle, ignore pings, or come one over the cap.
import { expect } from "chai";
import { connect, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { DecantClient } from "../../src/client/client.js";
import { maxRequestBytes } from "../../src/protocol/validate.js";
import { MAX_BATCH, MAX_KEY_BYTES } from "../../src/protocol/types.js";
import { freshNamespace } from "../support/names.js";
import { grpcError } from "../support/errors.js";
import { killAllSidecars, startSidecarProcess } from "../support/processes.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;

/** The client preface and an empty SETTINGS frame: what an HTTP/2 client sends first. */
const PREFACE = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from("000000040000000000", "hex")]);
const FRAME = { PING: 6, GOAWAY: 7 };

interface RawConnection {
  socket: Socket;
  /** Resolves when the server closes the connection: how long after connecting, and the HTTP/2 frame types it sent. */
  closed: Promise<{ afterMs: number; frames: number[] }>;
}

async function rawConnection(port: number, send?: Buffer): Promise<RawConnection> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const start = Date.now();
  const chunks: Buffer[] = [];
  socket.on("data", (d: Buffer) => chunks.push(d));
  socket.on("error", () => undefined);
  if (send) socket.write(send);
  const closed = new Promise<{ afterMs: number; frames: number[] }>((resolve) => socket.once("close", () => resolve({ afterMs: Date.now() - start, frames: frameTypes(Buffer.concat(chunks)) })));
  return { socket, closed };
}

/** Connects until the server answers a connection with its SETTINGS, i.e. grpc-js took it. */
async function acceptedConnection(port: number): Promise<RawConnection> {
  for (;;) {
    const c = await rawConnection(port, PREFACE);
    const answered = await Promise.race([new Promise<boolean>((resolve) => c.socket.once("data", () => resolve(true))), c.closed.then(() => false)]);
    if (answered) return c;
  }
}

function frameTypes(data: Buffer): number[] {
  const types: number[] = [];
  for (let at = 0; at + 9 <= data.length; at += 9 + data.readUIntBE(at, 3)) types.push(data[at + 3]!);
  return types;
}

/** Fails unless `p` settles within `ms` (a bound on a condition, not a sleep). */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function rawPut(address: string, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise<grpc.ServiceError | null>((resolve) =>
    client.makeUnaryRequest("/decant.v1.Store/Put", (b: Buffer) => b, (b: Buffer) => b, bytes, { deadline: Date.now() + 60_000 }, (err) => resolve(err)),
  ).finally(() => client.close());
}

/** A PutRequest carrying `valueBytes` of value, encoded by hand. */
function putOf(ns: string, valueBytes: number): Buffer {
  const lengthOf = (n: number) => {
    const out: number[] = [];
    for (; n > 127; n = Math.floor(n / 128)) out.push((n % 128) | 128);
    return Buffer.from([...out, n]);
  };
  return Buffer.concat([Buffer.from([0x0a]), lengthOf(ns.length), Buffer.from(ns), Buffer.from([0x12, 1, 0x6b, 0x1a]), lengthOf(valueBytes), Buffer.alloc(valueBytes, 0x61)]);
}

describe("listener bounds", function () {
  describe("the receive limit follows max_value_bytes and max_batch_bytes", function () {
    let s: Running;
    const maxValueBytes = 4096;
    const maxBatchBytes = MAX_BATCH * (MAX_KEY_BYTES + maxValueBytes);
    before(async () => {
      s = await startTestSidecar({ DECANT_MAX_VALUE_BYTES: String(maxValueBytes), DECANT_MAX_BATCH_BYTES: String(maxBatchBytes) });
    });
    after(async () => s?.stop());

    it("a request one byte over the limit is RESOURCE_EXHAUSTED, unread", async function () {
      const limit = maxRequestBytes({ maxValueBytes, maxBatchBytes });
      const ns = freshNamespace();
      const bytes = putOf(ns, limit);
      expect(bytes.length).to.be.greaterThan(limit);
      const err = await rawPut(`127.0.0.1:${s.sidecar.grpcPort}`, bytes);
      expect(err?.code, err?.details).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(err!.details).to.include(`vs ${limit}`);
      expect((await s.client.get(ns, "k")).found).to.equal(false);
    });

    it("the largest BatchWrite the limits allow fits: MAX_BATCH writes of the longest key and value, with conditions", async function () {
      const ns = freshNamespace();
      const writes = Array.from({ length: MAX_BATCH }, (_, i) => ({ put: { key: String(i).padStart(MAX_KEY_BYTES, "k"), value: Buffer.alloc(maxValueBytes, i % 256), condition: { must_not_exist: true } } }));
      const r = await s.client.call("store", "BatchWrite", { namespace: ns, writes });
      expect(r.results.filter((x: { code: number }) => x.code === 0)).to.have.length(MAX_BATCH);
    });

    it("a BatchWrite over max_batch_bytes that fits the receive limit is INVALID_ARGUMENT, nothing written", async function () {
      const small = await startTestSidecar({ DECANT_MAX_VALUE_BYTES: "1024", DECANT_MAX_BATCH_BYTES: "2048" });
      try {
        const ns = freshNamespace();
        const writes = ["a", "b", "c"].map((key) => ({ put: { key, value: Buffer.alloc(1000) } }));
        const err = await grpcError(small.client.call("store", "BatchWrite", { namespace: ns, writes }));
        expect(err.code, err.details).to.equal(grpc.status.INVALID_ARGUMENT);
        expect(err.details).to.match(/^writes: carry 3003 bytes of keys and values; at most 2048/);
        expect((await small.client.scan(ns)).items).to.deep.equal([]);
      } finally {
        await small.stop();
      }
    });
  });

  describe("a real decant serve process and 60 MB requests", function () {
    after(killAllSidecars);

    it("refuses them with RESOURCE_EXHAUSTED without holding them in memory", async function () {
      this.timeout(120_000);
      const p = await startSidecarProcess({ DECANT_CURRENT: "memory:" });
      try {
        const address = `127.0.0.1:${p.port}`;
        const ns = freshNamespace();
        for (let i = 0; i < 20; i++) await p.client.put(ns, `warm-${i}`, Buffer.alloc(1024));
        const before = p.peakRssKb()!;
        const bytes = putOf(ns, 60 * 1000 * 1000);
        const errors = await Promise.all(Array.from({ length: 4 }, () => rawPut(address, bytes)));
        for (const err of errors) expect(err?.code, err?.details).to.equal(grpc.status.RESOURCE_EXHAUSTED);
        const grownMb = (p.peakRssKb()! - before) / 1024;
        console.log(`      peak RSS ${Math.round(before / 1024)} MB before, grew by ${grownMb.toFixed(1)} MB for four 60 MB Puts`);
        expect(grownMb).to.be.lessThan(40);
        expect((await p.client.get(ns, "warm-0")).found).to.equal(true);
      } finally {
        await p.stop();
      }
    });
  });

  describe("connections that never send the preface, idle, or ignore pings", function () {
    let s: Running;
    before(async () => {
      s = await startTestSidecar({ DECANT_PREFACE_TIMEOUT_MS: "300", DECANT_IDLE_TIMEOUT_MS: "1000", DECANT_KEEPALIVE_TIME_MS: "60000" });
    });
    after(async () => s?.stop());

    it("a TCP connection that sends nothing is closed after the preface timeout", async function () {
      const conns = await Promise.all(Array.from({ length: 20 }, () => rawConnection(s.sidecar.grpcPort)));
      const half = await rawConnection(s.sidecar.grpcPort, PREFACE.subarray(0, 10));
      for (const { closed } of [...conns, half]) expect((await within(5000, closed, "closed")).afterMs).to.be.at.least(250);
      expect((await s.client.put(freshNamespace(), "k", Buffer.from("v"))).version).to.equal("1");
    });

    it("one that sent the preface is kept past it, then closed with GOAWAY once idle", async function () {
      const { closed } = await rawConnection(s.sidecar.grpcPort, PREFACE);
      const { afterMs, frames } = await within(8000, closed, "closed");
      expect(afterMs).to.be.at.least(900);
      expect(frames).to.include(FRAME.GOAWAY);
    });

    it("one that does not answer the server's keepalive ping is closed", async function () {
      const k = await startTestSidecar({ DECANT_IDLE_TIMEOUT_MS: "60000", DECANT_KEEPALIVE_TIME_MS: "1000", DECANT_KEEPALIVE_TIMEOUT_MS: "300" });
      try {
        const { closed } = await rawConnection(k.sidecar.grpcPort, PREFACE);
        const { afterMs, frames } = await within(8000, closed, "closed");
        expect(frames).to.include(FRAME.PING);
        expect(afterMs).to.be.at.least(1200);
      } finally {
        await k.stop();
      }
    });
  });

  describe("the listening sockets (the sidecar's own, handed to grpc-js)", function () {
    it("a port already in use fails the start, naming the address", async function () {
      const s = await startTestSidecar();
      try {
        const err = await startTestSidecar({ DECANT_LISTEN: `127.0.0.1:${s.sidecar.grpcPort}` }).then(
          (other) => other.stop().then(() => null),
          (e: Error) => e,
        );
        expect(err?.message).to.match(new RegExp(`^listen: cannot bind 127\\.0\\.0\\.1:${s.sidecar.grpcPort}: .*EADDRINUSE`));
      } finally {
        await s.stop();
      }
    });

    it("localhost serves on 127.0.0.1", async function () {
      const s = await startTestSidecar({ DECANT_LISTEN: "localhost:0" });
      const c = new DecantClient(`127.0.0.1:${s.sidecar.grpcPort}`);
      try {
        expect((await c.put(freshNamespace(), "k", Buffer.from("v"))).version).to.equal("1");
      } finally {
        c.close();
        await s.stop();
      }
    });
  });

  describe("the connection cap", function () {
    let s: Running;
    before(async () => {
      s = await startTestSidecar({ DECANT_MAX_CONNECTIONS: "3" });
    });
    after(async () => s?.stop());

    it("closes the connection one over connections.max at once, and accepts again when one closes", async function () {
      const held = await Promise.all(Array.from({ length: 3 }, () => rawConnection(s.sidecar.grpcPort, PREFACE)));
      const over = await rawConnection(s.sidecar.grpcPort, PREFACE);
      const { frames } = await within(2000, over.closed, "closed");
      expect(frames, "no HTTP/2 session for it").to.deep.equal([]);
      held[0]!.socket.destroy();
      await held[0]!.closed;
      // The server sees that close on its own time: retry until a connection gets its SETTINGS.
      const accepted = await within(5000, acceptedConnection(s.sidecar.grpcPort), "a connection accepted");
      for (const c of [...held, accepted]) c.socket.destroy();
    });
  });
});
