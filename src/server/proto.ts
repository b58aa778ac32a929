// The server's side of the protocol: its service definitions run the wire check of requests
// (wireProblem) before protobufjs decodes them. Loading and the serialisers are shared with the
// client (src/wire/proto.ts).
import { isUtf8 } from "node:buffer";
import type * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { plainDefinition, protocolRoot } from "../wire/proto.js";
import type { ServiceName } from "../wire/types.js";

const definitions = new Map<ServiceName, grpc.ServiceDefinition>();

export function serviceDefinition(name: ServiceName): grpc.ServiceDefinition {
  let definition = definitions.get(name);
  if (!definition) definitions.set(name, (definition = withWireCheck(protocolRoot(), plainDefinition(name))));
  return definition;
}

/**
 * grpc-js maps a deserialiser that throws to INTERNAL; these never throw: a request the wire
 * check refuses arrives marked, and the handler wrapper (rpc.ts) refuses it as INVALID_ARGUMENT.
 */
function withWireCheck(root: protobuf.Root, definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const checked: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const request = root.lookupService(method.path.split("/")[1]!).methods[name]!.resolvedRequestType!;
    checked[name] = { ...method, requestDeserialize: checkedDeserializer(request, method.requestDeserialize) };
  }
  return checked;
}

const CONDITION = ".decant.v1.Condition";

/** A request the wire check refused: the field at fault (e.g. "writes[3].put.key") and why. */
export interface WireProblem {
  field: string;
  message: string;
}

/** Marks a decoded request whose raw bytes the wire check refused (see rpc.ts). */
export const WIRE_PROBLEM = Symbol("decant.wireProblem");

export function wireProblemOf(request: unknown): WireProblem | undefined {
  return typeof request === "object" && request !== null ? (request as { [WIRE_PROBLEM]?: WireProblem })[WIRE_PROBLEM] : undefined;
}

const WIRE_NAMES = ["varint", "fixed64", "length-delimited", "group start", "group end", "fixed32", "wire type 6", "wire type 7"];
const WIRE_OF: Record<string, number> = {
  ...Object.fromEntries(["int32", "uint32", "sint32", "int64", "uint64", "sint64", "bool"].map((t) => [t, 0])),
  ...Object.fromEntries(["fixed64", "sfixed64", "double"].map((t) => [t, 1])),
  ...Object.fromEntries(["fixed32", "sfixed32", "float"].map((t) => [t, 5])),
  string: 2,
  bytes: 2,
};
const wireTypeOf = (field: protobuf.Field): number => (field.resolvedType instanceof protobuf.Type ? 2 : field.resolvedType instanceof protobuf.Enum ? 0 : WIRE_OF[field.type]!);
/** Where the walk is, as segments joined only for an error: ["writes", 3, "put", "key"] is "writes[3].put.key". */
type Trail = (string | number)[];
const named = (trail: Trail) => trail.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("") || "request";

/**
 * Walks an encoded message against its type and returns the first thing protobuf would
 * silently repair or misread, before anything is decoded: a string that is not UTF-8 (decoding
 * would turn it into U+FFFD, so distinct keys would collide), a field sent with another wire
 * type, a 32-bit field holding more, a singular field or a second member of a oneof sent twice
 * (the last would win), a field a Condition does not have (dropping it would turn a newer
 * client's conditional write into an unconditional one), and bytes that end mid-field.
 */
export function wireProblem(type: protobuf.Type, buf: Uint8Array): WireProblem | null {
  const reader = protobuf.Reader.create(buf);
  const trail: Trail = [];
  try {
    return messageProblem(type, reader, reader.len, trail);
  } catch (err) {
    const message = (err as Error).message.replace(/^index out of range.*/, "its length runs past the end of the message");
    return { field: named(trail), message: `cannot be decoded: ${message}` };
  }
}

