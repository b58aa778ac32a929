// What both sides know about a call's outcome and metadata: the status names, the metadata keys
// Decant sets, and the google.rpc.Status details (encoded by the server, decoded by clients).
import * as grpc from "@grpc/grpc-js";
import type { BadRequest__Output } from "./generated/google/rpc/BadRequest.js";
import type { ErrorInfo, ErrorInfo__Output } from "./generated/google/rpc/ErrorInfo.js";
import type { Status, Status__Output } from "./generated/google/rpc/Status.js";
import { protocolRoot } from "./proto.js";

export const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === "number").map(([k, v]) => [v, k]));

/** Trailing metadata key with the current version, for clients that skip the rich details. */
export const CURRENT_VERSION_METADATA = "decant-current-version";
/** Trailing metadata key of the google.rpc.Status details. */
export const STATUS_DETAILS_METADATA = "grpc-status-details-bin";
/** The Migration service's admin token travels as `authorization: Bearer <token>`. */
export const AUTHORIZATION_METADATA = "authorization";
export const bearer = (token: string) => `Bearer ${token}`;

export const ERROR_DOMAIN = "decant.dev";

/** What the details of a Decant error say. */
export interface ErrorDetails {
  code: number;
  message: string;
  /** ErrorInfo.reason: the error kind in capitals (VERSION_MISMATCH, INVALID_ARGUMENT, …). */
  reason: string;
  /** The request field at fault, when there is one. */
  field?: string;
  currentVersion?: bigint;
}

const type = (name: string) => protocolRoot().lookupType(name);
const encode = <T extends object>(name: string, message: T): Uint8Array => type(name).encode(type(name).fromObject(message)).finish();
const decode = <T>(name: string, buf: Uint8Array): T => type(name).toObject(type(name).decode(buf), { longs: String, bytes: Buffer, defaults: true }) as T;

/** Encodes grpc-status-details-bin: an ErrorInfo, and a BadRequest naming the field when there is one. */
export function encodeDetails(d: ErrorDetails): Buffer {
  const meta: Record<string, string> = {};
  if (d.currentVersion !== undefined) meta.current_version = d.currentVersion.toString();
  if (d.field) meta.field = d.field;
  const info: ErrorInfo = { reason: d.reason, domain: ERROR_DOMAIN, metadata: meta };
  const details: Status["details"] = [{ type_url: "type.googleapis.com/google.rpc.ErrorInfo", value: encode("google.rpc.ErrorInfo", info) }];
  if (d.field) details.push({ type_url: "type.googleapis.com/google.rpc.BadRequest", value: encode("google.rpc.BadRequest", { field_violations: [{ field: d.field, description: d.message }] }) });
  return Buffer.from(encode<Status>("google.rpc.Status", { code: d.code, message: d.message, details }));
}

/** Decodes grpc-status-details-bin (for the CLI and tests). */
export function decodeDetails(buf: Buffer): { reason?: string; metadata: Record<string, string>; fieldViolations: { field: string; description: string }[] } {
  const status = decode<Status__Output>("google.rpc.Status", buf);
  const out: ReturnType<typeof decodeDetails> = { metadata: {}, fieldViolations: [] };
  for (const d of status.details) {
    if (d.type_url.endsWith("google.rpc.ErrorInfo")) {
      const info = decode<ErrorInfo__Output>("google.rpc.ErrorInfo", d.value);
      out.reason = info.reason;
      out.metadata = info.metadata;
    } else if (d.type_url.endsWith("google.rpc.BadRequest")) {
      out.fieldViolations = decode<BadRequest__Output>("google.rpc.BadRequest", d.value).field_violations;
    }
  }
  return out;
}
