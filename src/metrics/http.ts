// The metrics port: /metrics for Prometheus, /healthz for probes. Other pages (the status
// page) register routes here.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Metrics } from "./metrics.js";

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

export interface RunningHttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(listen: string, metrics: Metrics, routes: Route[] = []): Promise<RunningHttpServer> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      try {
        const path = (req.url ?? "/").split("?")[0];
        if (req.method === "GET" && path === "/metrics") {
          const { contentType, body } = await metrics.render();
          res.writeHead(200, { "content-type": contentType }).end(body);
          return;
        }
        if (req.method === "GET" && path === "/healthz") {
          res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
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
