// Security through a real grpc-js server on loopback and a real client: TLS and mTLS, the
// admin token of the Migration service, the loud warning for an open plaintext listener,
// and secrets kept out of logs and GetStatus.
import { expect } from "chai";
import * as grpc from "@grpc/grpc-js";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { DecantClient } from "../../src/client/client.js";
import { plainDefinition } from "../../src/wire/proto.js";
import { createLogger } from "../../src/log.js";
import { buf, freshNamespace } from "../support/names.js";
import { grpcError } from "../support/errors.js";
import { startTestSidecar } from "../support/sidecar.js";

type Running = Awaited<ReturnType<typeof startTestSidecar>>;


/** A logger writing JSON lines into memory; `text()` is everything logged so far. */
function capturingLogger() {
  const chunks: string[] = [];
  // Recorded in write() itself, so a line is there as soon as the logger returns: no waiting.
  const stream = new Writable({
    write(c: Buffer, _encoding, done) {
      chunks.push(c.toString("utf8"));
      done();
    },
  });
  const logger = createLogger({ format: "json", level: "debug", stream });
  const text = () => chunks.join("");
  const lines = () =>
    text()
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { level: string; message: string; [k: string]: unknown });
  return { logger, text, lines };
}

/** Every metadata value as text (binary headers such as grpc-status-details-bin decoded as latin1). */
const metadataText = (md: grpc.Metadata) =>
  Object.entries(md.getMap())
    .map(([k, v]) => `${k}: ${Buffer.isBuffer(v) ? v.toString("latin1") : v}`)
    .join("\n");


interface Pki {
  dir: string;
  ca: Buffer;
  serverCert: string;
  serverKey: string;
  caFile: string;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A client certificate signed by a CA the server does not trust. */
  strangerCert: Buffer;
  strangerKey: Buffer;
}

