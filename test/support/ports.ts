// Loopback ports for servers a test starts as child processes (which must be told a port).
import { createServer } from "node:net";
import { readFileSync } from "node:fs";

/** The kernel's range for the local ports of outgoing connections (Linux; a common default elsewhere). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (lo! > 0 && hi! >= lo!) return [lo!, hi!];
  } catch {
    /* not Linux */
  }
  return [32768, 60999];
}

/** Ports this process has handed out (one set even if this module is loaded twice, as ESM and CommonJS). */
const handedOut: Set<number> = ((globalThis as Record<symbol, unknown>)[Symbol.for("decant.test.ports")] ??= new Set<number>()) as Set<number>;

const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

/**
 * A free loopback port outside the ephemeral range. A port the kernel hands out for listen(0)
 * lies inside it, so between closing the probe and the child's bind, any outgoing connection
 * of the busy test process (a pool, dynalite, Redis) could take it as its local port and the
 * child would fail with EADDRINUSE; below the range only another listener can, and the probe
 * checks that there is none.
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralRange();
  const base = Math.max(1024, Math.min(lo, 32768) - 12_000);
  const span = Math.min(lo, 32768) - base;
  if (handedOut.size > span / 2) handedOut.clear();
  for (let i = 0; i < 200; i++) {
    const port = base + Math.floor(Math.random() * span);
    // A port handed out before may not be bound yet (a child told two ports binds them later, and
    // drew the same one twice once: EADDRINUSE), so one process never hands a port out twice.
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("no free loopback port below the ephemeral range after 200 tries");
}
