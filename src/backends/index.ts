// A store is named by one URL (DESIGN.md §5). Each backend module is loaded only when a URL
// names it, so a deployment needs only its own backend's driver.
import { invalidArgument } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { redactUrl } from "./kit.js";

type Factory = (url: URL, raw: string) => Promise<Store>;

const BACKENDS: Record<string, Factory> = {
  memory: async (url) => (await import("./memory.js")).createMemoryStore(url),
  sqlite: async (url) => (await import("./sqlite.js")).createSqliteStore(url),
  postgres: async (url, raw) => (await import("./postgres.js")).createPostgresStore(url, raw),
  postgresql: async (url, raw) => (await import("./postgres.js")).createPostgresStore(url, raw),
  mysql: async (url, raw) => (await import("./mysql.js")).createMysqlStore(url, raw),
  mariadb: async (url, raw) => (await import("./mysql.js")).createMysqlStore(url, raw),
  dynamodb: async (url, raw) => (await import("./dynamodb.js")).createDynamoStore(url, raw),
  redis: async (url, raw) => (await import("./redis.js")).createRedisStore(url, raw),
};

export const BACKEND_SCHEMES = Object.keys(BACKENDS);

/** Parses a store URL (without connecting) and throws invalid_argument naming `field` when it is wrong. */
export function parseStoreUrl(raw: string, field = "store"): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument(field, `${JSON.stringify(redactUrl(raw))} is not a store URL; use one of ${BACKEND_SCHEMES.map((s) => `${s}:`).join(", ")}`);
  }
  const scheme = url.protocol.replace(/:$/, "");
  if (!BACKENDS[scheme]) throw invalidArgument(field, `unknown store type ${JSON.stringify(scheme)}; use one of ${BACKEND_SCHEMES.map((s) => `${s}:`).join(", ")}`);
  return url;
}

/** Creates the store a URL names. Connections are opened lazily, on first use. */
export async function openStore(raw: string, field = "store"): Promise<Store> {
  const url = parseStoreUrl(raw, field);
  const factory = BACKENDS[url.protocol.replace(/:$/, "")]!;
  try {
    return await factory(url, raw);
  } catch (err) {
    if ((err as { kind?: string }).kind === "invalid_argument") {
      const e = err as Error;
      throw invalidArgument(field, e.message.replace(/^store: /, ""));
    }
    throw err;
  }
}
