// pg, loaded without undici. When pg's lib/stream.js loads, it tells a Cloudflare Worker from
// Node by constructing a `Response` (Node 20 has no `navigator`), and the first touch of
// `Response` loads Node's whole fetch implementation (undici and its WebAssembly parser): ~2 MB
// of the sidecar's RSS for a check whose answer is known here. `Response` is hidden from that
// one synchronous load only, then put back as it was.
import { createRequire } from "node:module";
import type * as Pg from "pg";

function loadPg(): typeof Pg {
  const saved = Object.getOwnPropertyDescriptor(globalThis, "Response");
  const hide = saved?.configurable === true;
  if (hide) Object.defineProperty(globalThis, "Response", { value: undefined, configurable: true, writable: true });
  try {
    return createRequire(import.meta.url)("pg") as typeof Pg;
  } finally {
    if (hide) Object.defineProperty(globalThis, "Response", saved);
  }
}

export const { Pool, escapeLiteral } = loadPg();
