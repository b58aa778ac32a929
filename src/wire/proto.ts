// The protocol, loaded once into one protobufjs Root that both sides use: the server builds its
// service definitions from it (src/server/proto.ts adds the wire check), the client its
// constructors, and both the google.rpc error details.
//
// Not through proto-loader: it parses every file into a Root of its own and encodes a
// descriptor of every message for reflection. With grpc-health-check's own use of it (see
// src/server/health.ts) that was ~1.2 MB of an idle sidecar's heap and a quarter of its start-up
// garbage. definitionOf() builds what proto-loader builds for grpc-js; reflection loads
// proto-loader on its first call (src/server/grpc-server.ts).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import type { ServiceName } from "./types.js";

/** proto/ sits at the repository root; this file may run from src/ or from dist/src/. */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, "proto", "decant", "v1", "store.proto"))) return join(dir, "proto");
    dir = dirname(dir);
  }
  throw new Error("cannot find the proto/ directory next to the Decant sources");
}

export const PROTO_FILES = ["decant/v1/store.proto", "decant/v1/migration.proto"];

/** How messages become objects and back; the generated types (src/wire/generated, scripts/gen-wire-types.sh) describe exactly these. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String, // uint64 versions as decimal strings, converted to bigint at the edge
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [],
};

/**
 * A grpc-js service definition for a service of a resolved Root, with the serialisers
 * proto-loader gives it: fromObject + encode out, decode + toObject(options) in.
 */
export function definitionOf(root: protobuf.Root, service: string, options: protobuf.IConversionOptions): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of root.lookupService(service).methodsArray) {
    const [request, response] = [method.resolvedRequestType!, method.resolvedResponseType!];
    definition[method.name] = {
      path: `/${service}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: serializer(request),
      requestDeserialize: (buf: Buffer) => request.toObject(request.decode(buf), options),
      responseSerialize: serializer(response),
      responseDeserialize: (buf: Buffer) => response.toObject(response.decode(buf), options),
      originalName: method.name[0]!.toLowerCase() + method.name.slice(1), // the camelCase alias clients also get
    };
  }
  return definition;
}

function serializer(type: protobuf.Type) {
  return (value: object): Buffer => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    return type.encode(type.fromObject(value)).finish() as Buffer;
  };
}

let root: protobuf.Root | undefined;

/** The Decant protocol and google.rpc.Status, resolved. */
export function protocolRoot(): protobuf.Root {
  if (root) return root;
  const dir = protoDir();
  const loaded = new protobuf.Root();
  loaded.resolvePath = (_origin, target) => (existsSync(join(dir, target)) ? join(dir, target) : target);
  loaded.loadSync([...PROTO_FILES, "google/rpc/status.proto"], { keepCase: true });
  loaded.resolveAll();
  return (root = loaded);
}

/** The plain definition of a service (the server's adds the wire check of requests). */
export const plainDefinition = (name: ServiceName): grpc.ServiceDefinition => definitionOf(protocolRoot(), `decant.v1.${name}`, LOADER_OPTIONS);

const clients = new Map<ServiceName, grpc.ServiceClientConstructor>();

export function clientConstructor(name: ServiceName): grpc.ServiceClientConstructor {
  let client = clients.get(name);
  if (!client) clients.set(name, (client = grpc.makeClientConstructor(plainDefinition(name), name)));
  return client;
}
