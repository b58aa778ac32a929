// A TCP proxy in front of a real server, for outage tests. pause() stops forwarding in both
// directions and holds every connection open, new ones included (a stalled network: requests
// hang rather than fail); resume() forwards again, what was held included. `accepted` counts the
// connections it took, so a test can tell whether a client connected at all.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface PausableProxy {
  port: number;
  /** `host:port` of the proxy, to put in a store URL in place of the server's. */
  address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startPausableProxy(target: { host: string; port: number }): Promise<PausableProxy> {
  let paused = false;
  let accepted = 0;
  const pairs = new Set<[Socket, Socket]>();
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = createConnection(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    if (paused) for (const s of pair) s.pause();
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) s.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    pause() {
      paused = true;
      for (const pair of pairs) for (const s of pair) s.pause();
    },
    resume() {
      paused = false;
      for (const pair of pairs) for (const s of pair) s.resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) (a.destroy(), b.destroy());
        server.close(() => resolve());
      }),
  };
}
