// A page token binds the backend's cursor to the scan it came from, so a token replayed
// against another namespace or prefix is refused instead of silently skipping keys.
import { invalidArgument } from "../protocol/errors.js";

interface Token {
  n: string;
  p: string;
  c: string;
}

export function encodePageToken(ns: string, prefix: string, cursor: string): string {
  return Buffer.from(JSON.stringify({ n: ns, p: prefix, c: cursor } satisfies Token)).toString("base64url");
}

export function decodePageToken(token: string, ns: string, prefix: string): string {
  let t: Partial<Token>;
  try {
    t = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as Partial<Token>;
  } catch {
    throw invalidArgument("page_token", "is not a token this server issued");
  }
  if (typeof t !== "object" || t === null || typeof t.c !== "string") throw invalidArgument("page_token", "is not a token this server issued");
  if (t.n !== ns || t.p !== prefix) throw invalidArgument("page_token", "belongs to a scan of another namespace or prefix");
  return t.c;
}
