import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "chai";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Runs `code` (an ES module) in a fresh Node process, so what it loads is its own. */
function fresh(code: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()))),
  );
}

describe("pg driver loading", function () {
  this.timeout(90_000);

  it("loads pg without loading Node's fetch (undici), and leaves Response as it was", async () => {
    const out = await fresh(`
      const before = Object.getOwnPropertyDescriptor(globalThis, "Response");
      const { Pool, escapeLiteral } = await import("./src/backends/pg-driver.ts");
      const undici = process.moduleLoadList.some((m) => m.includes("undici"));
      const after = Object.getOwnPropertyDescriptor(globalThis, "Response");
      const same = before.get === after.get && before.set === after.set && before.configurable === after.configurable && before.enumerable === after.enumerable;
      console.log(JSON.stringify({ undici, same, pool: typeof Pool, literal: escapeLiteral("it's"), response: typeof Response, body: await new Response("ok").text() }));
    `);
    expect(JSON.parse(out)).to.deep.equal({ undici: false, same: true, pool: "function", literal: "'it''s'", response: "function", body: "ok" });
  });

  it("pg loaded as it is does load undici (what the module above avoids)", async () => {
    const out = await fresh(`await import("pg"); console.log(process.moduleLoadList.some((m) => m.includes("undici")));`);
    expect(out).to.equal("true");
  });
});
