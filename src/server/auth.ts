// The admin token, checked in one way for every door that needs it (the Migration service, the
// status page's actions).
import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import { DecantError } from "../protocol/errors.js";
import { AUTHORIZATION_METADATA } from "../wire/status.js";

/** Timing-safe token check: both sides hashed first, so neither the content nor the length leaks. */
export function tokenMatches(given: string | undefined, want: string): boolean {
  if (given === undefined) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(want).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `authorization: Bearer <token>` header, if there is one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(.*)$/is.exec(header ?? "");
  return m ? m[1] : undefined;
}

/** A service's authorisation (rpc.ts CallPolicy): with a token configured, every call must carry it. */
export function requireToken(token: string | undefined): ((metadata: grpc.Metadata) => void) | undefined {
  if (!token) return undefined;
  return (metadata) => {
    const header = metadata.get(AUTHORIZATION_METADATA)[0];
    if (!tokenMatches(bearerToken(typeof header === "string" ? header : header?.toString()), token)) {
      throw new DecantError("unauthenticated", "the Migration service needs the admin token: send the header authorization: Bearer <token>");
    }
  };
}
