// The DynamoDB front under test: a real in-process sidecar with dynamodb_listen on a free
// loopback port, over a real store, and real AWS SDK clients pointed at it.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import mysql from "mysql2/promise";
import pg from "pg";
import { openStore } from "../../../src/backends/index.js";
import { startTestSidecar } from "../../support/sidecar.js";
import { Redis } from "ioredis";
import { postgresAvailable, serverAvailable, TEST_URLS } from "../../support/servers.js";

/** Whether each test server answers (skipped with a loud line, or failing under CI, when not). */
export const serverUp = {
  postgres: () =>
    postgresAvailable(),
  mysql: () => serverAvailable("mysql", async () => (await mysql.createConnection(TEST_URLS.mysql)).end()),
  redis: () =>
    serverAvailable("redis", async () => {
      const r = new Redis(TEST_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      await r.connect();
      r.disconnect();
    }),
};

export const CREDENTIALS = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

/** A DynamoDB SDK client for an endpoint (retries a few times on 5xx, as SDKs do by default). */
export function sdkClient(endpoint: string, options: { maxAttempts?: number; credentials?: typeof CREDENTIALS } = {}): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: "us-east-1", credentials: options.credentials ?? CREDENTIALS, maxAttempts: options.maxAttempts ?? 3 });
}

export const docClient = (client: DynamoDBClient) => DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });

/** A fresh store of each kind, isolated by a random table name / key prefix, and a way to remove it. */
export interface TestStore {
  name: string;
  url: string;
  cleanup(): Promise<void>;
}

export function testStore(kind: "sqlite" | "postgres" | "mysql" | "redis" | "memory"): TestStore {
  const tag = randomBytes(4).toString("hex");
  const table = `decant_ddb_${tag}`;
  switch (kind) {
    case "memory":
      return { name: kind, url: "memory:", cleanup: async () => undefined };
    case "sqlite": {
      const dir = mkdtempSync(join(tmpdir(), "decant-ddb-"));
      return { name: kind, url: `sqlite:${join(dir, "front.db")}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    }
    case "postgres": {
      const url = new URL(TEST_URLS.postgres);
      url.searchParams.set("table", table);
      return {
        name: kind,
        url: url.href,
        cleanup: async () => {
          const c = new pg.Client({ connectionString: TEST_URLS.postgres });
          await c.connect();
          await c.query(`DROP TABLE IF EXISTS ${table}`);
          await c.end();
        },
      };
    }
    case "mysql": {
      const url = new URL(TEST_URLS.mysql);
      url.searchParams.set("table", table);
      return {
        name: kind,
        url: url.href,
        cleanup: async () => {
          const c = await mysql.createConnection(TEST_URLS.mysql);
          await c.query(`DROP TABLE IF EXISTS ${table}`);
          await c.end();
        },
      };
    }
    case "redis": {
      const url = new URL(TEST_URLS.redis);
      url.searchParams.set("prefix", table);
      return {
        name: kind,
        url: url.href,
        cleanup: async () => {
          const store = await openStore(url.href);
          for (const ns of await store.namespaces()) await store.dropNamespace(ns);
          await store.close();
        },
      };
    }
  }
}

/** An in-process sidecar serving the DynamoDB API over `storeUrl`, and SDK clients for it. */
export async function startFront(storeUrl: string, env: Record<string, string> = {}) {
  const t = await startTestSidecar({ DECANT_CURRENT: storeUrl, DECANT_DYNAMODB_LISTEN: "127.0.0.1:0", ...env });
  const endpoint = `http://127.0.0.1:${t.sidecar.dynamodbPort}`;
  const client = sdkClient(endpoint);
  return {
    ...t,
    /** The sidecar's gRPC client. */
    grpc: t.client,
    endpoint,
    client,
    doc: docClient(client),
    async stop() {
      client.destroy();
      await t.stop();
    },
  };
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { name: string; $metadata?: { httpStatusCode?: number }; Item?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { name: string };
  }
  throw new Error("expected the call to fail, and it succeeded");
}
