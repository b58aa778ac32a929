import type { DecantClient } from "../client/client.js";

/** Placeholder until the migration service lands: says so clearly instead of failing oddly. */
export async function migrate(_args: string[], _client: (v: { addr?: string; token?: string }) => DecantClient): Promise<number> {
  process.stderr.write("decant: migrate commands are not available in this build yet\n");
  return 4;
}
