// decant.v1.Store: decodes and validates requests, calls the Store (passing the call's caller
// down, so store work not yet started stops once the client has gone), encodes responses.
import * as grpc from "@grpc/grpc-js";
import { invalidArgument } from "../protocol/errors.js";
import { validateCondition, validateKey, validateKeys, validateNamespace, validatePageSize, validateValue, validateWrites, type Limits } from "../protocol/validate.js";
import type { Store } from "../protocol/store.js";
import type { Item, WriteOutcome } from "../protocol/types.js";
import type { Item as WireItem } from "../wire/generated/decant/v1/Item.js";
import type { WriteResult } from "../wire/generated/decant/v1/WriteResult.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import type { Handlers, UnaryHandlerFactory } from "./rpc.js";
import { codeOf, toServiceError } from "./status.js";

const itemMessage = (i: Item): WireItem => ({ key: i.key, value: i.value, version: i.version.toString() });

const writeResult = (o: WriteOutcome): WriteResult =>
  o.ok
    ? { key: o.key, version: o.version.toString(), code: grpc.status.OK, message: "", deleted: o.deleted ?? false }
    : {
        key: o.key,
        version: "0",
        code: codeOf(o.error),
        message: toServiceError(o.error).details ?? o.error.message,
        current_version: (o.error.currentVersion ?? 0n).toString(),
      };

export function storeHandlers(store: () => Store, limits: () => Limits, unary: UnaryHandlerFactory<"Store">): Handlers<"Store"> {
  return {
    Get: unary("Get", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const key = validateKey(req.key);
      const item = await store().get(ns, key, caller);
      return item ? { found: true, item: itemMessage(item) } : { found: false };
    }),

    BatchGet: unary("BatchGet", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const keys = validateKeys(req.keys);
      if (keys.length === 0) return { items: [] };
      return { items: (await store().batchGet(ns, keys, caller)).map(itemMessage) };
    }),

    Put: unary("Put", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const key = validateKey(req.key);
      const value = validateValue(req.value, limits());
      const condition = validateCondition(req.condition);
      return { version: (await store().put(ns, key, value, condition, undefined, caller)).toString() };
    }),

    Delete: unary("Delete", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const key = validateKey(req.key);
      const condition = validateCondition(req.condition);
      const r = await store().delete(ns, key, condition, undefined, caller);
      return { deleted: r.deleted, version: r.version.toString() };
    }),

    BatchWrite: unary("BatchWrite", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const ops = validateWrites(req.writes, limits());
      if (ops.length === 0) return { results: [] };
      return { results: (await store().batchWrite(ns, ops, caller)).map(writeResult) };
    }),

    Scan: unary("Scan", async (req, _call, caller) => {
      const ns = validateNamespace(req.namespace);
      const prefix = typeof req.prefix === "string" ? req.prefix : "";
      if (Buffer.byteLength(prefix) > 1024) throw invalidArgument("prefix", "is longer than the longest key (1024 bytes)");
      const limit = validatePageSize(req.page_size);
      const cursor = req.page_token ? decodePageToken(req.page_token, ns, prefix) : undefined;
      const page = await store().scan(ns, { prefix: prefix || undefined, limit, cursor }, caller);
      return { items: page.items.map(itemMessage), next_page_token: page.cursor === undefined ? "" : encodePageToken(ns, prefix, page.cursor) };
    }),
  };
}
