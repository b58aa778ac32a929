// SigV4 verification with the AWS SDK's own signer (@smithy/signature-v4): the request is
// signed again with the configured secret, the date, scope and signed headers the client
// named, and the two signatures compared in constant time.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { DynamoError } from "./types.js";

/** What verification reads of a request (node:http's IncomingMessage and the lean path's request both have it). */
export interface SignedRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** A SHA-256 (or HMAC-SHA-256 with a secret) in the shape the signer takes. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {}
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;._-]+),\s*Signature=([0-9a-f]{64})$/;
/** How far a request's signing time may be from ours: DynamoDB's replay window (5 minutes, not SigV4's usual 15). */
const MAX_SKEW_MS = 5 * 60 * 1000;

/** A time as X-Amz-Date writes it (20260101T000000Z), for DynamoDB's expiry messages. */
const amzTime = (ms: number): string => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");

const refused = (type: string, message: string) => new DynamoError(type, message);

export class SigV4Verifier {
  private readonly signer: SignatureV4;

  constructor(private readonly credentials: Credentials) {
    this.signer = new SignatureV4({ credentials, region: "us-east-1", service: "dynamodb", sha256: Sha256 as never, uriEscapePath: true, applyChecksum: false });
  }

  /** Throws DynamoDB's error unless the request is signed with the configured credentials. */
  async verify(req: SignedRequest, body: Buffer, now = Date.now()): Promise<void> {
    const header = req.headers.authorization;
    if (typeof header !== "string" || !header) throw refused("MissingAuthenticationTokenException", "Request is missing Authentication Token");
    const m = AUTH.exec(header.trim());
    if (!m) throw refused("IncompleteSignatureException", "Authorization header requires a Credential, SignedHeaders and Signature of AWS4-HMAC-SHA256");
    const [, accessKeyId, day, region, service, signedList, signature] = m as unknown as string[];
    if (accessKeyId !== this.credentials.accessKeyId) throw refused("UnrecognizedClientException", "The security token included in the request is invalid.");
    const amzDate = req.headers["x-amz-date"];
    const d = typeof amzDate === "string" ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate) : null;
    if (!d || amzDate!.slice(0, 8) !== day) throw refused("IncompleteSignatureException", "the X-Amz-Date header is missing or does not match the credential scope's date");
    const date = new Date(Date.UTC(+d[1]!, +d[2]! - 1, +d[3]!, +d[4]!, +d[5]!, +d[6]!));
    // DynamoDB's words: SDKs read "Signature expired" (and the answer's Date header) as clock skew, correct it and retry.
    if (date.getTime() < now - MAX_SKEW_MS) throw refused("InvalidSignatureException", `Signature expired: ${amzDate} is now earlier than ${amzTime(now - MAX_SKEW_MS)} (${amzTime(now)} - 5 min.)`);
    if (date.getTime() > now + MAX_SKEW_MS) throw refused("InvalidSignatureException", `Signature not yet current: ${amzDate} is still later than ${amzTime(now + MAX_SKEW_MS)} (${amzTime(now)} + 5 min.)`);
    const signed = signedList!.split(";");
    if (!signed.includes("host")) throw refused("InvalidSignatureException", "the signature must cover the host header");
    const headers: Record<string, string> = {};
    for (const name of signed) {
      const v = req.headers[name];
      if (v === undefined) throw refused("InvalidSignatureException", `signed header ${name} is missing from the request`);
      headers[name] = Array.isArray(v) ? v.join(",") : v;
    }
    // The signer takes a signed payload-hash header at its word: it must be this body's, or a captured
    // signature would carry any body. Without that header (it is optional) the signer hashes the body itself.
    const claimed = headers["x-amz-content-sha256"];
    if (claimed !== undefined && claimed !== createHash("sha256").update(body).digest("hex")) {
      throw refused("InvalidSignatureException", "The provided x-amz-content-sha256 header does not match what was computed.");
    }
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const query: Record<string, string | string[]> = {};
    if (q >= 0) for (const [k, v] of new URLSearchParams(url.slice(q + 1))) query[k] = k in query ? [...([] as string[]).concat(query[k]!), v] : v;
    const again = await this.signer.sign(
      { method: req.method ?? "POST", protocol: "http:", hostname: String(req.headers.host ?? ""), path: q >= 0 ? url.slice(0, q) : url, query, headers, body },
      { signingDate: date, signingRegion: region, signingService: service, signableHeaders: new Set(signed) },
    );
    const expected = /Signature=([0-9a-f]{64})/.exec(String(again.headers.authorization))?.[1] ?? "";
    if (expected.length !== signature!.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature!))) {
      throw refused("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.");
    }
  }
}
