// Configuration: one YAML file plus environment overrides (DESIGN.md §5), validated at start
// with errors that name the field. Secrets come only from the environment or files.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import { parseStoreUrl } from "../backends/index.js";
import { redactUrl } from "../backends/common.js";
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES } from "../protocol/types.js";

export interface TlsConfig {
  certFile: string;
  keyFile: string;
  /** When set, clients must present a certificate signed by this CA (mTLS). */
  clientCaFile?: string;
}

export interface Config {
  /** Store URL of the current store. */
  current: string;
  /** Store URL of the migration target; absent = no migration. */
  target?: string;
  /** Store URL of the control store; absent = the current store. */
  control?: string;
  listen: string;
  metricsListen: string;
  replicaId: string;
  maxValueBytes: number;
  /** The keys and values of one BatchWrite together (with maxValueBytes, sizes the gRPC receive limit). */
  maxBatchBytes: number;
  connections: ConnectionSettings;
  logLevel: string;
  logFormat: "auto" | "json" | "pretty";
  drainTimeoutMs: number;
  tls?: TlsConfig;
  /** Bearer token the Migration service requires (from env or a file only). */
  adminToken?: string;
  /** Migration timings in ms (heartbeat_ms, lease_ms, replica_ttl_ms, fence_hold_ms, fence_timeout_ms, backfill_lease_ms). */
  migration: Partial<Record<MigrationTiming, number>>;
  /** backfill.segments_per_replica: segments one sidecar or backfill-worker runs at once (absent = 2). */
  backfillSegmentsPerReplica?: number;
  /** migration.id: names the migration; the control record must carry the same (absent = not checked). */
  migrationId?: string;
  /** The largest timeout_ms of the network stores configured: a call may still land that long after it began. */
  storeTimeoutMs: number;
  /** host:port of the DynamoDB-API front; absent = off. */
  dynamodbListen?: string;
  /** With these, the DynamoDB front verifies SigV4 signatures (the secret from env or a file only). */
  dynamodbAuth?: { accessKeyId: string; secretAccessKey: string };
  /** Where the config came from, for the start-up log line. */
  source: string;
}

/** Bounds on the gRPC listener's connections (see connections.ts). */
export interface ConnectionSettings {
  /** Open connections at most; one more is closed at once. */
  max: number;
  /** A connection that has not sent the HTTP/2 preface (or finished its TLS handshake) by then is closed. */
  prefaceTimeoutMs: number;
  /** A connection without a call for this long is closed (GOAWAY). */
  idleTimeoutMs: number;
  /** The server pings a connection this long after its last ping... */
  keepaliveTimeMs: number;
  /** ...and closes it when the answer takes longer than this. */
  keepaliveTimeoutMs: number;
}

/** Settings of the `connections` mapping: environment variable, default, range. */
const CONNECTION_SETTINGS: Record<keyof ConnectionSettings, { key: string; env: string; default: number; min: number; max: number }> = {
  max: { key: "max", env: "DECANT_MAX_CONNECTIONS", default: 1000, min: 1, max: 1_000_000 },
  prefaceTimeoutMs: { key: "preface_timeout_ms", env: "DECANT_PREFACE_TIMEOUT_MS", default: 10_000, min: 100, max: 600_000 },
  idleTimeoutMs: { key: "idle_timeout_ms", env: "DECANT_IDLE_TIMEOUT_MS", default: 300_000, min: 1000, max: 86_400_000 },
  keepaliveTimeMs: { key: "keepalive_time_ms", env: "DECANT_KEEPALIVE_TIME_MS", default: 60_000, min: 1000, max: 86_400_000 },
  keepaliveTimeoutMs: { key: "keepalive_timeout_ms", env: "DECANT_KEEPALIVE_TIMEOUT_MS", default: 20_000, min: 100, max: 600_000 },
};

const TIMINGS = ["heartbeat_ms", "lease_ms", "replica_ttl_ms", "fence_hold_ms", "fence_timeout_ms", "backfill_lease_ms"] as const;
export type MigrationTiming = (typeof TIMINGS)[number];

export class ConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "ConfigError";
  }
}

export const DEFAULT_STORE = "sqlite:./data/decant.db";
export const DEFAULT_LISTEN = "127.0.0.1:50051";
export const DEFAULT_METRICS_LISTEN = "127.0.0.1:9464";

