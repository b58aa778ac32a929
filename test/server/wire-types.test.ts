// The wire's generated types (src/wire/generated) match the .proto files, and they are strict
// enough that a misspelled field is a type error on either side. The @ts-expect-error lines are
// checked by `npm run typecheck`: if one stops being an error, the typecheck fails.
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { DecantClient } from "../../src/client/client.js";
import type { UnaryHandlerFactory } from "../../src/server/rpc.js";
import type { StreamMethod, UnaryMethod } from "../../src/wire/types.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const GENERATED = join(ROOT, "src/wire/generated");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

// Compile-time only.
export const streaming: StreamMethod<"Migration">[] = ["Verify"];
// @ts-expect-error a unary method is not a stream
export const notStreaming: StreamMethod<"Migration"> = "GetStatus";
// @ts-expect-error Verify streams, so it is not unary
export const notUnary: UnaryMethod<"Migration"> = "Verify";

// Compile-time only: never called.
export function misspelledFieldsAreTypeErrors(unary: UnaryHandlerFactory<"Store">, client: DecantClient) {
  unary("Put", async (req) => {
    // @ts-expect-error a request field that does not exist
    void req.namspace;
    return { version: "1" };
  });
  // @ts-expect-error a response field that does not exist (what a handler returns is checked field by field)
  unary("Delete", async () => ({ deleted: true, verison: "1" }));
  // @ts-expect-error the same, nested
  unary("Get", async () => ({ found: true, item: { key: "k", value: Buffer.alloc(0), verison: "1" } }));
  // @ts-expect-error the same, in a list
  unary("BatchWrite", async () => ({ results: [{ key: "k", version: "1", cod: 0 }] }));
  unary("Get", async () => ({ found: true, item: { key: "k", value: Buffer.alloc(0), version: "1" } }));
  // @ts-expect-error a method the service does not have
  unary("Gett", async () => ({}));
  // @ts-expect-error a request field that does not exist
  void client.request("store", "Get", { namespace: "n", kee: "k" });
  void client.status().then((s) => {
    // @ts-expect-error a response field that does not exist
    void s.repair_journal_deph;
    return s.repair_journal_depth satisfies string;
  });
}

describe("the generated wire types", function () {
  this.timeout(60_000);

  it("are what scripts/gen-wire-types.sh makes from proto/ now (run it after changing a .proto file)", function () {
    const out = mkdtempSync(join(tmpdir(), "decant-wire-types-"));
    try {
      execFileSync(join(ROOT, "scripts/gen-wire-types.sh"), [out], { cwd: ROOT, stdio: "pipe" });
      const fresh = files(out).map((f) => relative(out, f)).sort();
      expect(files(GENERATED).map((f) => relative(GENERATED, f)).sort()).to.deep.equal(fresh);
      for (const f of fresh) expect(readFileSync(join(GENERATED, f), "utf8"), f).to.equal(readFileSync(join(out, f), "utf8"));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
