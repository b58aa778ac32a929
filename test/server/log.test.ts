// The log formats operators' pipelines parse: JSON lines with sorted keys and an ISO timestamp
// (as winston's json format wrote them before the sidecar had its own logger), or a readable
// line on a terminal.
import { expect } from "chai";
import { PassThrough } from "node:stream";
import { createLogger, silentLogger, stableJson } from "../../src/log.js";

function capture(format: "json" | "pretty", level?: string) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c.toString("utf8")));
  const logger = createLogger({ format, level, stream });
  const text = async () => {
    await new Promise((r) => setImmediate(r));
    return chunks.join("");
  };
  return { logger, text };
}

describe("logger", function () {
  it("writes one JSON line per call, keys sorted, with level, message and an ISO timestamp", async function () {
    const { logger, text } = capture("json");
    logger.info("starting decant", { source: "defaults", tls: { key_file: "k", cert_file: "c" }, target: undefined, port: 9464 });
    logger.error("boom", { error: "it broke", version: 12n });
    const lines = (await text()).split("\n");
    expect(lines).to.have.length(3);
    expect(lines[2]).to.equal("");
    const first = lines[0]!.replace(/"timestamp":"[^"]+"/, '"timestamp":"T"');
    expect(first).to.equal('{"level":"info","message":"starting decant","port":9464,"source":"defaults","timestamp":"T","tls":{"cert_file":"c","key_file":"k"}}');
    const parsed = JSON.parse(lines[0]!) as { timestamp: string };
    expect(new Date(parsed.timestamp).toISOString()).to.equal(parsed.timestamp);
    expect(JSON.parse(lines[1]!)).to.include({ level: "error", message: "boom", error: "it broke", version: "12" });
  });

  it("drops the levels below its own", async function () {
    const { logger, text } = capture("json", "warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    const levels = (await text())
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { level: string }).level);
    expect(levels).to.deep.equal(["warn", "error"]);
    const debug = capture("json", "debug");
    debug.logger.debug("d");
    expect(await debug.text()).to.include('"level":"debug"');
  });

  it("writes a readable line in pretty format: time, coloured level, message, fields", async function () {
    const { logger, text } = capture("pretty");
    logger.warn("cannot renew the view", { error: "down", attempt: 2 });
    logger.info("decant stopped");
    expect(await text()).to.match(/^\d\d:\d\d:\d\d \u001b\[33mwarn\u001b\[39m cannot renew the view \{"error":"down","attempt":2\}\n\d\d:\d\d:\d\d \u001b\[32minfo\u001b\[39m decant stopped\n$/);
  });

  it("never throws on fields JSON cannot hold", function () {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(stableJson({ b: [1, undefined, () => 1], a: cyclic, n: NaN })).to.equal('{"a":{"a":1,"self":"[Circular]"},"b":[1,null,null],"n":null}');
    expect(() => silentLogger().error("nothing", { cyclic })).not.to.throw();
  });

  it("writes bigints and cycles in both formats instead of throwing", async function () {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const format of ["json", "pretty"] as const) {
      const { logger, text } = capture(format);
      logger.info("version", { version: 2n ** 64n, cyclic });
      expect(await text()).to.include('"version":"18446744073709551616"').and.include('"self":"[Circular]"');
    }
  });
});
