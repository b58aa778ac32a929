import type * as grpc from "@grpc/grpc-js";
import type { Metrics } from "../metrics/metrics.js";
import { invalidArgument } from "../protocol/errors.js";
import { wireProblemOf } from "./proto.js";
import { STATUS_NAMES } from "../wire/status.js";
import { codeOf, toServiceError } from "./status.js";

export type UnaryHandlerFactory = <Req, Res>(rpc: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) => grpc.handleUnaryCall<Req, Res>;
/** fn writes the stream's messages; the stream ends when it resolves, with its error's status when it rejects. */
export type ServerStreamHandlerFactory = <Req, Res>(rpc: string, fn: (req: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>) => grpc.handleServerStreamingCall<Req, Res>;
type OnError = (rpc: string, err: unknown) => void;

/**
 * Runs fn for one call of service/rpc, times and counts it by status code, reports failures to
 * onError, and hands the outcome (or the error as a gRPC status) to `done`. A request whose
 * raw bytes the wire check refused (proto.ts) is refused here, before fn sees it.
 */
function instrumented<T>(service: string, rpc: string, metrics: Metrics, onError: OnError) {
  const name = `${service}/${rpc}`;
  const duration = metrics.requestDuration.labels(name, "grpc");
  return (request: unknown, run: () => Promise<T>, done: (err: Partial<grpc.ServiceError> | null, result?: T) => void): void => {
    const start = process.hrtime.bigint();
    const finish = (code: string) => {
      duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
      metrics.requests.labels(name, code, "grpc").inc();
    };
    const problem = wireProblemOf(request);
    (problem ? Promise.reject(invalidArgument(problem.field, problem.message)) : run()).then(
      (result) => {
        finish("OK");
        done(null, result);
      },
      (err: unknown) => {
        finish(STATUS_NAMES[codeOf(err)] ?? "UNKNOWN");
        onError(name, err);
        done(toServiceError(err));
      },
    );
  };
}

/** Builds unary handlers that count, time and map errors in one place. */
export function unaryFactory(service: string, metrics: Metrics, onError: OnError): UnaryHandlerFactory {
  return <Req, Res>(rpc: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> => {
    const call = instrumented<Res>(service, rpc, metrics, onError);
    return (unary, callback) => call(unary.request, () => fn(unary.request, unary), (err, res) => (err ? callback(err) : callback(null, res)));
  };
}

/** Builds server-streaming handlers, counted, timed and mapped like the unary ones. */
export function serverStreamFactory(service: string, metrics: Metrics, onError: OnError): ServerStreamHandlerFactory {
  return (rpc, fn) => {
    const call = instrumented<void>(service, rpc, metrics, onError);
    return (stream) =>
      call(
        stream.request,
        () => fn(stream.request, stream),
        // emit("error"), not destroy(): grpc-js sends the status only through its error listener.
        (err) => (err ? stream.emit("error", err) : stream.end()),
      );
  };
}
