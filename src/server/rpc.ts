import type * as grpc from "@grpc/grpc-js";
import type { Metrics } from "../metrics/metrics.js";
import { STATUS_NAMES, codeOf, toServiceError } from "./status.js";

export type UnaryHandlerFactory = <Req, Res>(rpc: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) => grpc.handleUnaryCall<Req, Res>;
/** fn writes the stream's messages; the stream ends when it resolves, with its error's status when it rejects. */
export type ServerStreamHandlerFactory = <Req, Res>(rpc: string, fn: (req: Req, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>) => grpc.handleServerStreamingCall<Req, Res>;

/** Builds unary handlers that count, time and map errors in one place. */
export function unaryFactory(service: string, metrics: Metrics, onError: (rpc: string, err: unknown) => void): UnaryHandlerFactory {
  return (rpc, fn) => {
    const name = `${service}/${rpc}`;
    const duration = metrics.requestDuration.labels(name);
    return (call, callback) => {
      const start = process.hrtime.bigint();
      fn(call.request, call).then(
        (res) => {
          duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
          metrics.requests.labels(name, "OK").inc();
          callback(null, res);
        },
        (err: unknown) => {
          duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
          metrics.requests.labels(name, STATUS_NAMES[codeOf(err)] ?? "UNKNOWN").inc();
          onError(name, err);
          callback(toServiceError(err));
        },
      );
    };
  };
}

/** Builds server-streaming handlers, counted, timed and mapped like the unary ones. */
export function serverStreamFactory(service: string, metrics: Metrics, onError: (rpc: string, err: unknown) => void): ServerStreamHandlerFactory {
  return (rpc, fn) => {
    const name = `${service}/${rpc}`;
    const duration = metrics.requestDuration.labels(name);
    return (call) => {
      const start = process.hrtime.bigint();
      fn(call.request, call).then(
        () => {
          duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
          metrics.requests.labels(name, "OK").inc();
          call.end();
        },
        (err: unknown) => {
          duration.observe(Number(process.hrtime.bigint() - start) / 1e9);
          metrics.requests.labels(name, STATUS_NAMES[codeOf(err)] ?? "UNKNOWN").inc();
          onError(name, err);
          // emit("error"), not destroy(): grpc-js sends the status only through its error listener.
          call.emit("error", toServiceError(err));
        },
      );
    };
  };
}
