import { expect } from "chai";
import { compareScalars } from "../../../src/fronts/dynamodb/item.js";
import { decodeKey, encodeKey, encodeKeyValue, partitionPrefix } from "../../../src/fronts/dynamodb/keys.js";
import { normalizeNumber } from "../../../src/fronts/dynamodb/numbers.js";
import type { AttributeValue, DItem, KeySchema } from "../../../src/fronts/dynamodb/types.js";
import { refusal } from "./refusal.js";

// A small deterministic PRNG so failures reproduce.
function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
}
const rand = rng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const CHARS = ["\u0000", "\u0001", "\u0002", "a", "b", "~", "\u007f", "\u0080", "é", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "😀", "\u{10ffff}"];
function randomS(): string {
  const n = Math.floor(rand() * 6);
  let s = "";
  for (let i = 0; i < n; i++) s += pick(CHARS);
  return s || "x";
}
function randomN(): string {
  const digits = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => pick("0123456789".split(""))).join("");
  const exp = pick([-130, -129, -5, -1, 0, 1, 2, 7, 124, 125]) - (digits.length - 1);
  const sign = rand() < 0.5 ? "-" : "";
  try {
    return normalizeNumber(`${sign}${digits}e${exp}`);
  } catch {
    return normalizeNumber(`${sign}${digits}`);
  }
}
function randomB(): string {
  const n = 1 + Math.floor(rand() * 5);
  return Buffer.from(Array.from({ length: n }, () => pick([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]))).toString("base64");
}
const RANDOM = { S: () => ({ S: randomS() }), N: () => ({ N: randomN() }), B: () => ({ B: randomB() }) } as const;

const utf8 = (s: string) => Buffer.from(s, "utf8");
const byteOrder = (a: string, b: string) => Math.sign(Buffer.compare(utf8(a), utf8(b)));
const dynamoOrder = (a: AttributeValue, b: AttributeValue) => Math.sign(compareScalars(a, b)!);


