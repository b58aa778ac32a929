#!/usr/bin/env node
// In a checkout, runs the TypeScript sources through tsx (so an edit is never shadowed by a
// stale build); where only the compiled output ships (the container image), runs dist/.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const source = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const built = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(built).href);
}
