// The layering of src/ (issue 14 §4): protocol → backends → migration → server → cli; wire (the generated protocol types and proto loading) is shared by client, server and cli. Every
// import of our own code in src/** (static, re-export, dynamic and type-only `import("…")`) is
// read with TypeScript's own pre-processor and checked against the rules below.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { expect } from "chai";
import ts from "typescript";

const SRC = new URL("../src/", import.meta.url).pathname;

/**
 * What each layer may import besides itself. `log` (src/log.ts) and the metrics types are
 * leaves every layer below the server may use; backends stay free of metrics (a store is
 * instrumented from outside, metrics/instrumented.ts). config reads store URLs with the
 * backends' parser. Only cli and server import server; cli imports anything.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  protocol: [],
  log: [],
  backends: ["protocol", "log"],
  metrics: ["protocol", "log"],
  migration: ["protocol", "log", "metrics"],
  fronts: ["protocol", "log", "metrics"],
  config: ["protocol", "log", "backends"],
  wire: ["protocol"],
  client: ["protocol", "wire"],
  server: ["protocol", "log", "metrics", "backends", "migration", "fronts", "config", "wire"],
  cli: ["protocol", "log", "metrics", "backends", "migration", "fronts", "config", "client", "server", "wire"],
};

/**
 * Imports that break the rules today and are being removed on other branches. Each is one
 * importer → imported pair; a new violation fails, and so does an entry no longer needed.
 */
const KNOWN: Record<string, string> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

/** The layer of a path under src/: its top directory, or the file's name for src/log.ts. */
const layerOf = (path: string): string => {
  const rel = relative(SRC, path);
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : rel.replace(/\.ts$/, "");
};

/** Our own imports of one file, as paths relative to src/ (`.js` specifiers name `.ts` files). */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, ".ts"));
}

function edges(): { from: string; to: string }[] {
  return sourceFiles(SRC).flatMap((file) => importsOf(file).map((to) => ({ from: relative(SRC, file), to })));
}

describe("architecture: import rules of src/", () => {
  const all = edges();

  it("reads the imports (static, re-exports, dynamic and type-only)", () => {
    expect(all.length).to.be.greaterThan(100);
    const has = (from: string, to: string) => all.some((e) => e.from === from && e.to === to);
    expect(has("server/sidecar.ts", "server/status-page.ts"), "dynamic import()").to.equal(true);
    expect(has("server/sidecar.ts", "fronts/dynamodb/server.ts"), "import type and import()").to.equal(true);
    expect(has("migration/phases.ts", "protocol/phases.ts"), "export … from").to.equal(true);
    expect(all.every((e) => !e.to.startsWith("..")), "nothing outside src/").to.equal(true);
  });

  it("every layer has a rule (a new top directory of src/ needs one here)", () => {
    const layers = new Set(sourceFiles(SRC).map(layerOf));
    expect([...layers].filter((l) => !(l in MAY_IMPORT))).to.deep.equal([]);
  });

  it("each layer imports only what its rule allows, but for the named exceptions", () => {
    const broken = all
      .filter(({ from, to }) => {
        const [a, b] = [layerOf(join(SRC, from)), layerOf(join(SRC, to))];
        return a !== b && !(MAY_IMPORT[a] ?? []).includes(b);
      })
      .map(({ from, to }) => `${from} -> ${to}`);
    const unexpected = broken.filter((e) => !(e in KNOWN));
    expect(unexpected, `imports that break the layering:\n  ${unexpected.join("\n  ")}`).to.deep.equal([]);
    const stale = Object.keys(KNOWN).filter((e) => !broken.includes(e));
    expect(stale, `known exceptions that no longer occur (remove them from KNOWN):\n  ${stale.join("\n  ")}`).to.deep.equal([]);
  });

  it("the rules themselves say what issue 14 asks", () => {
    // Spelled out once more, so loosening MAY_IMPORT above is a visible change here too.
    expect(MAY_IMPORT.protocol).to.deep.equal([]);
    for (const l of ["backends", "server", "fronts", "cli"]) expect(MAY_IMPORT.migration, "migration").not.to.include(l);
    for (const l of ["migration", "server"]) expect(MAY_IMPORT.metrics, "metrics").not.to.include(l);
    expect(MAY_IMPORT.backends).to.have.members(["protocol", "log"]);
    for (const [layer, allowed] of Object.entries(MAY_IMPORT)) {
      if (layer !== "cli" && layer !== "server") expect(allowed, layer).not.to.include("server");
    }
    expect(MAY_IMPORT.fronts).to.have.members(["protocol", "log", "metrics"]);
  });
});
