// Bounds on the gRPC listener's connections. grpc-js closes idle connections and pings with
// keepalive, but has neither a cap nor a timeout for a client that connects and never speaks:
// so the listening sockets are ours, and each accepted connection is handed to grpc-js.
import { lookup } from "node:dns/promises";
import { createServer, type Server, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { ConnectionSettings } from "../config/config.js";
import type { Logger } from "../log.js";
import { listenUnix } from "./unix-socket.js";

/** The client's HTTP/2 connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", is 24 bytes. */
const PREFACE_BYTES = 24;
const DROP_WARNING_EVERY_MS = 60_000;

/** The grpc-js server options for the bounds grpc-js enforces itself. */
export function connectionOptions(c: ConnectionSettings): grpc.ServerOptions {
  return { "grpc.max_connection_idle_ms": c.idleTimeoutMs, "grpc.keepalive_time_ms": c.keepaliveTimeMs, "grpc.keepalive_timeout_ms": c.keepaliveTimeoutMs };
}

export interface Listener {
  port: number;
  /** Stops accepting connections. */
  close(): void;
  /** Closes every connection still open (after a forced shutdown). */
  destroyAll(): void;
}

/**
 * Listens on host:port (every address of the host name, as grpc-js does), at most `c.max`
 * connections at once (one more is closed on accept), and closes a connection that has not sent
 * the HTTP/2 preface within the preface timeout. With TLS, the raw bytes cannot tell the
 * preface, so the TLS handshake gets that timeout instead.
 */
export async function listenBounded(server: grpc.Server, credentials: grpc.ServerCredentials, address: string, c: ConnectionSettings, logger: Logger): Promise<Listener> {
  const secure = credentials._isSecure();
  const injector = server.createConnectionInjector(secure ? withHandshakeTimeout(credentials, c.prefaceTimeoutMs) : credentials);
  const sockets = new Set<Socket>();
  let lastWarning = 0;
  const accept = (socket: Socket) => {
    if (sockets.size >= c.max) {
      socket.destroy();
      warnDropped();
      return;
    }
    sockets.add(socket);
    socket.on("error", () => undefined); // the HTTP/2 session sees the error; a reset must not crash the process
    const timer = secure ? undefined : setTimeout(() => socket.bytesRead < PREFACE_BYTES && socket.destroy(), c.prefaceTimeoutMs).unref();
    socket.once("close", () => {
      clearTimeout(timer);
      sockets.delete(socket);
    });
    injector.injectConnection(socket);
  };
  const warnDropped = () => {
    if (Date.now() - lastWarning < DROP_WARNING_EVERY_MS) return;
    lastWarning = Date.now();
    logger.warn(`refusing connections: ${c.max} are open (connections.max)`, { listen: address });
  };

  if (address.startsWith("unix:")) {
    const uds = await listenUnix(address.slice(5), accept);
    return { port: 0, close: () => uds.close(), destroyAll: () => sockets.forEach((socket) => socket.destroy()) };
  }
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
  let port = Number(address.slice(address.lastIndexOf(":") + 1));
  const servers: Server[] = [];
  let failure: Error | undefined;
  try {
    // Like grpc-js: serve on the addresses of the name that can be bound (localhost without IPv6, say).
    for (const { address: ip } of await lookup(host, { all: true })) {
      const tcp = createServer(accept);
      try {
        await new Promise<void>((resolve, reject) => tcp.once("error", reject).listen(port, ip, () => resolve()));
      } catch (err) {
        failure ??= err as Error;
        continue;
      }
      servers.push(tcp);
      port = (tcp.address() as { port: number }).port; // the other addresses of the name share the first one's port
    }
  } catch (err) {
    failure = err as Error;
  }
  if (servers.length === 0) throw new Error(`listen: cannot bind ${address}: ${failure?.message ?? "the name has no address"}`);
  return {
    port,
    close: () => servers.forEach((tcp) => tcp.close()),
    destroyAll: () => sockets.forEach((socket) => socket.destroy()),
  };
}

/** Node's TLS server aborts a handshake that takes longer than handshakeTimeout (default 120 s). */
function withHandshakeTimeout(credentials: grpc.ServerCredentials, ms: number): grpc.ServerCredentials {
  const options = credentials._getConstructorOptions.bind(credentials);
  return Object.assign(credentials, { _getConstructorOptions: () => ({ ...options(), handshakeTimeout: ms }) });
}
