import { expect } from "chai";
import { compareKeys } from "../../src/protocol/types.js";

const utf8Order = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));

describe("compareKeys (UTF-8 byte order without allocating)", function () {
  // Characters from every range where UTF-16 and UTF-8 order could disagree.
  const alphabet = ["", "a", "b", "A", "/", "\u007f", "\u0080", "é", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "😀", "\u{10000}", "\u{10ffff}", "𝄞"];

  it("agrees with Buffer.compare on every pair of the edge characters and their combinations", function () {
    const keys = alphabet.flatMap((x) => alphabet.map((y) => x + y));
    let pairs = 0;
    for (const a of keys) {
      for (const b of keys) {
        expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).to.equal(utf8Order(a, b));
        pairs++;
      }
    }
    expect(pairs).to.equal(keys.length ** 2);
  });

  it("agrees with Buffer.compare on random strings", function () {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const randomKey = () => Array.from({ length: rand(6) }, () => alphabet[1 + rand(alphabet.length - 1)]).join("");
    for (let i = 0; i < 5000; i++) {
      const a = randomKey();
      const b = randomKey();
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).to.equal(utf8Order(a, b));
    }
  });
});
