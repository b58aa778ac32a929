// The metrics port: /metrics for Prometheus; /livez, /readyz (and /healthz, the same as /livez)
// for probes. Other pages (the status page) register routes here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Metrics } from "./metrics.js";

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

export interface RunningHttpServer {
  port: number;
  close(): Promise<void>;
}

/** Whether the sidecar can serve now, and why not. */
export type ReadinessCheck = () => { ready: boolean; reason: string };

/**
 * /livez answers 200 while the process serves HTTP at all (a store outage must not restart the
 * pod); /healthz is the same, as it always was. /readyz answers 503 with the reason while the
 * sidecar cannot serve (store unreachable, failing closed), so traffic goes elsewhere.
 */
function probeAnswer(path: string, readiness: ReadinessCheck): { status: number; body: string } | undefined {
  if (path === "/livez" || path === "/healthz") return { status: 200, body: "ok\n" };
  if (path !== "/readyz") return undefined;
  const { ready, reason } = readiness();
  return ready ? { status: 200, body: "ok\n" } : { status: 503, body: `not ready: ${reason}\n` };
}

export async function startMetricsServer(listen: string, metrics: Metrics, routes: Route[] = [], readiness: ReadinessCheck = () => ({ ready: true, reason: "ready" })): Promise<RunningHttpServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        const path = (req.url ?? "/").split("?")[0] ?? "/";
        if (req.method === "GET" && path === "/metrics") {
          const { contentType, body } = await metrics.render();
          res.writeHead(200, { "content-type": contentType }).end(body);
          return;
        }
        const probe = req.method === "GET" ? probeAnswer(path, readiness) : undefined;
        if (probe) {
          res.writeHead(probe.status, { "content-type": "text/plain", "cache-control": "no-store" }).end(probe.body);
          return;
        }
        for (const route of routes) if (await route(req, res)) return;
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`error: ${(err as Error).message}\n`);
      }
    })();
  });
  const host = listen.slice(0, listen.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Error(`metrics_listen: cannot bind ${listen}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
