// Removes what a test left on the shared Redis server: every key under its prefix.
import { Redis } from "ioredis";
import { TEST_URLS } from "./servers.js";

export async function dropRedisKeys(prefix: string): Promise<void> {
  const r = new Redis(TEST_URLS.redis);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await r.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length) await r.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    r.disconnect();
  }
}