/** Walks one message from reader.pos to end; `trail` names the field being read when something throws. */
function messageProblem(type: protobuf.Type, reader: protobuf.Reader, end: number, trail: Trail): WireProblem | null {
  const depth = trail.length;
  const counts: number[] = [];
  let oneofs: Record<string, string> | undefined;
  while (reader.pos < end) {
    trail.length = depth;
    const tag = reader.uint32();
    const [id, wire] = [tag >>> 3, tag & 7];
    const known = type.fieldsById[id];
    if (!known) {
      trail.push(`<field ${id}>`);
      if (type.fullName === CONDITION) return { field: named(trail), message: "is not a field of decant.v1.Condition (this server would ignore it, so the write is refused)" };
      if (id === 0) return { field: named(trail), message: "is not a valid field number" };
      reader.skipType(wire);
      continue;
    }
    const count = counts[id] ?? 0;
    counts[id] = count + 1;
    trail.push(known.name);
    if (known.repeated) trail.push(count);
    if (!known.repeated && count > 0) return { field: named(trail), message: "is set more than once (protobuf would keep only the last)" };
    const oneof = known.partOf?.name;
    if (oneof) {
      const other = oneofs?.[oneof];
      if (other) return { field: depth ? named(trail.slice(0, depth)) : oneof, message: `sets both ${other} and ${known.name}; set only one` };
      (oneofs ??= {})[oneof] = known.name;
    }
    const problem = fieldProblem(known, wire, reader, trail);
    if (problem) return problem;
  }
  if (reader.pos > end) throw new RangeError("index out of range");
  return null;
}

function fieldProblem(field: protobuf.Field, wire: number, reader: protobuf.Reader, trail: Trail): WireProblem | null {
  const expected = wireTypeOf(field);
  const packed = field.repeated && expected !== 2 && wire === 2;
  if (wire !== expected && !packed) return { field: named(trail), message: `is sent as ${WIRE_NAMES[wire]}; a ${field.type} field is ${WIRE_NAMES[expected]}` };
  if (expected === 2) {
    const length = reader.uint32();
    const end = reader.pos + length;
    if (end > reader.len) throw new RangeError("index out of range");
    if (packed) return packedProblem(field, reader, end, trail);
    if (field.resolvedType instanceof protobuf.Type) return messageProblem(field.resolvedType, reader, end, trail);
    const utf8 = field.type !== "string" || isUtf8(reader.buf.subarray(reader.pos, end));
    reader.pos = end;
    return utf8 ? null : { field: named(trail), message: "is not valid UTF-8" };
  }
  if (expected === 0) return varintProblem(field, reader, trail);
  reader.skipType(wire);
  return null;
}

/** A varint that a 32-bit field (or an enum) cannot hold would be cut to its low 32 bits. */
function varintProblem(field: protobuf.Field, reader: protobuf.Reader, trail: Trail): WireProblem | null {
  const v = reader.uint64() as unknown as { low: number; high: number };
  const signed = field.type === "int32" || field.resolvedType instanceof protobuf.Enum;
  const fits = signed ? v.high === v.low >> 31 : !["uint32", "sint32"].includes(field.type) || v.high === 0;
  return fits ? null : { field: named(trail), message: `does not fit in a ${field.resolvedType instanceof protobuf.Enum ? "enum" : field.type}` };
}

function packedProblem(field: protobuf.Field, reader: protobuf.Reader, end: number, trail: Trail): WireProblem | null {
  const wire = wireTypeOf(field);
  while (reader.pos < end) {
    const problem = wire === 0 ? varintProblem(field, reader, trail) : (reader.skipType(wire), null);
    if (problem) return problem;
  }
  if (reader.pos > end) throw new RangeError("index out of range");
  return null;
}

/** grpc-js request deserialisers that run the wire check first and mark what it refuses. */
function checkedDeserializer(type: protobuf.Type, decode: (buf: Buffer) => object): (buf: Buffer) => object {
  return (buf) => {
    const problem = wireProblem(type, buf);
    if (problem) return { [WIRE_PROBLEM]: problem };
    try {
      return decode(buf);
    } catch (err) {
      return { [WIRE_PROBLEM]: { field: "request", message: `cannot be decoded: ${(err as Error).message}` } };
    }
  };
}
