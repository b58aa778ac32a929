// A raw HTTP/1.1 server on loopback for the lean DynamoDB client's pool tests: it frames each
// request by its content-length and lets the test answer with any bytes, split however it likes.
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Exchange, Http1Pool } from "../../src/backends/http1.js";

export type Answer = (request: string, socket: Socket, n: number) => unknown;

/** A raw server: `answer` gets each whole request (framed by content-length) and the socket; n counts requests. */
export async function rawServer(answer: Answer): Promise<{ url: URL; server: Server; connections: () => number; open: () => number; stop(): Promise<void> }> {
  let connections = 0;
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.toString("latin1", 0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const request = buffered.toString("utf8", 0, end + 4 + length);
        buffered = buffered.subarray(end + 4 + length);
        void answer(request, socket, n++);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/`),
    server,
    connections: () => connections,
    open: () => sockets.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export const post = (pool: Http1Pool, body = "{}", track?: (x: Exchange) => void) => pool.post("/", { host: "h", "content-length": String(Buffer.byteLength(body)) }, body, track);