/** A throwaway CA, a server certificate for 127.0.0.1/localhost and client certificates, made with openssl. */
function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), "decant-tls-"));
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const makeCa = (name: string) =>
    openssl("req", "-x509", ...ecKey, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=Decant test ${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const makeLeaf = (name: string, ca: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl("req", "-new", ...ecKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`);
  };
  makeCa("ca");
  makeCa("stranger-ca");
  makeLeaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  makeLeaf("client", "ca", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  makeLeaf("stranger", "stranger-ca", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
  const read = (f: string) => readFileSync(join(dir, f));
  return {
    dir,
    ca: read("ca.crt"),
    caFile: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    strangerCert: read("stranger.crt"),
    strangerKey: read("stranger.key"),
  };
}

/** Calls one method of a definition with an empty request; the error it ends with (null if none). */
function callRaw(raw: grpc.Client, method: grpc.MethodDefinition<object, object>, md: grpc.Metadata): Promise<grpc.ServiceError | null> {
  const options = { deadline: Date.now() + 5000 };
  if (!method.responseStream) {
    return new Promise((resolve) => raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, md, options, (err) => resolve(err)));
  }
  const stream = raw.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, md, options);
  return new Promise((resolve) => {
    stream.on("data", () => undefined);
    stream.on("error", resolve);
    stream.on("end", () => resolve(null));
  });
}

describe("security", function () {
  describe("TLS", function () {
    let pki: Pki;
    before(function () {
      this.timeout(60_000);
      pki = makePki();
    });
    after(() => pki && rmSync(pki.dir, { recursive: true, force: true }));

    function writeConfig(name: string, tls: Record<string, string>): string {
      const path = join(pki.dir, name);
      writeFileSync(path, `tls:\n${Object.entries(tls).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`).join("")}`);
      return path;
    }

    describe("server certificate only", function () {
      let s: Running;
      const clients: DecantClient[] = [];
      const client = (opts: ConstructorParameters<typeof DecantClient>[1]) => {
        const c = new DecantClient(`127.0.0.1:${s.sidecar.grpcPort}`, { deadlineMs: 5000, ...opts });
        clients.push(c);
        return c;
      };
      before(async () => {
        const configPath = writeConfig("tls.yaml", { cert_file: pki.serverCert, key_file: pki.serverKey });
        s = await startTestSidecar({}, { configPath, client: { tls: { ca: pki.ca }, deadlineMs: 5000 } });
      });
      after(async () => {
        for (const c of clients) c.close();
        await s?.stop();
      });

      it("a client that trusts the CA can Put and Get", async function () {
        const ns = freshNamespace();
        expect(await s.client.put(ns, "k", buf("over tls"))).to.deep.equal({ version: "1" });
        const got = await s.client.get(ns, "k");
        expect(got.found).to.equal(true);
        expect(got.item!.value.toString()).to.equal("over tls");
      });

      it("the certificate is valid for localhost too", async function () {
        const c = new DecantClient(`localhost:${s.sidecar.grpcPort}`, { tls: { ca: pki.ca }, deadlineMs: 5000 });
        clients.push(c);
        const ns = freshNamespace();
        expect(await c.put(ns, "k", buf("v"))).to.deep.equal({ version: "1" });
      });

      it("a plaintext client is refused with UNAVAILABLE", async function () {
        const err = await grpcError(client({}).get(freshNamespace(), "k"));
        expect(err.code, err.details).to.equal(grpc.status.UNAVAILABLE);
      });

      it("a client that does not trust the server's CA is refused with UNAVAILABLE", async function () {
        const err = await grpcError(client({ tls: { ca: pki.strangerCert } }).get(freshNamespace(), "k"));
        expect(err.code, err.details).to.equal(grpc.status.UNAVAILABLE);
      });
    });

    it("a TCP connection that never finishes the TLS handshake is closed after connections.preface_timeout_ms", async function () {
      const configPath = writeConfig("tls-preface.yaml", { cert_file: pki.serverCert, key_file: pki.serverKey });
      const t = await startTestSidecar({ DECANT_PREFACE_TIMEOUT_MS: "300" }, { configPath, client: { tls: { ca: pki.ca }, deadlineMs: 5000 } });
      try {
        const socket = connect(t.sidecar.grpcPort, "127.0.0.1");
        socket.on("error", () => undefined);
        const start = Date.now();
        const closedAfter = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("the silent connection is still open after 5 s")), 5000);
          socket.once("close", () => resolve(Date.now() - start)).once("close", () => clearTimeout(timer));
        });
        expect(closedAfter).to.be.at.least(250);
        expect(await t.client.put(freshNamespace(), "k", buf("v"))).to.deep.equal({ version: "1" }); // a real handshake is not cut short
      } finally {
        await t.stop();
      }
    });

    describe("mutual TLS (client_ca_file)", function () {
      let s: Running;
      const clients: DecantClient[] = [];
      const client = (opts: ConstructorParameters<typeof DecantClient>[1]) => {
        const c = new DecantClient(`127.0.0.1:${s.sidecar.grpcPort}`, { deadlineMs: 5000, ...opts });
        clients.push(c);
        return c;
      };
      before(async () => {
        const configPath = writeConfig("mtls.yaml", { cert_file: pki.serverCert, key_file: pki.serverKey, client_ca_file: pki.caFile });
        s = await startTestSidecar({}, { configPath, client: { tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }, deadlineMs: 5000 } });
      });
      after(async () => {
        for (const c of clients) c.close();
        await s?.stop();
      });

      it("a client with a certificate from the client CA works", async function () {
        const ns = freshNamespace();
        expect(await s.client.put(ns, "k", buf("mtls"))).to.deep.equal({ version: "1" });
        expect((await s.client.get(ns, "k")).item!.value.toString()).to.equal("mtls");
      });

      it("a TLS client without a certificate is refused", async function () {
        const err = await grpcError(client({ tls: { ca: pki.ca } }).get(freshNamespace(), "k"));
        expect(err.code, err.details).to.equal(grpc.status.UNAVAILABLE);
      });

      it("a client with a certificate from another CA is refused", async function () {
        const err = await grpcError(client({ tls: { ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey } }).get(freshNamespace(), "k"));
        expect(err.code, err.details).to.equal(grpc.status.UNAVAILABLE);
      });

      it("a plaintext client is refused", async function () {
        const err = await grpcError(client({}).get(freshNamespace(), "k"));
        expect(err.code, err.details).to.equal(grpc.status.UNAVAILABLE);
      });
    });
  });

  describe("admin token", function () {
    let s: Running;
    const clients: DecantClient[] = [];
    const client = (token?: string) => {
      const c = new DecantClient(`127.0.0.1:${s.sidecar.grpcPort}`, { token, deadlineMs: 5000 });
      clients.push(c);
      return c;
    };
    before(async () => {
      s = await startTestSidecar({ DECANT_ADMIN_TOKEN: "s3cret" });
    });
    after(async () => {
      for (const c of clients) c.close();
      await s?.stop();
    });

    it("Migration GetStatus without a token is UNAUTHENTICATED", async function () {
      const err = await grpcError(client().call("migration", "GetStatus", {}));
      expect(err.code, err.details).to.equal(grpc.status.UNAUTHENTICATED);
      expect(err.details).to.match(/admin token/);
    });

    it("Migration GetStatus with a wrong token is UNAUTHENTICATED", async function () {
      for (const wrong of ["s3cre", "s3cret!", "S3CRET", "nope"]) {
        const err = await grpcError(client(wrong).call("migration", "GetStatus", {}));
        expect(err.code, `${wrong}: ${err.details}`).to.equal(grpc.status.UNAUTHENTICATED);
      }
    });

    it("a token not sent as a bearer token is UNAUTHENTICATED", async function () {
      const c = client();
      const md = new grpc.Metadata();
      md.set("authorization", "s3cret");
      const err = await grpcError(
        new Promise((resolve, reject) =>
          (c.migration as unknown as Record<string, (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: Error | null, r: unknown) => void) => void>).GetStatus!.call(
            c.migration,
            {},
            md,
            { deadline: Date.now() + 5000 },
            (e, r) => (e ? reject(e) : resolve(r)),
          ),
        ),
      );
      expect(err.code, err.details).to.equal(grpc.status.UNAUTHENTICATED);
    });

    it("Migration GetStatus with the right token is OK", async function () {
      const status = await client("s3cret").call("migration", "GetStatus", {});
      expect(status.phase).to.equal("SINGLE");
      expect(status.current_store).to.equal("memory:");
    });

    it("every Migration RPC checks the token (each method of the service definition, so a new RPC is covered)", async function () {
      const definition = plainDefinition("Migration");
      const raw = new grpc.Client(`127.0.0.1:${s.sidecar.grpcPort}`, grpc.credentials.createInsecure());
      try {
        const refused: string[] = [];
        for (const [name, method] of Object.entries(definition)) {
          for (const token of [undefined, "wrong", "s3cre", "s3cret0"]) {
            const md = new grpc.Metadata();
            if (token !== undefined) md.set("authorization", `Bearer ${token}`);
            const err = await callRaw(raw, method, md);
            expect(err?.code, `${name} with ${token === undefined ? "no token" : `token ${JSON.stringify(token)}`}: ${err?.details}`).to.equal(grpc.status.UNAUTHENTICATED);
          }
          refused.push(name);
        }
        expect(refused).to.include.members(["GetStatus", "SetPhase", "StartBackfill", "PauseBackfill", "ResumeBackfill", "Verify", "Reset"]);
        expect((await client("s3cret").status()).phase, "nothing ran").to.equal("SINGLE");
      } finally {
        raw.close();
      }
    });

    it("Verify checks the token too (the stream ends with UNAUTHENTICATED)", async function () {
      const stream = client().stream("Verify", {});
      const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
        stream.on("data", () => reject(new Error("Verify streamed data without a token")));
        stream.on("error", resolve);
        stream.on("end", () => reject(new Error("Verify ended without an error")));
      });
      expect(err.code, err.details).to.equal(grpc.status.UNAUTHENTICATED);
      // Counted like every other call.
      const metrics = await (await fetch(`http://127.0.0.1:${s.sidecar.metricsPort}/metrics`)).text();
      expect(metrics).to.match(/^decant_requests_total\{rpc="Migration\/Verify",code="UNAUTHENTICATED",front="grpc"\} [1-9]/m);
    });

    it("the Store service does not need the token", async function () {
      const c = client();
      const ns = freshNamespace();
      expect(await c.put(ns, "k", buf("v"))).to.deep.equal({ version: "1" });
      expect((await c.get(ns, "k")).found).to.equal(true);
    });
  });

  describe("loud warning for a plaintext listener off loopback", function () {
    it("listening on 0.0.0.0 without TLS logs a warning that says WITHOUT TLS", async function () {
      const cap = capturingLogger();
      const s = await startTestSidecar({ DECANT_LISTEN: "0.0.0.0:0" }, { logger: cap.logger });
      try {
        await s.client.put(freshNamespace(), "k", buf("v")); // still serves
      } finally {
        await s.stop();
      }
      const warnings = cap.lines().filter((l) => l.level === "warn" && l.message.includes("WITHOUT TLS"));
      expect(warnings, cap.text()).to.have.length(1);
      expect(warnings[0]!.message).to.include("0.0.0.0:0");
    });

    it("listening on 127.0.0.1 logs no such warning", async function () {
      const cap = capturingLogger();
      const s = await startTestSidecar({ DECANT_LISTEN: "127.0.0.1:0" }, { logger: cap.logger });
      await s.stop();
      expect(cap.lines().length, "the logger captured nothing").to.be.greaterThan(0);
      expect(cap.text()).not.to.include("WITHOUT TLS");
      expect(cap.lines().filter((l) => l.level === "warn")).to.deep.equal([]);
    });
  });

  describe("secrets are redacted", function () {
    const PASSWORD = "hunter2secret";
    const TOKEN = "tok-very-secret";
    let s: Running;
    let cap: ReturnType<typeof capturingLogger>;
    before(async () => {
      cap = capturingLogger();
      s = await startTestSidecar(
        {
          // An unreachable target: the sidecar starts (the target is only used once the
          // migration needs it), and the failures below have the URL at hand.
          DECANT_TARGET: `postgres://decant:${PASSWORD}@127.0.0.1:1/db?timeout_ms=500`,
          DECANT_ADMIN_TOKEN: TOKEN,
          DECANT_HEARTBEAT_MS: "50",
        },
        { logger: cap.logger, client: { token: TOKEN, deadlineMs: 10_000 } },
      );
    });
    after(async () => s?.stop());

    const noSecrets = (what: string, text: string) => {
      expect(text, what).not.to.include(PASSWORD);
      expect(text, what).not.to.include(TOKEN);
    };

    it("GetStatus shows the store URLs without the password", async function () {
      const status = await s.client.call("migration", "GetStatus", {});
      expect(status.target_store).to.match(/^postgres:\/\/decant:\*\*\*@127\.0\.0\.1:1\/db/);
      noSecrets("GetStatus", JSON.stringify(status));
    });

    it("failing calls carry no secrets in their errors, the status or the log", async function () {
      this.timeout(60_000);
      const failures: string[] = [];
      // A wrong token: its error must not echo the right one.
      const wrong = new DecantClient(`127.0.0.1:${s.sidecar.grpcPort}`, { token: "wrong", deadlineMs: 5000 });
      try {
        const err = await grpcError(wrong.call("migration", "GetStatus", {}));
        expect(err.code).to.equal(grpc.status.UNAUTHENTICATED);
        failures.push(err.details, metadataText(err.metadata));
      } finally {
        wrong.close();
      }
      // Bad input.
      const bad = await grpcError(s.client.call("store", "Put", { namespace: "Bad Namespace", key: "k", value: buf("v") }));
      expect(bad.code).to.equal(grpc.status.INVALID_ARGUMENT);
      failures.push(bad.details, metadataText(bad.metadata));
      // Calls that need the unreachable target.
      const record = (err: unknown) => {
        const e = err as grpc.ServiceError;
        failures.push(e.details ?? String(err), e.metadata ? metadataText(e.metadata) : "");
        return e;
      };
      // Refused: the target cannot be reached, and the error names it (redacted).
      const setPhase = await s.client.call("migration", "SetPhase", { phase: "DUAL_WRITE" }).then(() => null, record);
      expect(setPhase?.code, setPhase?.details).to.equal(grpc.status.UNAVAILABLE);
      // Refused too: a backfill needs DUAL_WRITE.
      await s.client.call("migration", "StartBackfill", {}).then(() => null, record);
      // The Store service still works on the current store.
      expect(await s.client.put(freshNamespace(), "k", buf("v"))).to.deep.equal({ version: "1" });
      // At least one failure named the target, and it did so redacted.
      expect(failures.join("\n")).to.include("decant:***@127.0.0.1:1");
      const status = await s.client.call("migration", "GetStatus", {});
      noSecrets("GetStatus after the failures", JSON.stringify(status));
      for (const f of failures) noSecrets("a failure", f);
      expect(cap.text()).to.include("starting decant");
      expect(cap.text()).to.include("127.0.0.1:1"); // the target was logged, just redacted
      noSecrets("the log", cap.text());
    });
  });
});
