// A small promise client for the Decant protocol, used by the CLI, the demo and the tests.
// Requests and responses are the generated wire types (src/wire/types.ts).
import * as grpc from "@grpc/grpc-js";
import { clientConstructor } from "../wire/proto.js";
import { AUTHORIZATION_METADATA, bearer } from "../wire/status.js";
import type { RequestOf, ResponseOf, StreamMethod, UnaryMethod, WireCondition } from "../wire/types.js";

export interface ClientOptions {
  /** Bearer token for the Migration service. */
  token?: string;
  /** TLS: CA to trust, and a client certificate for mTLS. */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer; serverName?: string };
  deadlineMs?: number;
}

const SERVICES = { store: "Store", migration: "Migration" } as const;
type Services = typeof SERVICES;
type Service = keyof Services;

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

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
    if (options.token) this.metadata.set(AUTHORIZATION_METADATA, bearer(options.token));
  }

  /** Calls a unary method with its wire types; errors are grpc ServiceErrors (code, details, metadata). */
  request<S extends Service, M extends UnaryMethod<Services[S]>>(service: S, method: M, req: RequestOf<Services[S], M>, deadlineMs?: number): Promise<ResponseOf<Services[S], M>> {
    return this.call(service, method, req as object, deadlineMs);
  }

  /**
   * Calls a unary method without the wire types: for tests that send what the types refuse (a
   * phase that does not exist, a field of the wrong type). Everything else uses request().
   */
  call<T = any>(service: Service, method: string, req: object, deadlineMs = this.options.deadlineMs ?? 30_000): Promise<T> {
    const client = this[service] as unknown as Record<string, Unary>;
    const fn = client[method];
    if (!fn) return Promise.reject(new Error(`no method ${method}`));
    return new Promise((resolve, reject) =>
      fn.call(client, req, this.metadata, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  }

  /** Opens a server stream (Verify). */
  stream<M extends StreamMethod<"Migration">>(method: M, req: RequestOf<"Migration", M>): grpc.ClientReadableStream<ResponseOf<"Migration", M>> {
    const client = this.migration as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<ResponseOf<"Migration", M>>>;
    return client[method]!.call(client, req as object, this.metadata);
  }

  /** Migration.GetStatus. */
  status(deadlineMs?: number) {
    return this.request("migration", "GetStatus", {}, deadlineMs);
  }

  get(namespace: string, key: string) {
    return this.request("store", "Get", { namespace, key });
  }

  put(namespace: string, key: string, value: Buffer, condition?: WireCondition) {
    return this.request("store", "Put", { namespace, key, value, condition });
  }

  delete(namespace: string, key: string, condition?: WireCondition) {
    return this.request("store", "Delete", { namespace, key, condition });
  }

  scan(namespace: string, prefix = "", page_size = 0, page_token = "") {
    return this.request("store", "Scan", { namespace, prefix, page_size, page_token });
  }

  waitForReady(ms = 5000): Promise<void> {
    return new Promise((resolve, reject) => this.store.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.store.close();
    this.migration.close();
  }
}
