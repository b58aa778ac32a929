// loadConfig / describeConfig: defaults, the YAML file, environment overrides, and errors that
// name the field. Every call passes an explicit env object; process.env is never consulted.
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN, DEFAULT_STORE, describeConfig, loadConfig } from "../../src/config/config.js";

describe("config: loadConfig", function () {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "decant-config-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a YAML file in the temp dir and returns its path. */
  const yamlFile = (text: string): string => {
    const path = join(dir, `decant-${++n}.yaml`);
    writeFileSync(path, text);
    return path;
  };
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  /** Runs `fn`, expects a ConfigError naming `field`, and returns it. */
  function configError(fn: () => unknown, field: string): ConfigError {
    let caught: unknown;
    try {
      fn();
    } catch (err) {
      caught = err;
    }
    expect(caught, "expected a ConfigError").to.be.instanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.field, err.message).to.equal(field);
    expect(err.message.startsWith(`${field}: `), err.message).to.equal(true);
    return err;
  }

  describe("defaults", function () {
    it("with no file and an empty environment", function () {
      const c = loadConfig(undefined, {});
      expect(c.current).to.equal("sqlite:./data/decant.db");
      expect(c.current).to.equal(DEFAULT_STORE);
      expect(c.listen).to.equal("127.0.0.1:50051");
      expect(c.listen).to.equal(DEFAULT_LISTEN);
      expect(c.metricsListen).to.equal("127.0.0.1:9464");
      expect(c.metricsListen).to.equal(DEFAULT_METRICS_LISTEN);
      expect(c.maxValueBytes).to.equal(400 * 1024);
      expect(c.target).to.equal(undefined);
      expect(c.control).to.equal(undefined);
      expect(c.tls).to.equal(undefined);
      expect(c.adminToken).to.equal(undefined);
      expect(c.logLevel).to.equal("info");
      expect(c.logFormat).to.equal("auto");
      expect(c.drainTimeoutMs).to.equal(10_000);
      expect(c.replicaId).to.be.a("string").and.not.equal("");
      expect(c.source).to.equal("defaults and environment");
    });

    it("an empty YAML file is the defaults", function () {
      const path = yamlFile("");
      const c = loadConfig(path, {});
      expect(c.current).to.equal(DEFAULT_STORE);
      expect(c.listen).to.equal(DEFAULT_LISTEN);
      expect(c.source).to.equal(path);
    });

    it("empty environment variables do not override", function () {
      const c = loadConfig(yamlFile("listen: 127.0.0.1:7000\n"), { DECANT_LISTEN: "", DECANT_CURRENT: "" });
      expect(c.listen).to.equal("127.0.0.1:7000");
      expect(c.current).to.equal(DEFAULT_STORE);
    });
  });

  describe("the YAML file", function () {
    it("supplies every setting", function () {
      const token = file("token-yaml", "tok-from-file\n");
      const path = yamlFile(
        [
          "current: sqlite:/var/lib/decant/a.db",
          'target: "memory:"',
          "control: sqlite:/var/lib/decant/control.db",
          "listen: 0.0.0.0:6000",
          "metrics_listen: 127.0.0.1:6001",
          "replica_id: replica-7",
          "max_value_bytes: 2048",
          "log_level: debug",
          "log_format: json",
          "drain_timeout_ms: 500",
          "tls:",
          "  cert_file: /etc/decant/tls.crt",
          "  key_file: /etc/decant/tls.key",
          "  client_ca_file: /etc/decant/ca.crt",
          `admin_token_file: ${token}`,
          "",
        ].join("\n"),
      );
      const c = loadConfig(path, {});
      expect(c).to.deep.include({
        current: "sqlite:/var/lib/decant/a.db",
        target: "memory:",
        control: "sqlite:/var/lib/decant/control.db",
        listen: "0.0.0.0:6000",
        metricsListen: "127.0.0.1:6001",
        replicaId: "replica-7",
        maxValueBytes: 2048,
        logLevel: "debug",
        logFormat: "json",
        drainTimeoutMs: 500,
        adminToken: "tok-from-file",
        source: path,
      });
      expect(c.tls).to.deep.equal({ certFile: "/etc/decant/tls.crt", keyFile: "/etc/decant/tls.key", clientCaFile: "/etc/decant/ca.crt" });
    });

    it("DECANT_CONFIG names the file when no path is given", function () {
      const path = yamlFile("listen: 127.0.0.1:7001\nreplica_id: from-env-file\n");
      const c = loadConfig(undefined, { DECANT_CONFIG: path });
      expect(c.listen).to.equal("127.0.0.1:7001");
      expect(c.replicaId).to.equal("from-env-file");
      expect(c.source).to.equal(path);
    });

    it("an explicit path wins over DECANT_CONFIG", function () {
      const a = yamlFile("replica_id: explicit\n");
      const b = yamlFile("replica_id: from-env\n");
      expect(loadConfig(a, { DECANT_CONFIG: b }).replicaId).to.equal("explicit");
    });
  });

  describe("environment overrides win over the file", function () {
    it("for every overridable setting", function () {
      const path = yamlFile(
        [
          "current: sqlite:/file/current.db",
          "target: sqlite:/file/target.db",
          "control: sqlite:/file/control.db",
          "listen: 127.0.0.1:1111",
          "metrics_listen: 127.0.0.1:2222",
          "replica_id: file-replica",
          "max_value_bytes: 1000",
          "log_level: warn",
          "log_format: pretty",
          "drain_timeout_ms: 100",
          "",
        ].join("\n"),
      );
      const c = loadConfig(path, {
        DECANT_CURRENT: "memory:",
        DECANT_TARGET: "sqlite:/env/target.db",
        DECANT_CONTROL: "sqlite:/env/control.db",
        DECANT_LISTEN: "127.0.0.1:3333",
        DECANT_METRICS_LISTEN: "127.0.0.1:4444",
        DECANT_REPLICA_ID: "env-replica",
        DECANT_MAX_VALUE_BYTES: "4096",
        DECANT_LOG_LEVEL: "error",
        DECANT_LOG_FORMAT: "json",
        DECANT_DRAIN_TIMEOUT_MS: "250",
      });
      expect(c).to.deep.include({
        current: "memory:",
        target: "sqlite:/env/target.db",
        control: "sqlite:/env/control.db",
        listen: "127.0.0.1:3333",
        metricsListen: "127.0.0.1:4444",
        replicaId: "env-replica",
        maxValueBytes: 4096,
        logLevel: "error",
        logFormat: "json",
        drainTimeoutMs: 250,
      });
    });

    it("DECANT_ADMIN_TOKEN wins over admin_token_file", function () {
      const token = file("token-override", "from-file\n");
      expect(loadConfig(yamlFile(`admin_token_file: ${token}\n`), { DECANT_ADMIN_TOKEN: "from-env" }).adminToken).to.equal("from-env");
    });

    it("a password may come in through the environment", function () {
      const c = loadConfig(undefined, { DECANT_CURRENT: "postgres://u:secret@db.example:5432/app" });
      expect(c.current).to.equal("postgres://u:secret@db.example:5432/app");
    });
  });

  describe("${VAR} and ${file:/path} expansion", function () {
    it("expands ${VAR} from the env object in a store URL from the file", function () {
      const c = loadConfig(yamlFile("current: postgres://app:${PGPASS}@db.example:5432/app\n"), { PGPASS: "s3cret" });
      expect(c.current).to.equal("postgres://app:s3cret@db.example:5432/app");
    });

    it("expands ${VAR} in a store URL from the environment", function () {
      const c = loadConfig(undefined, { DECANT_TARGET: "sqlite:${DATA_DIR}/t.db", DATA_DIR: "/srv/data", DECANT_CURRENT: "memory:" });
      expect(c.target).to.equal("sqlite:/srv/data/t.db");
    });

    it("expands ${file:/path}, dropping one trailing newline", function () {
      const secret = file("pgpass", "from-a-file\n");
      const c = loadConfig(yamlFile(`current: postgres://app:\${file:${secret}}@db.example/app\n`), {});
      expect(c.current).to.equal("postgres://app:from-a-file@db.example/app");
    });

    it("expands several references in one URL", function () {
      const c = loadConfig(yamlFile("current: postgres://${PGUSER}:${PGPASS}@${PGHOST}:5432/app\n"), { PGUSER: "u", PGPASS: "p", PGHOST: "h" });
      expect(c.current).to.equal("postgres://u:p@h:5432/app");
    });

    it("a ${VAR} that is not set is an error naming the field", function () {
      const err = configError(() => loadConfig(yamlFile("target: postgres://app:${NOT_SET_ANYWHERE}@h/db\n"), {}), "target");
      expect(err.message).to.include("NOT_SET_ANYWHERE");
      configError(() => loadConfig(undefined, { DECANT_CURRENT: "sqlite:${NOPE}/x.db" }), "current");
    });

    it("a ${file:/path} that cannot be read is an error naming the field", function () {
      const missing = join(dir, "no-such-secret");
      const err = configError(() => loadConfig(yamlFile(`control: postgres://app:\${file:${missing}}@h/db\n`), {}), "control");
      expect(err.message).to.include(missing);
    });
  });

  describe("errors are ConfigError naming the field", function () {
    it("an unknown key, listing the known settings", function () {
      const err = configError(() => loadConfig(yamlFile("listen: 127.0.0.1:1\nlisten_addr: 127.0.0.1:2\n"), {}), "listen_addr");
      expect(err.message).to.include("is not a setting");
      for (const key of ["current", "target", "control", "listen", "metrics_listen", "replica_id", "max_value_bytes", "log_level", "log_format", "drain_timeout_ms", "tls", "admin_token_file"]) {
        expect(err.message).to.include(key);
      }
    });

    it("an unknown key under tls", function () {
      configError(() => loadConfig(yamlFile("tls:\n  cert_file: a\n  key_file: b\n  ca: c\n"), {}), "tls.ca");
    });

    it("a bad store URL scheme", function () {
      const err = configError(() => loadConfig(undefined, { DECANT_CURRENT: "oracle://h/db" }), "current");
      expect(err.message).to.include("oracle");
      expect(err.message).to.include("sqlite:");
      configError(() => loadConfig(yamlFile("target: ftp://h/x\n"), { DECANT_CURRENT: "memory:" }), "target");
      configError(() => loadConfig(undefined, { DECANT_CONTROL: "not a url" }), "control");
      configError(() => loadConfig(yamlFile("current: ''\n"), {}), "current");
      configError(() => loadConfig(yamlFile("current: 42\n"), {}), "current");
    });

    it("a listen address that is not host:port", function () {
      for (const bad of ["nonsense", "127.0.0.1", ":50051", "127.0.0.1:http", "127.0.0.1:123456", "host name:80"]) {
        const err = configError(() => loadConfig(undefined, { DECANT_LISTEN: bad }), "listen");
        expect(err.message).to.include("host:port");
      }
      configError(() => loadConfig(yamlFile("metrics_listen: 9464\n"), {}), "metrics_listen");
      configError(() => loadConfig(undefined, { DECANT_METRICS_LISTEN: "localhost" }), "metrics_listen");
    });

    it("accepts hostnames, IPv6 and port 0", function () {
      expect(loadConfig(undefined, { DECANT_LISTEN: "localhost:50051" }).listen).to.equal("localhost:50051");
      expect(loadConfig(undefined, { DECANT_LISTEN: "[::1]:50051" }).listen).to.equal("[::1]:50051");
      expect(loadConfig(undefined, { DECANT_LISTEN: "127.0.0.1:0" }).listen).to.equal("127.0.0.1:0");
      expect(loadConfig(undefined, { DECANT_LISTEN: "127.0.0.1:65535" }).listen).to.equal("127.0.0.1:65535");
    });

    it("a port above 65535", function () {
      const err = configError(() => loadConfig(undefined, { DECANT_LISTEN: "127.0.0.1:65536" }), "listen");
      expect(err.message).to.include("65536");
      expect(err.message).to.include("out of range");
      configError(() => loadConfig(yamlFile("metrics_listen: 127.0.0.1:99999\n"), {}), "metrics_listen");
    });

    it("max_value_bytes that is not a number, or out of range", function () {
      configError(() => loadConfig(yamlFile("max_value_bytes: lots\n"), {}), "max_value_bytes");
      configError(() => loadConfig(undefined, { DECANT_MAX_VALUE_BYTES: "4k" }), "max_value_bytes");
      configError(() => loadConfig(undefined, { DECANT_MAX_VALUE_BYTES: "0" }), "max_value_bytes");
      configError(() => loadConfig(yamlFile("max_value_bytes: 1.5\n"), {}), "max_value_bytes");
      configError(() => loadConfig(yamlFile("max_value_bytes: -1\n"), {}), "max_value_bytes");
      configError(() => loadConfig(undefined, { DECANT_MAX_VALUE_BYTES: String(64 * 1024 * 1024 + 1) }), "max_value_bytes");
      expect(loadConfig(undefined, { DECANT_MAX_VALUE_BYTES: String(64 * 1024 * 1024) }).maxValueBytes).to.equal(64 * 1024 * 1024);
    });

    it("drain_timeout_ms that is not a number", function () {
      configError(() => loadConfig(undefined, { DECANT_DRAIN_TIMEOUT_MS: "soon" }), "drain_timeout_ms");
      expect(loadConfig(undefined, { DECANT_DRAIN_TIMEOUT_MS: "0" }).drainTimeoutMs).to.equal(0);
    });

    it("max_batch_bytes: follows max_value_bytes, and must hold one write of the largest value", function () {
      expect(loadConfig(undefined, {}).maxBatchBytes).to.equal(4 * 1024 * 1024);
      expect(loadConfig(undefined, { DECANT_MAX_VALUE_BYTES: String(8 * 1024 * 1024) }).maxBatchBytes).to.equal(8 * 1024 * 1024 + 1024);
      expect(loadConfig(yamlFile("max_batch_bytes: 2000000\n"), {}).maxBatchBytes).to.equal(2_000_000);
      expect(loadConfig(yamlFile("max_batch_bytes: 2000000\n"), { DECANT_MAX_BATCH_BYTES: "3000000" }).maxBatchBytes).to.equal(3_000_000);
      const err = configError(() => loadConfig(undefined, { DECANT_MAX_BATCH_BYTES: "409600" }), "max_batch_bytes");
      expect(err.message).to.include("max_value_bytes + 1024 (410624)");
      configError(() => loadConfig(yamlFile("max_batch_bytes: big\n"), {}), "max_batch_bytes");
    });

    it("connections: defaults, the file, the environment, and errors naming the field", function () {
      expect(loadConfig(undefined, {}).connections).to.deep.equal({ max: 1000, prefaceTimeoutMs: 10_000, idleTimeoutMs: 300_000, keepaliveTimeMs: 60_000, keepaliveTimeoutMs: 20_000 });
      const path = yamlFile("connections:\n  max: 50\n  preface_timeout_ms: 2000\n  idle_timeout_ms: 60000\n  keepalive_time_ms: 30000\n  keepalive_timeout_ms: 5000\n");
      expect(loadConfig(path, {}).connections).to.deep.equal({ max: 50, prefaceTimeoutMs: 2000, idleTimeoutMs: 60_000, keepaliveTimeMs: 30_000, keepaliveTimeoutMs: 5000 });
      const env = { DECANT_MAX_CONNECTIONS: "7", DECANT_PREFACE_TIMEOUT_MS: "300", DECANT_IDLE_TIMEOUT_MS: "1000", DECANT_KEEPALIVE_TIME_MS: "1500", DECANT_KEEPALIVE_TIMEOUT_MS: "200" };
      expect(loadConfig(path, env).connections).to.deep.equal({ max: 7, prefaceTimeoutMs: 300, idleTimeoutMs: 1000, keepaliveTimeMs: 1500, keepaliveTimeoutMs: 200 });
      configError(() => loadConfig(yamlFile("connections:\n  max: 0\n"), {}), "connections.max");
      configError(() => loadConfig(undefined, { DECANT_PREFACE_TIMEOUT_MS: "soon" }), "connections.preface_timeout_ms");
      configError(() => loadConfig(undefined, { DECANT_KEEPALIVE_TIMEOUT_MS: "10" }), "connections.keepalive_timeout_ms");
      configError(() => loadConfig(yamlFile("connections:\n  idle_ms: 5\n"), {}), "connections.idle_ms");
      configError(() => loadConfig(yamlFile("connections: 5\n"), {}), "connections");
    });

    it("an invalid log_format or log_level", function () {
      const err = configError(() => loadConfig(undefined, { DECANT_LOG_FORMAT: "xml" }), "log_format");
      expect(err.message).to.include("xml");
      configError(() => loadConfig(yamlFile("log_format: text\n"), {}), "log_format");
      configError(() => loadConfig(undefined, { DECANT_LOG_LEVEL: "verbose" }), "log_level");
    });

    it("a target equal to current", function () {
      const err = configError(() => loadConfig(undefined, { DECANT_CURRENT: "sqlite:/x/a.db", DECANT_TARGET: "sqlite:/x/a.db" }), "target");
      expect(err.message).to.include("same store");
      configError(() => loadConfig(yamlFile("target: sqlite:./data/decant.db\n"), {}), "target"); // target = the default current
    });

    it("a literal password in a store URL in the YAML file, without echoing the password", function () {
      for (const [key, url] of [
        ["current", "postgres://app:hunter2@db.example:5432/app"],
        ["target", "mysql://root:hunter2@db.example/app"],
        ["control", "redis://:hunter2@cache.example:6379"],
      ] as const) {
        const err = configError(() => loadConfig(yamlFile(`${key}: ${url}\n`), key === "current" ? {} : { DECANT_CURRENT: "memory:" }), key);
        expect(err.message).to.not.include("hunter2");
        expect(err.message).to.include("***");
        expect(err.message).to.match(/\$\{/); // tells how to do it instead
      }
    });

    it("a literal password containing '$' in the YAML file is refused too", function () {
      const err = configError(() => loadConfig(yamlFile("current: postgres://app:pa$word@db.example/app\n"), {}), "current");
      expect(err.message).to.not.include("pa$word");
    });

    it("a literal password containing '@' is not echoed, from the file or by describeConfig", function () {
      const err = configError(() => loadConfig(yamlFile("current: postgres://app:hun@ter2@db.example/app\n"), {}), "current");
      expect(err.message).to.not.include("ter2");
      const d = describeConfig(loadConfig(undefined, { DECANT_CURRENT: "postgres://app:hun@ter2@db.example/app" }));
      expect(JSON.stringify(d)).to.not.include("ter2");
      expect(d.current).to.equal("postgres://app:***@db.example/app");
    });

    it("a user name without a password in the file is fine", function () {
      expect(loadConfig(yamlFile("current: postgres://app@db.example:5432/app\n"), {}).current).to.equal("postgres://app@db.example:5432/app");
    });

    it("an unreadable config file", function () {
      const missing = join(dir, "does-not-exist.yaml");
      const err = configError(() => loadConfig(missing, {}), "config");
      expect(err.message).to.include(missing);
      configError(() => loadConfig(undefined, { DECANT_CONFIG: missing }), "config");
      configError(() => loadConfig(dir, {}), "config"); // a directory
    });

    it("invalid YAML", function () {
      const err = configError(() => loadConfig(yamlFile("listen: [127.0.0.1:1\ncurrent: {\n"), {}), "config");
      expect(err.message).to.include("not valid YAML");
    });

    it("YAML that is not a mapping", function () {
      configError(() => loadConfig(yamlFile("- listen\n- current\n"), {}), "config");
      configError(() => loadConfig(yamlFile("just a string\n"), {}), "config");
    });

    it("tls without key_file or cert_file", function () {
      const err = configError(() => loadConfig(yamlFile("tls:\n  cert_file: /etc/decant/tls.crt\n"), {}), "tls.key_file");
      expect(err.message).to.include("required");
      configError(() => loadConfig(yamlFile("tls:\n  key_file: /etc/decant/tls.key\n"), {}), "tls.cert_file");
      configError(() => loadConfig(yamlFile("tls: on\n"), {}), "tls");
    });

    it("an admin_token_file that is missing or empty", function () {
      configError(() => loadConfig(yamlFile(`admin_token_file: ${join(dir, "no-token")}\n`), {}), "admin_token_file");
      const empty = file("empty-token", "\n");
      const err = configError(() => loadConfig(yamlFile(`admin_token_file: ${empty}\n`), {}), "admin_token_file");
      expect(err.message).to.include("empty");
    });
  });

  describe("describeConfig", function () {
    it("redacts store passwords and the admin token", function () {
      const c = loadConfig(undefined, {
        DECANT_CURRENT: "postgres://u:secret@h/db",
        DECANT_TARGET: "mysql://root:secret2@h2/db",
        DECANT_CONTROL: "redis://:secret3@h3:6379",
        DECANT_ADMIN_TOKEN: "tok-very-secret",
      });
      expect(c.current).to.equal("postgres://u:secret@h/db"); // the real value stays usable
      const d = describeConfig(c);
      const text = JSON.stringify(d);
      expect(text).to.not.include("secret");
      expect(text).to.not.include("tok-very-secret");
      expect(d.current).to.equal("postgres://u:***@h/db");
      expect(d.target).to.equal("mysql://root:***@h2/db");
      expect(d.control).to.equal("redis://:***@h3:6379");
      expect(d.admin_token).to.equal("***");
    });

    it("redacts a password that came from ${VAR} expansion", function () {
      const c = loadConfig(yamlFile("current: postgres://app:${PGPASS}@db.example/app\n"), { PGPASS: "expanded-secret" });
      expect(JSON.stringify(describeConfig(c))).to.not.include("expanded-secret");
    });

    it("shows the rest plainly", function () {
      const d = describeConfig(loadConfig(undefined, { DECANT_REPLICA_ID: "r1" }));
      expect(d).to.deep.include({
        source: "defaults and environment",
        current: DEFAULT_STORE,
        listen: DEFAULT_LISTEN,
        metrics_listen: DEFAULT_METRICS_LISTEN,
        replica_id: "r1",
        max_value_bytes: 400 * 1024,
        tls: "off",
        admin_token: "none",
      });
    });
  });
});
