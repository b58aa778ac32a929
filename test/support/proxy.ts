// A TCP proxy in front of a real server, for outage tests. pause() stops forwarding in both
// directions and holds every connection open, new ones included (a stalled network: requests
// hang rather than fail); resume() forwards again, what was held included. It counts the
// connections clients open, so a test can tell whether a client connected at all; drop() cuts
// every open connection, as a server restart or a network blip does.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface PausableProxy {
  port: number;
  /** `host:port` of the proxy, to put in a store URL in place of the server's. */
  address: string;
  /** Client connections accepted so far. */
  readonly accepted: number;
  /**
   * Client connections accepted so far, once every connection already under way is in: after a
   * few event-loop turns a probe connects, and a listener accepts in order (the probe is not counted).
   */
  settled(): Promise<number>;
  /** Destroys every open connection (both sides); new ones are accepted as before. */
  drop(): void;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/** Another loopback address (all of 127/8 is loopback on Linux): tells the probe from clients on 127.0.0.1. */
const PROBE_ADDRESS = "127.0.0.2";

export async function startPausableProxy(target: { host: string; port: number }): Promise<PausableProxy> {
  let paused = false;
  let accepted = 0;
  const pairs = new Set<[Socket, Socket]>();
  /** What to call when the next probe is accepted; probes come from PROBE_ADDRESS, clients from elsewhere. */
  const probes: (() => void)[] = [];
  const server: Server = createServer((client) => {
    if (client.remoteAddress === PROBE_ADDRESS) {
      client.destroy();
      return probes.shift()?.();
    }
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
    async settled() {
      // Let work already queued (promise chains, nextTicks, immediates) start its connections first.
      for (let turn = 0; turn < 3; turn++) await new Promise((r) => setImmediate(r));
      const admitted = new Promise<void>((resolve) => probes.push(resolve));
      createConnection({ host: "127.0.0.1", port, localAddress: PROBE_ADDRESS }).on("error", () => undefined);
      await admitted;
      return accepted;
    },
    drop() {
      for (const [a, b] of pairs) (a.destroy(), b.destroy());
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
