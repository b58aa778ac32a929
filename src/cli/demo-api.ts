// The API the demo's load generator speaks: Decant's gRPC store protocol, or DynamoDB's API
// through an unmodified AWS SDK client pointed at the sidecar's DynamoDB front.
import * as grpc from "@grpc/grpc-js";
import { DecantClient } from "../client/client.js";
import type { Store } from "../protocol/store.js";
import { STATUS_NAMES } from "../wire/status.js";

export interface DemoApi {
  readonly name: string;
  /** The value a key holds, null when absent. */
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Loads items as the service would (a batch at a time). */
  preload(items: [string, string][], deletes: string[], store: Store): Promise<void>;
  /** A write held past a fence / the store unavailable: worth one more try. */
  retryable(err: unknown): boolean;
  describe(err: unknown): string;
  close(): void;
}

export function grpcApi(client: DecantClient, ns: string): DemoApi {
  return {
    name: "gRPC",
    get: async (key) => {
      const r = await client.get(ns, key);
      return r.found ? r.item!.value.toString("utf8") : null;
    },
    put: async (key, value) => void (await client.put(ns, key, Buffer.from(value))),
    delete: async (key) => (await client.delete(ns, key)).deleted,
    preload: async (items, deletes, store) => {
      for (let i = 0; i < items.length; i += 500) {
        const results = await store.batchWrite(ns, items.slice(i, i + 500).map(([key, value]) => ({ type: "put" as const, key, value: Buffer.from(value) })));
        const failed = results.find((r) => !r.ok);
        if (failed && !failed.ok) throw new Error(`preload failed at ${failed.key}: ${failed.error.message}`);
      }
      for (let i = 0; i < deletes.length; i += 500) await store.batchWrite(ns, deletes.slice(i, i + 500).map((key) => ({ type: "delete" as const, key })));
    },
    retryable: (err) => (err as grpc.ServiceError).code === grpc.status.UNAVAILABLE,
    describe: (err) => {
      const e = err as grpc.ServiceError;
      return `${STATUS_NAMES[e.code] ?? e.code} ${e.details ?? e.message}`;
    },
    close: () => undefined,
  };
}

/** An AWS SDK v3 DynamoDB client, as any service has it, with only its endpoint changed. */
export async function dynamodbApi(endpoint: string, table: string): Promise<DemoApi> {
  const sdk = await import("@aws-sdk/client-dynamodb");
  const client = new sdk.DynamoDBClient({ endpoint, region: "us-east-1", credentials: { accessKeyId: "demo", secretAccessKey: "demo" } });
  await client.send(new sdk.CreateTableCommand({ TableName: table, AttributeDefinitions: [{ AttributeName: "key", AttributeType: "S" }], KeySchema: [{ AttributeName: "key", KeyType: "HASH" }], BillingMode: "PAY_PER_REQUEST" }));
  const batch = async (requests: NonNullable<import("@aws-sdk/client-dynamodb").BatchWriteItemInput["RequestItems"]>[string]) => {
    let left = requests;
    while (left.length) {
      const r = await client.send(new sdk.BatchWriteItemCommand({ RequestItems: { [table]: left } }));
      left = r.UnprocessedItems?.[table] ?? [];
    }
  };
  return {
    name: "DynamoDB API (AWS SDK v3)",
    get: async (key) => (await client.send(new sdk.GetItemCommand({ TableName: table, Key: { key: { S: key } } }))).Item?.value?.S ?? null,
    put: async (key, value) => void (await client.send(new sdk.PutItemCommand({ TableName: table, Item: { key: { S: key }, value: { S: value } } }))),
    delete: async (key) => (await client.send(new sdk.DeleteItemCommand({ TableName: table, Key: { key: { S: key } }, ReturnValues: "ALL_OLD" }))).Attributes !== undefined,
    preload: async (items, deletes) => {
      for (let i = 0; i < items.length; i += 25) await batch(items.slice(i, i + 25).map(([key, value]) => ({ PutRequest: { Item: { key: { S: key }, value: { S: value } } } })));
      for (let i = 0; i < deletes.length; i += 25) await batch(deletes.slice(i, i + 25).map((key) => ({ DeleteRequest: { Key: { key: { S: key } } } })));
    },
    retryable: (err) => ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0) >= 500,
    describe: (err) => `${(err as Error).name}: ${(err as Error).message}`,
    close: () => client.destroy(),
  };
}
