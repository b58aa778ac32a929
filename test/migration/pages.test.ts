import { expect } from "chai";
import { FIRST_PAGE_ITEMS, nextPageLimit, PAGE_BYTES } from "../../src/migration/pages.js";

const items = (n: number, valueBytes: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(valueBytes), version: 1n }));

describe("page sizes of the backfill and the verifier", function () {
  it("grows small items' pages up to the item limit", function () {
    expect(nextPageLimit(items(FIRST_PAGE_ITEMS, 1024), FIRST_PAGE_ITEMS, 1024)).to.equal(1024);
  });

  it("keeps a page of large values near PAGE_BYTES", function () {
    const limit = nextPageLimit(items(FIRST_PAGE_ITEMS, 200 * 1024), FIRST_PAGE_ITEMS, 1024);
    expect(limit).to.equal(20);
    expect(limit * 200 * 1024).to.be.at.most(PAGE_BYTES);
    expect(nextPageLimit(items(16, 400 * 1024), limit, 1024)).to.equal(16); // never below 16 items
  });

  it("never asks for more than the page size it was given, even below 16 items", function () {
    expect(nextPageLimit(items(8, 256), 8, 8)).to.equal(8);
    expect(nextPageLimit(items(4, 400 * 1024), 4, 4)).to.equal(4);
  });

  it("counts tombstones by their key and keeps the limit after an empty page", function () {
    expect(nextPageLimit([{ key: "gone", value: null, version: 3n }], 64, 1024)).to.equal(1024);
    expect(nextPageLimit([], 37, 1024)).to.equal(37);
  });
});
