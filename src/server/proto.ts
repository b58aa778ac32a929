// Loads the protocol once, into one protobufjs Root: the grpc-js service definitions are built
// from it, and its types serve the wire check of conditions and the error details.
//
// Not through proto-loader: it parses every file into a Root of its own and encodes a
// descriptor of every message for reflection. With grpc-health-check's own use of it (see
// health.ts) that was ~1.2 MB of an idle sidecar's heap and a quarter of its start-up
// garbage. definitionOf() builds what proto-loader builds for grpc-js; reflection loads
// proto-loader on its first call (grpc-server.ts).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import type * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

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

let cached: { root: protobuf.Root; definitions: Map<string, grpc.ServiceDefinition>; clients: Map<string, grpc.ServiceClientConstructor> } | undefined;

export function loadProtocol() {
  if (cached) return cached;
  const dir = protoDir();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (existsSync(join(dir, target)) ? join(dir, target) : target);
  root.loadSync([...PROTO_FILES, "google/rpc/status.proto"], { keepCase: true });
  root.resolveAll();
  cached = { root, definitions: new Map(), clients: new Map() };
  return cached;
}

export function serviceDefinition(name: "Store" | "Migration"): grpc.ServiceDefinition {
  const { root, definitions } = loadProtocol();
  let definition = definitions.get(name);
  if (!definition) definitions.set(name, (definition = definitionOf(root, `decant.v1.${name}`, LOADER_OPTIONS)));
  return definition;
}

export function clientConstructor(name: "Store" | "Migration"): grpc.ServiceClientConstructor {
  const { clients } = loadProtocol();
  let client = clients.get(name);
  if (!client) clients.set(name, (client = grpc.makeClientConstructor(serviceDefinition(name), name)));
  return client;
}

const CONDITION = ".decant.v1.Condition";

/**
 * Finds a field inside any Condition of an encoded request that this server does not know,
 * and returns its path (e.g. "writes[2].put.condition.<field 7>"). protobuf drops unknown
 * fields silently; in a condition that would turn a newer client's conditional write into
 * an unconditional one, so the server refuses it instead.
 */
export function unknownConditionField(type: protobuf.Type, buf: Uint8Array, path = "", inCondition = false): string | null {
  const reader = protobuf.Reader.create(buf);
  const seen = new Map<number, number>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wireType = tag & 7;
    const field = type.fieldsById[id];
    if (!field) {
      if (inCondition) return `${path}.<field ${id}>`;
      reader.skipType(wireType);
      continue;
    }
    const sub = field.resolvedType;
    if (wireType === 2 && sub instanceof protobuf.Type && (sub.fullName === CONDITION || hasCondition(sub))) {
      const index = seen.get(id) ?? 0;
      seen.set(id, index + 1);
      const at = `${path ? `${path}.` : ""}${field.name}${field.repeated ? `[${index}]` : ""}`;
      const found = unknownConditionField(sub, reader.bytes(), at, inCondition || sub.fullName === CONDITION);
      if (found) return found;
    } else {
      reader.skipType(wireType);
    }
  }
  return null;
}

const conditionCache = new Map<string, boolean>();
function hasCondition(type: protobuf.Type, seen = new Set<string>()): boolean {
  const cachedValue = conditionCache.get(type.fullName);
  if (cachedValue !== undefined) return cachedValue;
  if (seen.has(type.fullName)) return false;
  seen.add(type.fullName);
  const result = type.fieldsArray.some((f) => {
    const t = f.resolvedType;
    return t instanceof protobuf.Type && (t.fullName === CONDITION || hasCondition(t, seen));
  });
  conditionCache.set(type.fullName, result);
  return result;
}
