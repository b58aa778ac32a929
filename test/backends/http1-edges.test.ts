// The edges of src/backends/http1.ts (from its review): every framing split at every byte boundary (and one
// byte per read) from a raw TCP server, keep-alive sockets the server closes, bytes after an
// answer, TLS name checks/SNI/ALPN, the 64-socket cap and FIFO order, leaks after many requests,
// the deadline sweep of DynamoHttp, big bodies.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createNetServer, type Socket, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { expect } from "chai";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoHttp } from "../../src/backends/dynamodb-http.js";
import { Http1Pool } from "../../src/backends/http1.js";
import { post, rawServer } from "../support/raw-http.js";

const outcome = <T>(p: Promise<T>) => p.then((v) => ({ ok: v }), (e: unknown) => ({ err: e as { code?: string; message?: string } }));
const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writes `parts` one per event-loop turn, so the client reads each on its own (loopback, no delay). */
async function inParts(socket: Socket, parts: Buffer[], end = false): Promise<void> {
  for (const p of parts) {
    if (socket.destroyed) return;
    socket.write(p);
    await turn();
    await turn();
  }
  if (end) socket.end();
}

const TEXT = '{"v":"é€😀","n":1}';
const FRAMINGS: { name: string; wire: string; text: string; status: number; closes: boolean }[] = [
  { name: "content-length", wire: `HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nx-amz-crc32: 1\r\nContent-Length: ${Buffer.byteLength(TEXT)}\r\n\r\n${TEXT}`, text: TEXT, status: 200, closes: false },
  { name: "100 Continue, then chunked with extensions and trailers", wire: "CHUNKED", text: TEXT, status: 400, closes: false },
  { name: "until close", wire: `HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n${TEXT}`, text: TEXT, status: 502, closes: true },
  { name: "204, HTTP/1.0 keep-alive", wire: "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n", text: "", status: 204, closes: false },
];
/** The wire bytes of a framing (the chunked one splits the body inside a UTF-8 sequence). */
function wire(f: (typeof FRAMINGS)[number]): Buffer {
  if (f.wire !== "CHUNKED") return Buffer.from(f.wire, "utf8");
  const body = Buffer.from(TEXT, "utf8");
  const l = (t: string) => Buffer.from(t, "latin1");
  return Buffer.concat([
    l("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n7;a=b\r\n"),
    body.subarray(0, 7),
    l(`\r\n${(body.length - 7).toString(16)}\r\n`),
    body.subarray(7),
    l("\r\n0;last=1\r\nX-T: 1\r\nY-T: 2\r\n\r\n"),
  ]);
}

