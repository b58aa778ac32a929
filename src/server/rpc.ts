// The one place handlers are built. Every call of every service is counted, timed, checked
// (the wire check, then the service's authorisation), given its caller (a ServedCall, cancelled
// when the client cancels or the deadline passes; the handler passes it down to the store, so
// store work not yet started stops: src/protocol/call.ts), and its errors mapped to gRPC
// statuses (status.ts).
import type * as grpc from "@grpc/grpc-js";
import type { Metrics } from "../metrics/metrics.js";
import { ServedCall, type Caller } from "../protocol/call.js";
import { invalidArgument } from "../protocol/errors.js";
import { STATUS_NAMES } from "../wire/status.js";
import type { MethodName, ReceivedOf, ReplyOf, ServiceName, StreamMethod, UnaryMethod, UnknownFields } from "../wire/types.js";
import { wireProblemOf } from "./proto.js";
import { codeOf, toServiceError } from "./status.js";

declare const built: unique symbol;
/** A handler made by a factory below (so counted, checked and authorised); a service can hold no other. */
export type BuiltHandler = grpc.UntypedHandleCall & { readonly [built]: true };
/** A service's handlers: one per method of its definition, each built here. */
export type Handlers<S extends ServiceName> = Record<MethodName<S>, BuiltHandler>;

/** A misspelled response field asks for a third argument, naming the field: a type error at the handler. */
type NoUnknownFields<R, Reply> = [UnknownFields<R, Reply>] extends [never] ? [] : [unknownResponseField: UnknownFields<R, Reply>];

export type UnaryHandlerFactory<S extends ServiceName> = <M extends UnaryMethod<S>, R extends ReplyOf<S, M>>(
  rpc: M,
  fn: (req: ReceivedOf<S, M>, call: grpc.ServerUnaryCall<ReceivedOf<S, M>, ReplyOf<S, M>>, caller: Caller) => Promise<R>,
  ...check: NoUnknownFields<R, ReplyOf<S, M>>
) => BuiltHandler;
/** fn writes the stream's messages; the stream ends when it resolves, with its error's status when it rejects. `caller`: as for unary calls. */
export type ServerStreamHandlerFactory<S extends ServiceName> = <M extends StreamMethod<S>>(
  rpc: M,
  fn: (req: ReceivedOf<S, M>, call: grpc.ServerWritableStream<ReceivedOf<S, M>, ReplyOf<S, M>>, caller: Caller) => Promise<void>,
) => BuiltHandler;

type OnError = (rpc: string, err: unknown) => void;

export interface CallPolicy {
  metrics: Metrics;
  onError: OnError;
  /** Throws (unauthenticated) when the call's metadata may not use this service; run before anything else of the call. */
  authorize?: (metadata: grpc.Metadata) => void;
}

type ServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/**
 * Runs fn for one call of service/rpc, times and counts it by status code, reports failures to
 * onError, and hands the outcome (or the error as a gRPC status) to `done`. A call whose
 * metadata `authorize` refuses, or whose raw bytes the wire check refused (proto.ts), is refused
 * here, before fn sees it.
 */
function instrumented<T>(service: string, rpc: string, policy: CallPolicy) {
  const { metrics, onError, authorize } = policy;
  const name = `${service}/${rpc}`;
  const duration = metrics.requestDuration.labels(name, "grpc");
  // Each status's counter child, looked up once (labels() builds a key string per call).
  const counted = new Map<string, { inc(): void }>();
  const counter = (code: string) => counted.get(code) ?? counted.set(code, metrics.requests.labels(name, code, "grpc")).get(code)!;
  const ok = counter("OK");
  return (call: ServerCall, run: (caller: Caller) => Promise<T>, done: (err: Partial<grpc.ServiceError> | null, result?: T) => void): void => {
    const start = performance.now();
    // grpc-js emits "cancelled" on a client cancel, on the deadline, and also after any status
    // is sent: so the listener is disarmed before `done`, or work the call left running (a
    // backfill it started) would be cancelled with it. Disarmed by a flag, not removed: the call
    // object goes with its listener, and once()/off() were a listener wrapper and a scan per call.
    const caller = new ServedCall();
    let settled = false;
    const cancel = () => settled || caller.cancel(new Error(`${name}: the client cancelled or its deadline passed`));
    call.on("cancelled", cancel);
    if (call.cancelled) cancel();
    const finish = (count: { inc(): void }) => {
      settled = true;
      duration.observe((performance.now() - start) / 1000);
      count.inc();
    };
    let outcome: Promise<T>;
    try {
      admit(call, authorize);
      outcome = run(caller);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      (result) => {
        finish(ok);
        done(null, result);
      },
      (err: unknown) => {
        finish(counter(STATUS_NAMES[codeOf(err)] ?? "UNKNOWN"));
        onError(name, err);
        done(toServiceError(err));
      },
    );
  };
}

/** Throws when the service's authorisation refuses the call's metadata, or the wire check its request's bytes. */
function admit(call: ServerCall, authorize: CallPolicy["authorize"]): void {
  authorize?.(call.metadata);
  const problem = wireProblemOf(call.request);
  if (problem) throw invalidArgument(problem.field, problem.message);
}

/** Builds unary handlers that count, time, authorise and map errors in one place. */
export function unaryFactory<S extends ServiceName>(service: S, policy: CallPolicy): UnaryHandlerFactory<S> {
  return (rpc, fn, ..._typeCheckOnly) => {
    const call = instrumented<ReplyOf<S, typeof rpc>>(service, rpc, policy);
    const handler: grpc.handleUnaryCall<ReceivedOf<S, typeof rpc>, ReplyOf<S, typeof rpc>> = (unary, callback) =>
      call(unary as ServerCall, (caller) => fn(unary.request, unary, caller), (err, res) => (err ? callback(err) : callback(null, res)));
    return handler as unknown as BuiltHandler;
  };
}

/** Builds server-streaming handlers, counted, timed, authorised and mapped like the unary ones. */
export function serverStreamFactory<S extends ServiceName>(service: S, policy: CallPolicy): ServerStreamHandlerFactory<S> {
  return (rpc, fn) => {
    const call = instrumented<void>(service, rpc, policy);
    const handler: grpc.handleServerStreamingCall<ReceivedOf<S, typeof rpc>, ReplyOf<S, typeof rpc>> = (stream) =>
      call(
        stream as ServerCall,
        (caller) => fn(stream.request, stream, caller),
        // emit("error"), not destroy(): grpc-js sends the status only through its error listener.
        (err) => (err ? stream.emit("error", err) : stream.end()),
      );
    return handler as unknown as BuiltHandler;
  };
}
