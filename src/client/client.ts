// A small promise client for the Decant protocol, used by the CLI, the demo and the tests.
import * as grpc from "@grpc/grpc-js";
import { clientConstructor } from "../server/proto.js";

export interface ClientOptions {
  /** Bearer token for the Migration service. */
  token?: string;
  /** TLS: CA to trust, and a client certificate for mTLS. */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  deadlineMs?: number;
}

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

export class DecantClient {
  readonly store: grpc.Client;
  readonly migration: grpc.Client;
  private readonly metadata = new grpc.Metadata();

  /** `address`: host:port, or unix:PATH for a sidecar listening on a Unix domain socket (grpc-js resolves both). */
  constructor(
    readonly address: string,
    private readonly options: ClientOptions = {},
  ) {
    const creds = options.tls ? grpc.credentials.createSsl(options.tls.ca, options.tls.key ?? null, options.tls.cert ?? null) : grpc.credentials.createInsecure();
    const channelOptions = options.tls?.serverName ? { "grpc.ssl_target_name_override": options.tls.serverName } : {};
    this.store = new (clientConstructor("Store"))(address, creds, channelOptions);
    this.migration = new (clientConstructor("Migration"))(address, creds, { ...channelOptions });
    if (options.token) this.metadata.set("authorization", `Bearer ${options.token}`);
  }

  /** Calls a unary method; errors are grpc ServiceErrors (code, details, metadata). */
  call<T = any>(service: "store" | "migration", method: string, req: object, deadlineMs = this.options.deadlineMs ?? 30_000): Promise<T> {
    const client = this[service] as unknown as Record<string, Unary>;
    const fn = client[method];
    if (!fn) return Promise.reject(new Error(`no method ${method}`));
    return new Promise((resolve, reject) =>
      fn.call(client, req, this.metadata, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  }

  /** Opens a server stream (Verify). */
  stream(method: string, req: object): grpc.ClientReadableStream<any> {
    const client = this.migration as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<unknown>>;
    return client[method]!.call(client, req, this.metadata);
  }

  get(namespace: string, key: string) {
    return this.call<{ found: boolean; item: { key: string; value: Buffer; version: string } | null }>("store", "Get", { namespace, key });
  }

  put(namespace: string, key: string, value: Buffer, condition?: { expected_version?: string; must_not_exist?: boolean }) {
    return this.call<{ version: string }>("store", "Put", { namespace, key, value, condition });
  }

  delete(namespace: string, key: string, condition?: { expected_version?: string; must_not_exist?: boolean }) {
    return this.call<{ deleted: boolean; version: string }>("store", "Delete", { namespace, key, condition });
  }

  scan(namespace: string, prefix = "", page_size = 0, page_token = "") {
    return this.call<{ items: { key: string; value: Buffer; version: string }[]; next_page_token: string }>("store", "Scan", { namespace, prefix, page_size, page_token });
  }

  waitForReady(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => this.store.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.store.close();
    this.migration.close();
  }
}
