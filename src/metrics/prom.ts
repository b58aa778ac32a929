// The parts of prom-client the sidecar uses, required one by one. Its index also loads the
// Pushgateway (http, https, zlib), Summary (tdigest) and the cluster aggregator, which the
// sidecar never uses: ~0.3 MB of an idle sidecar's heap. Same classes, same exposition
// format; prom-client is pinned (package.json), and a file that moved would fail every test.
import { createRequire } from "node:module";
import type client from "prom-client";

const require = createRequire(import.meta.url);

export const Registry = require("prom-client/lib/registry") as typeof client.Registry;
export type Registry = client.Registry;
export const Counter = require("prom-client/lib/counter") as typeof client.Counter;
export type Counter<T extends string = string> = client.Counter<T>;
export const Gauge = require("prom-client/lib/gauge") as typeof client.Gauge;
export type Gauge<T extends string = string> = client.Gauge<T>;
export const Histogram = require("prom-client/lib/histogram") as typeof client.Histogram;
export type Histogram<T extends string = string> = client.Histogram<T>;
export const collectDefaultMetrics = require("prom-client/lib/defaultMetrics") as typeof client.collectDefaultMetrics;
