// The lean HTTP/1.1 path on its own: timeouts as node:http's, answers held while a client does not
// read them, and the hand-over to node:http. (The DynamoDB front's tests drive it with real SDKs.)
import { createServer as createHttpServer } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { expect } from "chai";
import { LeanServer, type LeanServerOptions } from "../../src/fronts/lean-http.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const request = (body: string) => `POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe("lean HTTP path", function () {
  this.timeout(30_000);
  let server: Server;
  let lean: LeanServer;
  let port: number;
  let handled: string[];
  const sockets: Socket[] = [];

  async function start(options: Partial<LeanServerOptions> = {}, payload = (body: string) => `echo ${body}`, delayMs = 0): Promise<void> {
    handled = [];
    const fallback = createHttpServer((req, res) => res.end("fallback"));
    fallback.emit("listening");
    lean = new LeanServer({
      fallback,
      maxBodyBytes: 1024 * 1024,
      keepAliveMs: 60_000,
      handle: (_req, body, reply) => {
        handled.push(body.toString());
        const answer = () => reply.send(200, { "content-length": Buffer.byteLength(payload(body.toString())) }, payload(body.toString()));
        if (delayMs) setTimeout(answer, delayMs);
        else answer();
      },
      ...options,
    });
    server = createServer({ allowHalfOpen: true }, (s) => lean.accept(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  }

  async function open(): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
    const socket = connect(port, "127.0.0.1");
    sockets.push(socket);
    await new Promise((r) => socket.once("connect", r));
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.on("error", () => undefined);
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    return { socket, received: () => text, closed };
  }

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    lean?.closeAll();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("cuts off a client that trickles its head past the headers timeout, or its body past the request timeout", async () => {
    await start({ headersTimeoutMs: 300, requestTimeoutMs: 600, checkEveryMs: 50 });
    const head = await open();
    for (const part of ["POST / HT", "TP/1.1\r\nho", "st: x\r\n"]) {
      head.socket.write(part);
      await sleep(150);
    }
    await head.closed; // within ~300 ms of its first byte, though bytes kept coming
    const body = await open();
    body.socket.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12");
    await sleep(400);
    expect(body.socket.destroyed, "a whole head: the request timeout applies").to.equal(false);
    await body.closed;
    expect(handled).to.deep.equal([]);
  });

  it("does not apply the keep-alive timeout to a request still arriving (node:http's headers and request timeouts do)", async () => {
    await start({ keepAliveMs: 200, headersTimeoutMs: 2000, requestTimeoutMs: 2000, checkEveryMs: 50 });
    const c = await open();
    c.socket.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n\r\nsl");
    await sleep(500);
    c.socket.write("ow");
    for (let t = 0; t < 20 && !c.received().includes("echo slow"); t++) await sleep(25);
    expect(c.received()).to.contain("echo slow");
  });

  it("does not time out a request while it is being answered, however long that takes", async () => {
    await start({ keepAliveMs: 200, headersTimeoutMs: 200, checkEveryMs: 50 }, (b) => `echo ${b}`, 600);
    const c = await open();
    c.socket.write(request("slow") + request("next")); // the second waits, buffered, for the first's answer
    await sleep(1500);
    expect(c.received()).to.contain("echo slow").and.contain("echo next");
  });

  it("holds pipelined requests while the client does not read its answers, and answers every one in order once it does", async () => {
    const big = "x".repeat(1024 * 1024);
    await start({}, (b) => `${b}:${big}`);
    const socket = connect(port, "127.0.0.1");
    sockets.push(socket);
    socket.pause(); // reads nothing yet
    await new Promise((r) => socket.once("connect", r));
    for (let i = 0; i < 40; i++) socket.write(request(`r${i}`));
    await sleep(500);
    // TCP holds a few MB of answers; the rest wait for the client (40 MB of answers were asked for).
    expect(handled.length).to.be.greaterThan(0).and.lessThan(40);
    let text = "";
    socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    socket.resume();
    for (let t = 0; t < 100 && handled.length < 40; t++) await sleep(50);
    await sleep(200);
    expect(handled).to.deep.equal(Array.from({ length: 40 }, (_, i) => `r${i}`));
    const order = [...text.matchAll(/\r\n\r\n(r\d+):/g)].map((m) => m[1]);
    expect(order).to.deep.equal(handled);
  });

  it("answers thousands of pipelined requests queued behind a slow one, each answered at once, without a call stack per request", async () => {
    // The first answer is late; the 20 000 behind it are buffered meanwhile, then answered synchronously one after another.
    let first = true;
    await start({ handle: (_req, body, reply) => {
      handled.push(body.toString());
      const answer = () => reply.send(200, { "content-length": 2 }, "ok");
      if (first) (first = false), setTimeout(answer, 300);
      else answer();
    } });
    const c = await open();
    let all = "";
    for (let i = 0; i < 20_000; i++) all += request(`r${i}`);
    c.socket.write(all);
    for (let t = 0; t < 200 && handled.length < 20_000; t++) await sleep(25);
    await sleep(100);
    expect(handled.length).to.equal(20_000);
    expect(c.received().split("HTTP/1.1 200 OK").length - 1).to.equal(20_000);
  });

  it("takes no further request on a connection after answering one with Connection: close (node:http refuses data after it)", async () => {
    await start({}, (b) => `echo ${b}`, 50);
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true }); // a client slow to see the server's end
    sockets.push(socket);
    socket.on("data", () => undefined);
    await new Promise((r) => socket.once("connect", r));
    socket.write(request("first").replace("host: x\r\n", "host: x\r\nconnection: close\r\n") + request("after"));
    await sleep(200);
    socket.write(request("later"));
    await sleep(200);
    expect(handled).to.deep.equal(["first"]);
  });

  it("closes a connection idle for keepAliveMs after a request whose answer took longer than that", async () => {
    await start({ keepAliveMs: 200 }, (b) => `echo ${b}`, 400);
    const c = await open();
    c.socket.write(request("slow"));
    const t0 = Date.now();
    await Promise.race([c.closed, sleep(2000)]);
    expect(c.received()).to.contain("echo slow");
    expect(c.socket.destroyed || c.socket.readableEnded, "closed by the server").to.equal(true);
    expect(Date.now() - t0).to.be.lessThan(1500);
  });

  it("hands to node:http, at once, what node:http refuses: bare LF line ends (before the head is whole), no Host, Proxy-Connection", async () => {
    await start();
    const cases = [
      "POST / HTTP/1.1\nhost: x\ncontent-length: 1\n\nx", // no CRLF CRLF ever comes
      "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\nx",
      "POST / HTTP/1.1\r\ncontent-length: 1\r\n\r\nx",
    ];
    for (const text of cases) {
      const c = await open();
      c.socket.write(text);
      for (let t = 0; t < 20 && !c.received(); t++) await sleep(25);
      expect(c.received(), JSON.stringify(text)).to.match(/^HTTP\/1\.1 400 Bad Request/);
    }
    // node:http ends the connection after the first request's answer, and runs nothing after it.
    const c = await open();
    c.socket.write("POST / HTTP/1.1\r\nhost: x\r\nproxy-connection: close\r\ncontent-length: 1\r\n\r\nx" + request("after"));
    await Promise.race([c.closed, sleep(1000)]);
    expect(c.received().split("HTTP/1.1 ").length - 1).to.equal(1);
    expect(c.socket.destroyed || c.socket.readableEnded).to.equal(true);
    expect(handled).to.deep.equal([]);
  });

  it("a draining server ends a connection whose keep-alive answer was still being taken by its client when the drain began", async () => {
    const big = "x".repeat(8 * 1024 * 1024);
    await start({}, () => big);
    const socket = connect(port, "127.0.0.1");
    sockets.push(socket);
    socket.pause(); // reads nothing yet: the answer waits on TCP, its connection busy
    await new Promise((r) => socket.once("connect", r));
    socket.write(request("big"));
    await sleep(200);
    lean.closeIdle();
    let bytes = 0;
    socket.on("data", (d: Buffer) => (bytes += d.length));
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("end", () => socket.end());
    socket.resume();
    await Promise.race([closed, sleep(2000)]);
    expect(bytes).to.be.greaterThan(big.length);
    expect(socket.destroyed, "ended by the server once its answer was taken").to.equal(true);
  });

  it("hands a request it does not take to node:http with the bytes already read, at a request boundary", async () => {
    await start();
    const c = await open();
    c.socket.write(request("lean") + "GET /other HTTP/1.1\r\nhost: x\r\n\r\n");
    for (let t = 0; t < 40 && !c.received().includes("fallback"); t++) await sleep(25);
    expect(c.received()).to.match(/echo lean[\s\S]*HTTP\/1\.1 200 OK[\s\S]*fallback$/);
    expect(handled).to.deep.equal(["lean"]);
  });
});