describe("http1 pool: edges", function () {
  this.timeout(60_000);

  for (const f of FRAMINGS) {
    it(`${f.name}: split in two at every byte boundary, and one byte per read`, async () => {
      const bytes = wire(f);
      const splits = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      const s = await rawServer(async (_req, socket, n) => {
        if (n < splits.length) await inParts(socket, [bytes.subarray(0, splits[n]), bytes.subarray(splits[n])], f.closes);
        else await inParts(socket, Array.from(bytes, (_b, i) => bytes.subarray(i, i + 1)), f.closes);
      });
      const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
      let reads = 0;
      const counted = new WeakSet<Socket>();
      const count = () => {
        for (const c of (pool as unknown as { conns: Set<{ socket: Socket }> }).conns)
          if (!counted.has(c.socket)) (counted.add(c.socket), c.socket.on("data", () => reads++));
      };
      try {
        for (let i = 0; i <= splits.length; i++) {
          const pending = post(pool);
          count();
          if (i === splits.length) reads = 0;
          const r = await pending;
          expect(r.status, `split ${i}`).to.equal(f.status);
          expect(r.text, `split ${i}`).to.equal(f.text);
        }
        expect(s.connections()).to.equal(f.closes ? splits.length + 1 : 1);
        expect(reads, "reads of the byte-by-byte answer").to.be.greaterThan(bytes.length * 0.9);
      } finally {
        pool.destroy();
        await s.stop();
      }
    });
  }

  it("an answer followed by stray bytes in the same read is delivered (the connection dropped), as node:http does", async () => {
    const s = await rawServer((_req, socket) => void socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}\r\n"));
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const r = await outcome(post(pool));
      expect(r, "a whole 200 answer (the write executed) is reported as a failure").to.have.property("ok");
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("a server that closes after its answer without Connection: close: the next request fails only as ECONNRESET/EPIPE (inherent; node:http fails ~50% too)", async () => {
    const s = await rawServer((_req, socket) => void socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
    const pool = new Http1Pool({ url: s.url, maxSockets: 4 });
    try {
      const codes: (string | undefined)[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await Promise.race([outcome(post(pool)), sleep(3000).then(() => ({ err: { code: "HANG" } }))]);
        if ("err" in r) codes.push(r.err.code);
      }
      console.log(`      failed ${codes.length}/40 on a connection the server had closed`);
      // Only a code the retry rules read as "may have executed" (UpdateItem is then not retried).
      for (const c of codes) expect(c).to.be.oneOf(["ECONNRESET", "EPIPE"]);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("idle connections the server closes (FIN, RST) are dropped; a request never hangs and never reuses them", async () => {
    const s = await rawServer((_req, socket, n) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
      setTimeout(() => (n % 2 ? socket.resetAndDestroy() : socket.end()), 30);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 2 });
    try {
      for (let i = 0; i < 10; i++) {
        expect((await post(pool)).text).to.equal("{}");
        await sleep(80);
      }
      expect(s.connections()).to.equal(10);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("a request written as the server closes its idle connection fails with ECONNRESET/EPIPE (never hangs), at many offsets", async () => {
    const s = await rawServer((_req, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
      setTimeout(() => socket.destroy(), 20);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    const codes: Record<string, number> = {};
    try {
      for (let i = 0; i < 60; i++) {
        await outcome(post(pool)); // may meet the previous round's close
        await sleep(17 + (i % 6)); // around the server's close
        const r = await Promise.race([outcome(post(pool)), sleep(3000).then(() => ({ err: { code: "HANG" } }))]);
        const code = "err" in r ? String(r.err.code) : "ok";
        codes[code] = (codes[code] ?? 0) + 1;
      }
      console.log("      outcomes:", codes);
      for (const c of Object.keys(codes)) expect(c).to.be.oneOf(["ok", "ECONNRESET", "EPIPE"]);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("64-socket cap, FIFO queue, everything answered, nothing left behind (listeners, sockets) after many requests", async () => {
    const order: number[] = [];
    const s = await rawServer(async (req, socket) => {
      order.push(Number(/"i":(\d+)/.exec(req)![1]));
      await sleep(5);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}`);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 64 });
    try {
      for (let round = 0; round < 5; round++) {
        const all = Array.from({ length: 400 }, (_, i) => post(pool, `{"i":${i}}`));
        expect((await Promise.all(all)).every((r) => r.text === "{}")).to.equal(true);
      }
      expect(s.connections()).to.equal(64);
      // The queue is served in order: no request reaches the server far from its turn (64 sockets
      // deliver in any order among themselves, so the bound is two socket-counts). Not the first
      // round: its first 64 requests each wait for a new socket's connect, which completes in
      // whatever order the kernel and the server accept them (one came 136 places late in a CI
      // run on a quiet machine), so that round says nothing about the queue.
      for (let round = 1; round < 5; round++) order.slice(round * 400, round * 400 + 400).forEach((v, at) => expect(Math.abs(v - at), `request ${v}`).to.be.lessThan(128));
      const p = pool as unknown as { idle: { socket: Socket }[]; queue: unknown[]; conns: Set<{ socket: Socket }>; open: number };
      expect(p.queue.length).to.equal(0);
      expect(p.open).to.equal(64);
      expect(p.idle.length).to.equal(64);
      for (const c of p.conns) for (const ev of ["data", "error", "end", "close"]) expect(c.socket.listenerCount(ev), ev).to.be.at.most(2);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("16 MB bodies both ways, to a server that reads slowly", async () => {
    const big = JSON.stringify({ x: "é".repeat(4 * 1024 * 1024) + "a".repeat(8 * 1024 * 1024) });
    const s = await rawServer((req, socket) => {
      const body = req.slice(req.indexOf("\r\n\r\n") + 4);
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
      socket.write(body);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 2 });
    try {
      const rs = await Promise.all([post(pool, big), post(pool, big), post(pool, big)]);
      for (const r of rs) expect(r.text.length).to.equal(big.length);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("an answer that comes before its request has left whole: the connection carries the next request once it has", async () => {
    // The server answers the first request on its first bytes, then stops reading for a while: the
    // 16 MB body is still being written when the answer is read.
    const big = "a".repeat(16 * 1024 * 1024);
    let received = 0;
    let connections = 0;
    const server = createNetServer((socket) => {
      connections++;
      socket.on("error", () => undefined);
      let answered = 0;
      let firstEnd = 0; // the first request's length, head and body
      let tail = "";
      socket.on("data", (d: Buffer) => {
        received += d.length;
        if (answered === 0) {
          answered = 1;
          const head = d.toString("latin1", 0, d.indexOf("\r\n\r\n") + 4);
          firstEnd = head.length + Number(/content-length: (\d+)/i.exec(head)![1]);
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
          socket.pause();
          setTimeout(() => socket.resume(), 200);
        }
        tail = (tail + d.toString("latin1", Math.max(0, d.length - 2))).slice(-2);
        // The first request whole, then the second one's ("{}"): answer that.
        if (answered === 1 && received > firstEnd && tail === "{}") {
          answered = 2;
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const pool = new Http1Pool({ url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), maxSockets: 1 });
    try {
      const first = post(pool, big).then((r) => ({ text: r.text, receivedThen: received }));
      const second = post(pool, "{}");
      const a = await first;
      expect(a.text).to.equal("early");
      expect(a.receivedThen).to.be.below(big.length); // answered before the request had left
      expect((await second).text).to.equal("second");
      expect(connections).to.equal(1);
    } finally {
      pool.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("a large single chunk read in 16 KB pieces: linear, not quadratic", async () => {
    const size = 8 * 1024 * 1024;
    const s = await rawServer(async (_req, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${size.toString(16)}\r\n`);
      const piece = Buffer.alloc(16 * 1024, 97);
      for (let i = 0; i < size / piece.length; i++) {
        if (!socket.write(piece)) await new Promise((r) => socket.once("drain", r));
        if (i % 8 === 0) await turn();
      }
      socket.write("\r\n0\r\n\r\n");
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const t0 = process.cpuUsage();
      const r = await post(pool);
      const cpu = process.cpuUsage(t0);
      expect(r.text.length).to.equal(size);
      // Re-joining the unfinished chunk per read took ~560 ms here, reading it once ~20 ms.
      expect((cpu.user + cpu.system) / 1000, "ms of CPU for an 8 MB chunked answer").to.be.lessThan(250);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("conflicting duplicate Content-Length is refused (as node:http does), not the last one taken", async () => {
    const s = await rawServer((_req, socket) => void socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\n{}{}"));
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const r = await outcome(post(pool));
      expect(r).to.have.property("err");
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  describe("TLS", () => {
    let dir: string;
    let ca: { key: Buffer; cert: Buffer };
    const leaf = (name: string, san: string) => {
      execFileSync("openssl", ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], { cwd: dir, stdio: "ignore" });
      execFileSync("sh", ["-c", `printf 'subjectAltName=${san}\\n' > ${name}.ext && openssl x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out ${name}.crt -extfile ${name}.ext`], { cwd: dir, stdio: "ignore" });
      return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) };
    };
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "review3-tls-"));
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=review CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"], { cwd: dir, stdio: "ignore" });
      ca = { key: readFileSync(join(dir, "ca.key")), cert: readFileSync(join(dir, "ca.crt")) };
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    async function tlsServer(cert: { key: Buffer; cert: Buffer }, alpn?: string[]) {
      const seen: { servername?: unknown; alpn?: unknown }[] = [];
      const server = createTlsServer({ ...cert, ALPNProtocols: alpn }, (socket: TLSSocket) => {
        seen.push({ servername: (socket as unknown as { servername?: string | false }).servername, alpn: socket.alpnProtocol });
        socket.on("error", () => undefined);
        socket.on("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
      });
      server.on("tlsClientError", () => undefined);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return { server, port: (server.address() as AddressInfo).port, seen };
    }

    it("verifies the host name against a trusted CA's certificate; sends SNI; ALPN http/1.1 or none", async () => {
      const good = leaf("localhost", "DNS:localhost");
      const other = leaf("other", "DNS:other.example");
      const a = await tlsServer(good, ["h2", "http/1.1"]);
      const b = await tlsServer(other);
      const c = await tlsServer(good, ["h2"]);
      const pools: Http1Pool[] = [];
      const mk = (url: string) => (pools.push(new Http1Pool({ url: new URL(url), maxSockets: 1, tls: { ca: ca.cert } })), pools.at(-1)!);
      try {
        expect((await post(mk(`https://localhost:${a.port}/`))).text).to.equal("{}");
        expect(a.seen[0]).to.deep.equal({ servername: "localhost", alpn: "http/1.1" });
        const byIp = await outcome(post(mk(`https://127.0.0.1:${a.port}/`)));
        expect(byIp, "a cert for localhost is not one for 127.0.0.1").to.have.property("err");
        const wrongName = await outcome(post(mk(`https://localhost:${b.port}/`)));
        expect(wrongName).to.have.property("err");
        expect(String((wrongName as { err?: { code?: string } }).err?.code)).to.match(/ALTNAME/);
        const h2only = await Promise.race([outcome(post(mk(`https://localhost:${c.port}/`))), sleep(3000).then(() => ({ err: { code: "HANG" } }))]);
        expect(h2only).to.have.property("err");
        expect((h2only as { err?: { code?: string } }).err?.code).to.not.equal("HANG");
      } finally {
        for (const p of pools) p.destroy();
        for (const x of [a, b, c]) await new Promise((r) => x.server.close(r));
      }
    });
  });

  it("DynamoHttp: abandoned calls in flight and queued end within ~1 s, sockets closed; after many calls nothing is tracked", async () => {
    let hold = true;
    const s = await rawServer((_req, socket) => {
      if (!hold) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    });
    const endpoint = s.url.href.replace(/\/$/, "");
    const sdk = new DynamoDBClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "x", secretAccessKey: "x" } });
    const lean = new DynamoHttp({ sdk, endpoint, maxSockets: 2 });
    const inner = lean as unknown as { inflight: Map<unknown, unknown>; sweeper?: unknown; pool?: { queue: unknown[]; conns: Set<unknown> } };
    try {
      const deadlines = Array.from({ length: 5 }, () => ({ expired: false }));
      const calls = deadlines.map((d) => outcome(lean.call("GetItem", { TableName: "t", Key: { k: { S: "a" } } }, d)));
      await sleep(200);
      expect(inner.pool!.queue.length).to.equal(3);
      const at = Date.now();
      for (const d of deadlines) d.expired = true;
      for (const r of await Promise.all(calls)) expect((r as { err?: { name?: string } }).err?.name).to.equal("AbortError");
      expect(Date.now() - at).to.be.below(2500);
      expect(inner.inflight.size).to.equal(0);
      expect(inner.pool!.conns.size).to.equal(0);
      for (let i = 0; i < 50 && s.open() > 0; i++) await sleep(20);
      expect(s.open()).to.equal(0);
      hold = false;
      await Promise.all(Array.from({ length: 500 }, () => lean.call("GetItem", { TableName: "t", Key: { k: { S: "a" } } }, { expired: false })));
      expect(inner.inflight.size).to.equal(0);
      await sleep(1100);
      expect(inner.sweeper, "the sweep stops with nothing in flight").to.equal(undefined);
      expect(inner.pool!.conns.size).to.equal(2);
    } finally {
      lean.destroy();
      sdk.destroy();
      await s.stop();
    }
  });
});
