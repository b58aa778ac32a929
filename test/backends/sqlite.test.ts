import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import Database from "better-sqlite3";
import { openStore } from "../../src/backends/index.js";
import { conformance } from "../conformance/suite.js";
import { failure } from "../support/errors.js";
import { buf, freshNamespace } from "../support/names.js";

const dir = mkdtempSync(join(tmpdir(), "decant-sqlite-"));
after(() => rmSync(dir, { recursive: true, force: true }));

conformance("sqlite", { open: () => openStore(`sqlite:${join(dir, "conformance.db")}`) });

// Files made before 2026-11-29 hold a WITHOUT ROWID table, which the store keeps using.
function withoutRowidFile(path: string): string {
  const db = new Database(path);
  db.exec("CREATE TABLE IF NOT EXISTS decant_items (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB, version INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID");
  db.close();
  return path;
}
conformance("sqlite, a file with the earlier WITHOUT ROWID table", { open: () => openStore(`sqlite:${withoutRowidFile(join(dir, "without-rowid.db"))}`) });

describe("sqlite specifics", function () {
  it("creates a missing last directory of the path (./data/decant.db in a fresh checkout)", async function () {
    const path = join(dir, "fresh-dir", "x.db");
    const s = await openStore(`sqlite:${path}`);
    await s.put(freshNamespace(), "k", buf("v"));
    await s.close();
    expect(existsSync(path)).to.equal(true);
  });

  it("refuses a path whose directories are missing deeper than one level, naming them, and creates nothing", async function () {
    const parent = join(dir, "no-such-parent");
    const s = await openStore(`sqlite:${join(parent, "dir", "x.db")}`);
    const err = await failure(s.get(freshNamespace(), "k"));
    expect(err.kind).to.equal("unavailable");
    expect(err.message).to.include(`sqlite:${join(parent, "dir", "x.db")}`);
    expect(err.message).to.include(`the directory ${join(parent, "dir")} does not exist, nor does ${parent}; create it first`);
    expect(existsSync(parent), "no directory was created").to.equal(false);
    await s.close();
  });

  it("creates new files with a rowid table and leaves an earlier WITHOUT ROWID table as it is", async function () {
    const layout = (path: string) => {
      const db = new Database(path, { readonly: true });
      const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'decant_items'").get() as { sql: string }).sql;
      db.close();
      return /WITHOUT ROWID/i.test(sql) ? "without rowid" : "rowid";
    };
    const fresh = join(dir, "layout.db");
    const s = await openStore(`sqlite:${fresh}`);
    await s.put(freshNamespace(), "k", buf("v"));
    await s.close();
    expect(layout(fresh)).to.equal("rowid");
    const oldFile = withoutRowidFile(join(dir, "layout-old.db"));
    const old = await openStore(`sqlite:${oldFile}`);
    await old.put(freshNamespace(), "k", buf("v"));
    await old.close();
    expect(layout(oldFile)).to.equal("without rowid");
  });

  it("keeps data across a reopen of the file", async function () {
    const url = `sqlite:${join(dir, "reopen.db")}`;
    const ns = freshNamespace();
    const a = await openStore(url);
    await a.put(ns, "k", buf("kept"));
    await a.delete(ns, "gone").catch(() => undefined);
    await a.close();
    const b = await openStore(url);
    expect((await b.get(ns, "k"))!.value.toString()).to.equal("kept");
    await b.close();
  });

  it("two handles on one file never lose a conditional update", async function () {
    const url = `sqlite:${join(dir, "shared.db")}`;
    const ns = freshNamespace();
    const [a, b] = [await openStore(url), await openStore(url)];
    await a.put(ns, "k", buf("0"));
    const cur = (await b.get(ns, "k"))!;
    await a.put(ns, "k", buf("1"), { kind: "expected_version", version: cur.version });
    let err: unknown;
    await b.put(ns, "k", buf("2"), { kind: "expected_version", version: cur.version }).catch((e) => (err = e));
    expect((err as { kind?: string }).kind).to.equal("version_mismatch");
    await a.close();
    await b.close();
  });

  it("reports an unusable path as unavailable, naming the path", async function () {
    const store = await openStore("sqlite:/dev/null/no/such/dir/x.db");
    let err: unknown;
    await store.get("ns", "k").catch((e) => (err = e));
    expect((err as { kind?: string }).kind).to.equal("unavailable");
    expect(String((err as Error).message)).to.include("/dev/null/no/such/dir/x.db");
  });
});
