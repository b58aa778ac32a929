// Root hooks: after the run, print how many tests passed per top-level suite (so CI shows
// the conformance count of every backend at a glance).
import type { Context } from "mocha";

const counts = new Map<string, { passed: number; failed: number; skipped: number }>();

export const mochaHooks = {
  afterEach(this: Context) {
    const test = this.currentTest;
    if (!test) return;
    const top = test.titlePath()[0] ?? "(root)";
    const c = counts.get(top) ?? { passed: 0, failed: 0, skipped: 0 };
    if (test.state === "passed") c.passed++;
    else if (test.state === "failed") c.failed++;
    else c.skipped++;
    counts.set(top, c);
  },
  afterAll() {
    const rows = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
    const width = Math.max(...rows.map(([n]) => n.length), 10);
    const lines = rows.map(([name, c]) => `  ${name.padEnd(width)}  ${String(c.passed).padStart(4)} passed${c.failed ? `, ${c.failed} FAILED` : ""}${c.skipped ? `, ${c.skipped} skipped` : ""}`);
    process.stdout.write(`\nTests per suite:\n${lines.join("\n")}\n`);
  },
};