describe("dynamodb store keys", () => {
  for (const hashType of ["S", "N", "B"] as const) {
    for (const rangeType of ["S", "N", "B"] as const) {
      const schema: KeySchema = { hash: { name: "pk", type: hashType }, range: { name: "sk", type: rangeType } };
      it(`${hashType}/${rangeType}: store byte order within a partition is DynamoDB's range order`, () => {
        const hash = RANDOM[hashType]();
        const prefix = partitionPrefix(schema, hash);
        const values = Array.from({ length: 300 }, () => RANDOM[rangeType]());
        const keys = values.map((sk) => encodeKey(schema, { pk: hash, sk }));
        for (let i = 0; i < values.length; i++) {
          expect(keys[i]!.startsWith(prefix)).to.equal(true);
          for (let j = 0; j < values.length; j += 7) {
            expect(byteOrder(keys[i]!, keys[j]!), `${JSON.stringify(values[i])} vs ${JSON.stringify(values[j])}`)
              .to.equal(dynamoOrder(values[i]!, values[j]!));
          }
        }
        const sorted = [...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
        const want = [...values].sort(dynamoOrder).map((sk) => encodeKey(schema, { pk: hash, sk }));
        expect(sorted).to.deep.equal(want);
      });

      it(`${hashType}/${rangeType}: injective, valid UTF-8, no NUL, decodes back`, () => {
        const seen = new Map<string, string>();
        for (let i = 0; i < 400; i++) {
          const item: DItem = { pk: RANDOM[hashType](), sk: RANDOM[rangeType]() };
          const key = encodeKey(schema, item);
          expect(utf8(key).toString("utf8")).to.equal(key);
          expect(key).not.to.contain("\u0000");
          expect(decodeKey(schema, key)).to.deep.equal(item);
          const id = JSON.stringify(item);
          if (seen.has(key)) expect(seen.get(key)).to.equal(id);
          seen.set(key, id);
        }
      });

      it(`${hashType}/${rangeType}: no partition's prefix is a prefix of another partition's keys`, () => {
        const hashes = Array.from({ length: 60 }, () => RANDOM[hashType]());
        for (const h1 of hashes) {
          for (const h2 of hashes) {
            const same = JSON.stringify(h1) === JSON.stringify(h2);
            const k2 = encodeKey(schema, { pk: h2, sk: RANDOM[rangeType]() });
            expect(k2.startsWith(partitionPrefix(schema, h1)), `${JSON.stringify(h1)} / ${JSON.stringify(h2)}`).to.equal(same);
          }
        }
      });
    }
  }

  it("hash-only tables: the key is the partition prefix, and decodes back", () => {
    for (const type of ["S", "N", "B"] as const) {
      const schema: KeySchema = { hash: { name: "id", type } };
      for (let i = 0; i < 200; i++) {
        const id = RANDOM[type]();
        const key = encodeKey(schema, { id, other: { S: "ignored" } });
        expect(key).to.equal(partitionPrefix(schema, id));
        expect(decodeKey(schema, key)).to.deep.equal({ id });
      }
    }
  });

  it("S values that differ only in NUL, U+0001 and U+0002 get distinct, ordered keys", () => {
    const schema: KeySchema = { hash: { name: "pk", type: "S" }, range: { name: "sk", type: "S" } };
    const values = ["\u0000", "\u0000\u0000", "\u0000\u0001", "\u0001", "\u0001\u0000", "\u0001\u0001", "\u0002", "a", "a\u0000", "a\u0001"];
    const keys = values.map((v) => encodeKey(schema, { pk: { S: "\u0001" }, sk: { S: v } }));
    expect(new Set(keys).size).to.equal(values.length);
    expect([...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)))).to.deep.equal(keys);
    for (const k of keys) expect(decodeKey(schema, k).pk).to.deep.equal({ S: "\u0001" });
  });

  it("numbers: equal values give one key whatever their spelling; order covers the whole range", () => {
    const schema: KeySchema = { hash: { name: "pk", type: "N" }, range: { name: "sk", type: "N" } };
    const k = (n: string) => encodeKey(schema, { pk: { N: "1" }, sk: { N: normalizeNumber(n) } });
    expect(k("1.50")).to.equal(k("15e-1"));
    const ordered = ["-9.9999999999999999999999999999999999999E+125", "-1e125", "-51", "-5", "-4.99", "-1", "-1E-130", "0",
      "1E-130", "0.001", "1", "1.0000000000000000000000000000000000001", "5", "51", "1e125", "9.9999999999999999999999999999999999999E+125"];
    const keys = ordered.map(k);
    expect([...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)))).to.deep.equal(keys);
  });

  it("begins_with is a key prefix for S and B range keys", () => {
    const s: KeySchema = { hash: { name: "pk", type: "S" }, range: { name: "sk", type: "S" } };
    const key = encodeKey(s, { pk: { S: "p" }, sk: { S: "ab\u0000c😀" } });
    for (const pre of ["a", "ab", "ab\u0000", "ab\u0000c", "ab\u0000c😀"]) {
      expect(key.startsWith(partitionPrefix(s, { S: "p" }) + encodeKeyValue("S", { S: pre }))).to.equal(true);
    }
    expect(key.startsWith(partitionPrefix(s, { S: "p" }) + encodeKeyValue("S", { S: "ab\u0001" }))).to.equal(false);
    const b: KeySchema = { hash: { name: "pk", type: "S" }, range: { name: "sk", type: "B" } };
    const bkey = encodeKey(b, { pk: { S: "p" }, sk: { B: "AAEC" } });
    expect(bkey.startsWith(partitionPrefix(b, { S: "p" }) + encodeKeyValue("B", { B: "AAE=" }))).to.equal(true);
  });

  describe("refusals, with DynamoDB's messages", () => {
    const schema: KeySchema = { hash: { name: "pk", type: "S" }, range: { name: "sk", type: "N" } };
    const cases: [DItem, "item" | "key", string][] = [
      [{ sk: { N: "1" } }, "item", "One or more parameter values were invalid: Missing the key pk in the item"],
      [{ pk: { S: "a" } }, "item", "One or more parameter values were invalid: Missing the key sk in the item"],
      [{ pk: { N: "1" }, sk: { N: "1" } }, "item", "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"],
      [{ pk: { S: "" }, sk: { N: "1" } }, "item", "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"],
      [{ pk: { S: "a" } }, "key", "The provided key element does not match the schema"],
      [{ pk: { S: "a" }, sk: { N: "1" }, x: { S: "y" } }, "key", "The provided key element does not match the schema"],
      [{ pk: { S: "a" }, sk: { S: "1" } }, "key", "The provided key element does not match the schema"],
      [{ pk: { S: "x".repeat(2049) }, sk: { N: "1" } }, "item", "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"],
    ];
    for (const [item, what, want] of cases) {
      it(`${what} ${JSON.stringify(item).slice(0, 60)}`, () => expect(refusal(() => encodeKey(schema, item, what))).to.equal(want));
    }
    it("an empty binary key, an oversize range key", () => {
      const b: KeySchema = { hash: { name: "pk", type: "B" }, range: { name: "sk", type: "S" } };
      expect(refusal(() => encodeKey(b, { pk: { B: "" }, sk: { S: "a" } }))).to.equal(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty binary value. Key: pk");
      expect(refusal(() => encodeKey(b, { pk: { B: "AA==" }, sk: { S: "é".repeat(513) } }))).to.equal(
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes");
    });
    it("a key beyond the store's 1024 bytes, which DynamoDB would allow", () => {
      expect(refusal(() => encodeKey(schema, { pk: { S: "x".repeat(1500) }, sk: { N: "1" } }))).to.match(/more than Decant's limit of 1024/);
      expect(() => encodeKey(schema, { pk: { S: "x".repeat(1000) }, sk: { N: "1" } })).not.to.throw();
    });
    it("a lone surrogate in a key string", () => {
      expect(refusal(() => encodeKey(schema, { pk: { S: "a\ud800" }, sk: { N: "1" } }))).to.match(/lone surrogate/);
    });
    it("malformed store keys are not decoded silently", () => {
      expect(() => decodeKey(schema, "abc")).to.throw(/not a DynamoDB store key/);
      expect(() => decodeKey(schema, "a\u0001\u0001" + "9x")).to.throw(/malformed number/);
      expect(() => decodeKey({ hash: { name: "pk", type: "B" } }, "zz\u0001\u0001")).to.throw(/malformed binary/);
      expect(() => decodeKey({ hash: { name: "pk", type: "S" } }, "a\u0001\u0001rest")).to.throw(/hash-only/);
    });
  });
});
