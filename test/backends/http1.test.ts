// The lean DynamoDB client's HTTP/1.1 pool (src/backends/http1.ts) against a raw TCP server that
// answers as scripted: framings DynamoDB and proxies use, answers split anywhere, connections
// closed under a request, and the bound on connections.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type Socket, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { expect } from "chai";
import { Http1Pool, idleLimit, type Exchange } from "../../src/backends/http1.js";
import { post, rawServer } from "../support/raw-http.js";


/** Writes `text` a few bytes at a time, as a slow network would. */
function dribble(socket: Socket, text: string, step = 3): void {
  for (let i = 0; i < text.length; i += step) socket.write(text.slice(i, i + step));
}

describe("http1 pool (the lean DynamoDB client's HTTP/1.1)", function () {
  this.timeout(10_000);

  it("reads content-length answers, split anywhere, and reuses the connection", async () => {
    const s = await rawServer((req, socket) => {
      const body = JSON.stringify({ echo: req.slice(req.indexOf("\r\n\r\n") + 4) });
      dribble(socket, `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\nDate: Sun, 06 Dec 2026 16:00:00 GMT\r\n\r\n${body}`);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 4 });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await post(pool, `{"i":${i},"ü":"é"}`);
        expect(r.status).to.equal(200);
        expect(JSON.parse(r.text)).to.deep.equal({ echo: `{"i":${i},"ü":"é"}` });
        expect(r.headers.date).to.equal("Sun, 06 Dec 2026 16:00:00 GMT");
      }
      expect(s.connections()).to.equal(1);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("does not reuse a connection past its server's Keep-Alive timeout (less a second): a request written as the server closes it would fail", async () => {
    expect([idleLimit(undefined), idleLimit("timeout=5"), idleLimit("max=100, timeout=2"), idleLimit("timeout=1"), idleLimit("timeout=600")]).to.deep.equal([30_000, 4000, 1000, 0, 30_000]);
    const s = await rawServer((_req, socket) => socket.write("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\n{}"));
    const pool = new Http1Pool({ url: s.url, maxSockets: 4 });
    try {
      await post(pool);
      await new Promise((r) => setTimeout(r, 5));
      await post(pool);
      expect(s.connections(), "the idle one was past its limit: closed, and a new one opened").to.equal(2);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("reads chunked answers with trailers, after an interim 100 answer", async () => {
    const s = await rawServer((_req, socket) => {
      dribble(socket, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n", 5);
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const r = await post(pool);
      expect(r).to.deep.include({ status: 400, text: '{"a": 1}' });
      const again = await post(pool);
      expect(again.text).to.equal('{"a": 1}');
      expect(s.connections()).to.equal(1);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("reads an answer that ends with its connection, and one that asks to close, then opens another", async () => {
    let n = 0;
    const s = await rawServer((_req, socket) => {
      if (n++ === 0) socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n\r\n<html>proxy</html>");
      else socket.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      expect(await post(pool)).to.deep.include({ status: 502, text: "<html>proxy</html>" });
      expect(await post(pool)).to.deep.include({ status: 200, text: "{}" });
      expect(await post(pool)).to.deep.include({ status: 200, text: "{}" });
      expect(s.connections()).to.equal(3);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("fails a request whose connection closes before its answer ends as ECONNRESET, and the next one gets a new connection", async () => {
    let n = 0;
    const s = await rawServer((_req, socket) => {
      if (n++ === 0) {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}");
        socket.destroy();
      } else socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    });
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const err = await post(pool).then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      expect(err?.code).to.equal("ECONNRESET");
      expect((await post(pool)).text).to.equal("{}");
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("refuses a malformed answer and drops its connection", async () => {
    const s = await rawServer((_req, socket) => void socket.write("SSH-2.0-OpenSSH\r\n\r\n"));
    const pool = new Http1Pool({ url: s.url, maxSockets: 1 });
    try {
      const err = await post(pool).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).to.match(/malformed HTTP answer/);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("opens at most maxSockets connections; the rest wait their turn, and a waiting one can be abandoned", async () => {
    const held: Socket[] = [];
    const s = await rawServer((_req, socket) => void held.push(socket));
    const pool = new Http1Pool({ url: s.url, maxSockets: 2 });
    try {
      const exchanges: Exchange[] = [];
      const replies = Array.from({ length: 5 }, () => post(pool, "{}", (x) => exchanges.push(x)).then((r) => r.text, (e: Error) => e.message));
      await new Promise((r) => setTimeout(r, 200));
      expect(s.connections()).to.equal(2);
      exchanges[4]!.fail(new Error("abandoned"));
      const answer = () => held.shift()!.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\"ok\"");
      for (let i = 0; i < 4; i++) {
        while (held.length === 0) await new Promise((r) => setTimeout(r, 10));
        answer();
      }
      expect(await Promise.all(replies)).to.deep.equal(['"ok"', '"ok"', '"ok"', '"ok"', "abandoned"]);
      expect(s.connections()).to.equal(2);
    } finally {
      pool.destroy();
      await s.stop();
    }
  });

  it("fails requests to a closed port with the socket's code", async () => {
    const s = await rawServer(() => undefined);
    const url = s.url;
    await s.stop();
    const pool = new Http1Pool({ url, maxSockets: 1 });
    try {
      const err = await post(pool).then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      expect(err?.code).to.equal("ECONNREFUSED");
    } finally {
      pool.destroy();
    }
  });
  it("speaks TLS to an https endpoint, verifying its certificate for the host name, and keeps the connection", async () => {
    const dir = mkdtempSync(join(tmpdir(), "decant-http1-"));
    try {
      const cert = (name: string) => {
        execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"], { cwd: dir, stdio: "ignore" });
        return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.crt`)) };
      };
      const server = cert("server");
      const other = cert("other");
      let connections = 0;
      const tlsServer = createTlsServer({ key: server.key, cert: server.cert }, (socket) => {
        connections++;
        socket.on("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"));
      });
      await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
      const url = new URL(`https://localhost:${(tlsServer.address() as AddressInfo).port}/`);
      const pool = new Http1Pool({ url, maxSockets: 1, tls: { ca: server.cert } });
      const stranger = new Http1Pool({ url, maxSockets: 1, tls: { ca: other.cert } });
      try {
        expect((await post(pool)).text).to.equal("{}");
        expect((await post(pool)).text).to.equal("{}");
        expect(connections).to.equal(1);
        const err = await post(stranger).then(
          () => undefined,
          (e: unknown) => e as { code?: string },
        );
        expect(err?.code).to.match(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
      } finally {
        pool.destroy();
        stranger.destroy();
        await new Promise((r) => tlsServer.close(r));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