const KEYS: Record<string, string> = {
  current: "store URL of the current store",
  target: "store URL of the migration target",
  control: "store URL of the control store",
  listen: "host:port, or unix:PATH (a Unix domain socket, mode 0660), for gRPC",
  metrics_listen: "host:port for /metrics",
  replica_id: "this sidecar's name among replicas",
  max_value_bytes: "largest value accepted",
  max_batch_bytes: "keys and values of one BatchWrite together",
  connections: `bounds: ${Object.values(CONNECTION_SETTINGS).map((c) => c.key).join(", ")}`,
  log_level: "error|warn|info|debug",
  log_format: "auto|json|pretty",
  drain_timeout_ms: "how long shutdown waits for in-flight requests",
  tls: "cert_file, key_file, client_ca_file",
  admin_token_file: "file holding the Migration service's bearer token",
  dynamodb_listen: "host:port for the DynamoDB-API front (off when absent)",
  dynamodb: "access_key_id, secret_access_key_file: SigV4 credentials the DynamoDB front requires",
  backfill: "segments_per_replica: backfill segments one sidecar or worker runs at once",
  migration: `id, and timings: ${"heartbeat_ms, lease_ms, replica_ttl_ms, fence_hold_ms, fence_timeout_ms, backfill_lease_ms"}`,
};

type Env = Record<string, string | undefined>;

/** Expands ${VAR} from the environment and ${file:/path} from a file (trailing newline dropped). */
function expand(value: string, field: string, env: Env): string {
  return value.replace(/\$\{([^}]+)\}/g, (_, ref: string) => {
    if (ref.startsWith("file:")) {
      try {
        return readFileSync(ref.slice(5), "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        throw new ConfigError(field, `cannot read ${ref.slice(5)}: ${(err as Error).message}`);
      }
    }
    const v = env[ref];
    if (v === undefined) throw new ConfigError(field, `refers to \${${ref}}, which is not set in the environment`);
    return v;
  });
}

function storeUrl(raw: unknown, field: string, env: Env, fromFile: boolean): string {
  if (typeof raw !== "string" || raw.trim() === "") throw new ConfigError(field, "must be a store URL, e.g. sqlite:./data/decant.db or postgres://user@host:5432/db");
  // A password written in the file (anything left once ${...} references are taken out) is refused.
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/]*)@/i.exec(raw)?.[1];
  const password = userinfo?.includes(":") ? userinfo.slice(userinfo.indexOf(":") + 1).replace(/\$\{[^}]*\}/g, "") : "";
  if (fromFile && password !== "") {
    throw new ConfigError(field, `holds a password in the config file (${redactUrl(raw)}); write \${SOME_ENV_VAR} or \${file:/run/secrets/x} for it instead`);
  }
  const url = expand(raw.trim(), field, env);
  try {
    parseStoreUrl(url, field);
  } catch (err) {
    throw new ConfigError(field, (err as Error).message.replace(new RegExp(`^${field}: `), ""));
  }
  return url;
}

/** The gRPC listener: host:port, or unix:PATH (also grpc's unix:///abs/path), kept as unix:PATH. */
function listenAddress(raw: unknown, field: string): string {
  if (typeof raw !== "string" || !raw.startsWith("unix:")) return hostPort(raw, field);
  const path = raw.slice(5).replace(/^\/\/(?=\/)/, "");
  if (path === "" || path.includes("\0")) throw new ConfigError(field, `unix: needs a socket path, e.g. unix:/run/decant/decant.sock (got ${JSON.stringify(raw)})`);
  // sun_path holds 108 bytes with its terminating NUL on Linux.
  if (Buffer.byteLength(path) > 107) throw new ConfigError(field, `the socket path is ${Buffer.byteLength(path)} bytes; a Unix socket path holds at most 107`);
  return `unix:${path}`;
}

function hostPort(raw: unknown, field: string): string {
  if (typeof raw !== "string" || !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(raw)) throw new ConfigError(field, `must be host:port, e.g. ${DEFAULT_LISTEN} (got ${JSON.stringify(raw)})`);
  const port = Number(raw.slice(raw.lastIndexOf(":") + 1));
  if (port > 65535) throw new ConfigError(field, `port ${port} is out of range`);
  return raw;
}

