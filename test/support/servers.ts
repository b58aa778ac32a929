// Real servers for backend tests. Connection URLs come from the environment with loopback
// defaults. With CI=true an unreachable server fails the run; locally the backend is
// skipped with one loud line, so a laptop without MariaDB still runs everything else.
import pg from "pg";

export const TEST_URLS = {
  postgres: process.env.DECANT_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/decant_test",
  mysql: process.env.DECANT_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/decant_test",
  redis: process.env.DECANT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0",
};

/** A loopback port with nothing listening, for the server-down tests. */
export const CLOSED_PORT = 1;

/**
 * Resolves whether the backend's server can be used. Call at module top level (ESM allows
 * top-level await) and wrap the suite in `if (ok)`. With CI set, an unreachable server is a
 * failing test, not a throw: mocha first require()s a test file (tsx compiles it to CJS, which
 * cannot have top-level await), then import()s it, and for a .ts file it reports the require
 * error, so a throw here showed as "Top-level await is currently not supported with the cjs
 * output format" instead of its own message.
 */
export async function serverAvailable(name: string, probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (process.env.CI === "true" || process.env.CI === "1") {
      const failure = new Error(`${name} test server is not reachable and CI is set: ${why}`);
      describe(`${name} test server`, function () {
        it("is reachable", () => {
          throw failure;
        });
      });
      return false;
    }
    console.warn(`\n!!! SKIPPING ${name} tests: its server is not reachable (${why}). Start it, or set CI=true to make this fail.\n`);
    describe(`${name} (server not reachable — skipped)`, function () {
      it.skip(`needs a running ${name} server`);
    });
    return false;
  }
}

/** Whether the PostgreSQL test server answers (see serverAvailable): one probe for every test file. */
export const postgresAvailable = (): Promise<boolean> =>
  serverAvailable("postgres", async () => {
    const c = new pg.Client({ connectionString: TEST_URLS.postgres, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
  });
