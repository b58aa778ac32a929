// The wire's types, generated from proto/ (src/wire/generated, scripts/gen-wire-types.sh) for
// the options the runtime uses (LOADER_OPTIONS): so a misspelled field on either side is a type
// error, not a field protobuf silently drops.
import type { Long, MethodDefinition } from "@grpc/proto-loader";
import type { MigrationDefinition, MigrationHandlers } from "./generated/decant/v1/Migration.js";
import type { StoreDefinition, StoreHandlers } from "./generated/decant/v1/Store.js";

/** A generated service definition without grpc-js's string index signature: its methods only. */
type Methods<D> = { [K in keyof D as string extends K ? never : number extends K ? never : K]: D[K] };

export interface Services {
  Store: Methods<StoreDefinition>;
  Migration: Methods<MigrationDefinition>;
}
interface Handlers {
  Store: StoreHandlers;
  Migration: MigrationHandlers;
}
export type ServiceName = keyof Services;
export type MethodName<S extends ServiceName> = keyof Services[S] & string;

type Part<S extends ServiceName, M extends MethodName<S>, I extends 0 | 1 | 2 | 3> =
  Services[S][M] extends MethodDefinition<infer Req, infer Res, infer ReqOut, infer ResOut> ? [Req, Res, ReqOut, ResOut][I] : never;

/** What a client sends (permissive: uint64 as number, string or Long; enums by name or number). */
export type RequestOf<S extends ServiceName, M extends MethodName<S>> = Part<S, M, 0>;
/** What a handler answers (permissive, like a request). */
export type ReplyOf<S extends ServiceName, M extends MethodName<S>> = Part<S, M, 1>;
/** What a handler receives, as decoded: uint64 as decimal strings, enums by name, bytes as Buffer, defaults filled. */
export type ReceivedOf<S extends ServiceName, M extends MethodName<S>> = Part<S, M, 2>;
/** What a client receives, decoded like a received request. */
export type ResponseOf<S extends ServiceName, M extends MethodName<S>> = Part<S, M, 3>;

/**
 * The fields of T that Shape does not have, at any depth, as a union of their names (never when
 * there are none). TypeScript checks extra fields only on an object literal assigned straight to
 * a type, not on what a function returns: the handler factories use this so a misspelled response
 * field is a type error all the same.
 */
export type UnknownFields<T, Shape> = T extends Buffer | Uint8Array | Long | string | number | boolean | bigint | null | undefined
  ? never
  : T extends readonly (infer E)[]
    ? NonNullable<Shape> extends readonly (infer SE)[]
      ? UnknownFields<E, SE>
      : never
    : { [K in keyof T]-?: K extends keyof NonNullable<Shape> ? UnknownFields<T[K], NonNullable<Shape>[K]> : K }[keyof T];

/** Methods whose response is a stream (Verify), and the unary ones. */
// A unary handler takes a callback too, so only a streaming one fits (call) => void.
export type StreamMethod<S extends ServiceName> = { [M in MethodName<S>]: Parameters<Handlers[S][M]>["length"] extends 1 ? M : never }[MethodName<S>];
export type UnaryMethod<S extends ServiceName> = Exclude<MethodName<S>, StreamMethod<S>>;

export type { Item__Output as WireItem } from "./generated/decant/v1/Item.js";
export type { Condition as WireCondition } from "./generated/decant/v1/Condition.js";
export type { GetStatusResponse__Output as MigrationStatus } from "./generated/decant/v1/GetStatusResponse.js";
export type { VerifyReport__Output as VerifyReport } from "./generated/decant/v1/VerifyReport.js";
export type { Phase__Output as WirePhase } from "./generated/decant/v1/Phase.js";