function positiveInt(raw: unknown, field: string, min: number, max: number): number {
  const n = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(field, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

function readSecretFile(path: unknown, field: string): string {
  if (typeof path !== "string" || !path) throw new ConfigError(field, "must be a file path");
  try {
    const v = readFileSync(path, "utf8").trim();
    if (!v) throw new ConfigError(field, `${path} is empty`);
    return v;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message}`);
  }
}

/** dynamodb.access_key_id (file or DECANT_DYNAMODB_ACCESS_KEY_ID) and its secret (DECANT_DYNAMODB_SECRET_ACCESS_KEY or secret_access_key_file). */
function dynamodbAuth(raw: unknown, env: Env): Config["dynamodbAuth"] {
  const d = (raw ?? {}) as Record<string, unknown>;
  if (typeof d !== "object" || Array.isArray(d)) throw new ConfigError("dynamodb", "must be a mapping with access_key_id and secret_access_key_file");
  for (const k of Object.keys(d)) if (k !== "access_key_id" && k !== "secret_access_key_file") throw new ConfigError(`dynamodb.${k}`, "is not a setting; use access_key_id, secret_access_key_file (the secret never goes in the file itself)");
  const accessKeyId = env.DECANT_DYNAMODB_ACCESS_KEY_ID || d.access_key_id;
  const secret = env.DECANT_DYNAMODB_SECRET_ACCESS_KEY || (d.secret_access_key_file !== undefined ? readSecretFile(d.secret_access_key_file, "dynamodb.secret_access_key_file") : undefined);
  if (accessKeyId === undefined && secret === undefined) return undefined;
  if (typeof accessKeyId !== "string" || accessKeyId === "") throw new ConfigError("dynamodb.access_key_id", "is required when a DynamoDB secret is set (or DECANT_DYNAMODB_ACCESS_KEY_ID)");
  if (secret === undefined) throw new ConfigError("dynamodb.secret_access_key_file", "is required with access_key_id (or DECANT_DYNAMODB_SECRET_ACCESS_KEY)");
  return { accessKeyId, secretAccessKey: secret };
}

function connectionSettings(raw: unknown, env: Env): ConnectionSettings {
  const file = (raw ?? {}) as Record<string, unknown>;
  if (typeof file !== "object" || Array.isArray(file)) throw new ConfigError("connections", "must be a mapping of connection bounds");
  const known = Object.values(CONNECTION_SETTINGS).map((c) => c.key);
  for (const k of Object.keys(file)) if (!known.includes(k)) throw new ConfigError(`connections.${k}`, `is not a setting; use ${known.join(", ")}`);
  const settings = {} as ConnectionSettings;
  for (const [name, c] of Object.entries(CONNECTION_SETTINGS) as [keyof ConnectionSettings, (typeof CONNECTION_SETTINGS)["max"]][]) {
    const value = env[c.env] !== undefined && env[c.env] !== "" ? env[c.env] : file[c.key];
    settings[name] = positiveInt(value ?? c.default, `connections.${c.key}`, c.min, c.max);
  }
  return settings;
}

function maxBatchBytes(raw: unknown, maxValueBytes: number): number {
  const least = maxValueBytes + MAX_KEY_BYTES;
  if (raw === undefined || raw === null) return Math.max(DEFAULT_MAX_BATCH_BYTES, least);
  const n = positiveInt(raw, "max_batch_bytes", 1, 256 * 1024 * 1024);
  if (n < least) throw new ConfigError("max_batch_bytes", `must be at least max_value_bytes + ${MAX_KEY_BYTES} (${least}), so one write of the largest value fits in a batch (got ${n})`);
  return n;
}

/**
 * Loads the configuration: file (path from `configPath`, else DECANT_CONFIG, else none),
 * then environment overrides, then defaults. Throws ConfigError naming the field.
 */
export function loadConfig(configPath?: string, env: Env = process.env): Config {
  const path = configPath ?? env.DECANT_CONFIG;
  const file = path ? readConfigFile(path) : {};
  const pick = picker(file, env);
  const stores = storeSettings(pick, env);
  const logging = logSettings(pick);
  const tls = tlsSettings(file.tls);
  const adminToken = env.DECANT_ADMIN_TOKEN ? env.DECANT_ADMIN_TOKEN : file.admin_token_file !== undefined ? readSecretFile(file.admin_token_file, "admin_token_file") : undefined;
  const { migration, migrationId } = migrationSettings(file.migration, env);
  const backfillSegmentsPerReplica = backfillSettings(file.backfill, env);
  const storeTimeoutMs = Math.max(...[stores.current, stores.target, stores.control].map((u) => (u === undefined ? 0 : networkTimeout(u))));
  checkReplicaTtl(migration, storeTimeoutMs);
  const maxValueBytes = positiveInt(pick("max_value_bytes", "DECANT_MAX_VALUE_BYTES").value ?? DEFAULT_MAX_VALUE_BYTES, "max_value_bytes", 1, 64 * 1024 * 1024);
  const ddbListen = pick("dynamodb_listen", "DECANT_DYNAMODB_LISTEN").value;
  return {
    dynamodbListen: ddbListen === undefined || ddbListen === null ? undefined : hostPort(ddbListen, "dynamodb_listen"),
    dynamodbAuth: dynamodbAuth(file.dynamodb, env),
    migration,
    backfillSegmentsPerReplica,
    migrationId,
    storeTimeoutMs,
    ...stores,
    listen: listenAddress(pick("listen", "DECANT_LISTEN").value ?? DEFAULT_LISTEN, "listen"),
    metricsListen: hostPort(pick("metrics_listen", "DECANT_METRICS_LISTEN").value ?? DEFAULT_METRICS_LISTEN, "metrics_listen"),
    replicaId: String(pick("replica_id", "DECANT_REPLICA_ID").value ?? `${hostname()}-${process.pid}`),
    maxValueBytes,
    maxBatchBytes: maxBatchBytes(pick("max_batch_bytes", "DECANT_MAX_BATCH_BYTES").value, maxValueBytes),
    connections: connectionSettings(file.connections, env),
    ...logging,
    drainTimeoutMs: positiveInt(pick("drain_timeout_ms", "DECANT_DRAIN_TIMEOUT_MS").value ?? 10_000, "drain_timeout_ms", 0, 600_000),
    tls,
    adminToken,
    source: path ?? "defaults and environment",
  };
}

/** The YAML file: a mapping of known settings. */
function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError("config", `cannot read ${path}: ${(err as Error).message}`);
  }
  // Loaded only when there is a file: configured by the environment alone, a sidecar does
  // without the YAML parser's ~1 MB. (require, as loadConfig is synchronous.)
  const yaml = createRequire(import.meta.url)("yaml") as typeof import("yaml");
  let parsed: unknown;
  try {
    parsed = yaml.parse(text);
  } catch (err) {
    throw new ConfigError("config", `${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (parsed !== null && parsed !== undefined && (typeof parsed !== "object" || Array.isArray(parsed))) throw new ConfigError("config", `${path} must hold a mapping of settings`);
  const file = (parsed ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(file)) {
    if (!(key in KEYS)) throw new ConfigError(key, `is not a setting; known settings: ${Object.keys(KEYS).join(", ")}`);
  }
  return file;
}

type PickSetting = (key: string, envName: string) => { value: unknown; fromFile: boolean };

/** A setting from the environment (when set and not empty), else from the file. */
const picker = (file: Record<string, unknown>, env: Env): PickSetting => (key, envName) =>
  env[envName] !== undefined && env[envName] !== "" ? { value: env[envName], fromFile: false } : { value: file[key], fromFile: true };

function storeSettings(pick: PickSetting, env: Env): Pick<Config, "current" | "target" | "control"> {
  const cur = pick("current", "DECANT_CURRENT");
  const current = storeUrl(cur.value ?? DEFAULT_STORE, "current", env, cur.fromFile && cur.value !== undefined);
  const optional = (key: "target" | "control", envName: string) => {
    const p = pick(key, envName);
    return p.value === undefined || p.value === null ? undefined : storeUrl(p.value, key, env, p.fromFile);
  };
  const target = optional("target", "DECANT_TARGET");
  const control = optional("control", "DECANT_CONTROL");
  if (target !== undefined && target === current) throw new ConfigError("target", "is the same store as current; a migration needs two different stores");
  return { current, target, control };
}

function logSettings(pick: PickSetting): Pick<Config, "logLevel" | "logFormat"> {
  const logFormat = (pick("log_format", "DECANT_LOG_FORMAT").value ?? "auto") as string;
  if (!["auto", "json", "pretty"].includes(logFormat)) throw new ConfigError("log_format", `must be auto, json or pretty (got ${JSON.stringify(logFormat)})`);
  const logLevel = (pick("log_level", "DECANT_LOG_LEVEL").value ?? "info") as string;
  if (!["error", "warn", "info", "debug"].includes(logLevel)) throw new ConfigError("log_level", `must be error, warn, info or debug (got ${JSON.stringify(logLevel)})`);
  return { logLevel, logFormat: logFormat as Config["logFormat"] };
}

function tlsSettings(raw: unknown): TlsConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const t = raw as Record<string, unknown>;
  if (typeof t !== "object") throw new ConfigError("tls", "must be a mapping with cert_file and key_file");
  for (const k of Object.keys(t)) if (!["cert_file", "key_file", "client_ca_file"].includes(k)) throw new ConfigError(`tls.${k}`, "is not a setting; use cert_file, key_file, client_ca_file");
  if (typeof t.cert_file !== "string") throw new ConfigError("tls.cert_file", "is required when tls is set");
  if (typeof t.key_file !== "string") throw new ConfigError("tls.key_file", "is required when tls is set");
  return { certFile: t.cert_file, keyFile: t.key_file, clientCaFile: typeof t.client_ca_file === "string" ? t.client_ca_file : undefined };
}

/** The `migration` mapping: its id and timings (each overridden by DECANT_<TIMING>). */
function migrationSettings(raw: unknown, env: Env): Pick<Config, "migration" | "migrationId"> {
  const file = (raw ?? {}) as Record<string, unknown>;
  if (typeof file !== "object" || Array.isArray(file)) throw new ConfigError("migration", "must be a mapping of timings");
  for (const k of Object.keys(file)) if (k !== "id" && !(TIMINGS as readonly string[]).includes(k)) throw new ConfigError(`migration.${k}`, `is not a setting; use id, ${TIMINGS.join(", ")}`);
  const rawId = env.DECANT_MIGRATION_ID ?? file.id;
  if (rawId !== undefined && rawId !== "" && (typeof rawId !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(rawId))) throw new ConfigError("migration.id", "must be 1 to 64 letters, digits, dots, dashes or underscores");
  const migration: Config["migration"] = {};
  for (const t of TIMINGS) {
    const value = env[`DECANT_${t.toUpperCase()}`] ?? file[t];
    if (value !== undefined && value !== "") migration[t] = positiveInt(value, `migration.${t}`, 10, 3_600_000);
  }
  return { migration, migrationId: typeof rawId === "string" && rawId !== "" ? rawId : undefined };
}

/** A replica counted dead must have failed closed and its last store call ended (docs/PROTOCOL.md step 5). */
/** backfill.segments_per_replica (0 = this sidecar leaves the backfill to backfill-workers). */
function backfillSettings(raw: unknown, env: Env): number | undefined {
  const file = (raw ?? {}) as Record<string, unknown>;
  if (typeof file !== "object" || Array.isArray(file)) throw new ConfigError("backfill", "must be a mapping (segments_per_replica)");
  for (const k of Object.keys(file)) if (k !== "segments_per_replica") throw new ConfigError(`backfill.${k}`, "is not a setting; use segments_per_replica");
  const value = env.DECANT_BACKFILL_SEGMENTS_PER_REPLICA ?? file.segments_per_replica;
  return value === undefined || value === "" ? undefined : positiveInt(value, "backfill.segments_per_replica", 0, 64);
}

function checkReplicaTtl(migration: Config["migration"], storeTimeoutMs: number): void {
  const lease = migration.lease_ms ?? 5000;
  const heartbeat = migration.heartbeat_ms ?? 1000;
  const minTtl = lease + storeTimeoutMs + heartbeat;
  if ((migration.replica_ttl_ms ?? 15_000) < minTtl) {
    throw new ConfigError("migration.replica_ttl_ms", `must be at least lease_ms + the largest store timeout_ms + heartbeat_ms (${lease} + ${storeTimeoutMs} + ${heartbeat} = ${minTtl}), so a replica counted dead has failed closed and its last store call has ended (docs/PROTOCOL.md step 5)`);
  }
}

/**
 * How long a call to a store over the network may run (its timeout_ms, default 5000). Memory
 * and SQLite calls are synchronous in the process: none outlives it.
 */
function networkTimeout(raw: string): number {
  const url = new URL(raw);
  const scheme = url.protocol.replace(/:$/, "");
  if (scheme === "memory" || scheme === "sqlite") return 0;
  const t = Number(url.searchParams.get("timeout_ms") ?? 5000);
  return Number.isFinite(t) && t > 0 ? t : 5000;
}

/** The configuration as it may be printed: store passwords and the token redacted. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    source: c.source,
    current: redactUrl(c.current),
    target: c.target ? redactUrl(c.target) : undefined,
    control: c.control ? redactUrl(c.control) : undefined,
    listen: c.listen,
    metrics_listen: c.metricsListen,
    replica_id: c.replicaId,
    max_value_bytes: c.maxValueBytes,
    max_batch_bytes: c.maxBatchBytes,
    connections: c.connections,
    tls: c.tls ? { cert_file: c.tls.certFile, client_auth: Boolean(c.tls.clientCaFile) } : "off",
    admin_token: c.adminToken ? "***" : "none",
    dynamodb_listen: c.dynamodbListen ?? "off",
    dynamodb_auth: c.dynamodbAuth ? c.dynamodbAuth.accessKeyId : "none",
  };
}
