import { expect } from "chai";
import {
  compareScalars, decodeItem, encodeItem, equalValues, itemSize, validateItem, validateValue, valueSize,
} from "../../../src/fronts/dynamodb/item.js";
import type { AttributeValue, DItem } from "../../../src/fronts/dynamodb/types.js";
import { refusal } from "./refusal.js";


const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

function nest(depth: number): unknown {
  let v: unknown = { S: "x" };
  for (let i = 0; i < depth; i++) v = i % 2 ? { L: [v] } : { M: { a: v } };
  return v;
}

describe("dynamodb items", () => {
  describe("validateValue accepts and normalizes", () => {
    const ok: [unknown, AttributeValue][] = [
      [{ S: "" }, { S: "" }], [{ S: "héllo😀" }, { S: "héllo😀" }], [{ N: "1e2" }, { N: "100" }], [{ N: "-0.50" }, { N: "-0.5" }],
      [{ B: "" }, { B: "" }], [{ B: b64("abc") }, { B: "YWJj" }], [{ B: "AAEC/w==" }, { B: "AAEC/w==" }],
      [{ BOOL: false }, { BOOL: false }], [{ BOOL: true }, { BOOL: true }], [{ NULL: true }, { NULL: true }], [{ NULL: false }, { NULL: true }],
      [{ SS: ["a", "b"] }, { SS: ["a", "b"] }], [{ SS: [""] }, { SS: [""] }], [{ NS: ["1", "2.50"] }, { NS: ["1", "2.5"] }],
      [{ BS: ["AA==", "AQ=="] }, { BS: ["AA==", "AQ=="] }], [{ L: [] }, { L: [] }], [{ M: {} }, { M: {} }],
      [{ L: [{ N: "01" }, { M: { x: { NS: ["1E1"] } } }] }, { L: [{ N: "1" }, { M: { x: { NS: ["10"] } } }] }],
      [{ S: "x", Unknown: 1 }, { S: "x" }], [{ S: "x", N: null }, { S: "x" }],
    ];
    for (const [input, want] of ok) {
      it(JSON.stringify(input), () => {
        const before = JSON.stringify(input);
        expect(validateValue(input)).to.deep.equal(want);
        expect(JSON.stringify(input)).to.equal(before); // input untouched
      });
    }
  });

  describe("validateValue refuses with DynamoDB's messages", () => {
    const bad: [unknown, string, string?][] = [
      [{}, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"],
      [{ X: "1" }, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"],
      [{ S: "a", N: "1" }, "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"],
      [{ SS: [] }, "One or more parameter values were invalid: An string set  may not be empty"],
      [{ NS: [] }, "One or more parameter values were invalid: An number set  may not be empty"],
      [{ BS: [] }, "One or more parameter values were invalid: Binary sets should not be empty"],
      [{ SS: ["a", "b", "a"] }, "One or more parameter values were invalid: Input collection [a, b, a] contains duplicates."],
      [{ NS: ["1", "1.0"] }, "Input collection contains duplicates"],
      [{ BS: ["AA==", "AA=="] }, "One or more parameter values were invalid: Input collection [AA==, AA==]of type BS contains duplicates."],
      [{ N: "abc" }, "The parameter cannot be converted to a numeric value: abc"],
      [{ NS: ["1", "x"] }, "The parameter cannot be converted to a numeric value: x"],
      [{ N: "1e200" }, "Number overflow. Attempting to store a number with magnitude larger than supported range"],
      [{ L: [{ N: "NaN" }] }, "The parameter cannot be converted to a numeric value: NaN"],
      [{ M: { a: {} } }, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"],
      [nest(33), "Nesting Levels have exceeded supported limits"],
      [{ S: 5 }, "NUMBER_VALUE cannot be converted to String", "SerializationException"],
      [{ S: 1.5 }, "DECIMAL_VALUE cannot be converted to String", "SerializationException"],
      [{ S: true }, "TRUE_VALUE cannot be converted to String", "SerializationException"],
      [{ S: {} }, "Start of structure or map found where not expected", "SerializationException"],
      [{ S: [] }, "Unrecognized collection type class java.lang.String", "SerializationException"],
      [{ N: 5 }, "NUMBER_VALUE cannot be converted to String", "SerializationException"],
      [{ BOOL: "yes" }, "STRING_VALUE cannot be converted to Boolean", "SerializationException"],
      [{ SS: "a" }, "Unexpected field type", "SerializationException"],
      [{ SS: [1] }, "NUMBER_VALUE cannot be converted to String", "SerializationException"],
      [{ B: "abc" }, "Base64 encoded length is expected a multiple of 4 bytes but found: 3", "SerializationException"],
      [{ B: "ab-_" }, "Invalid last non-pad Base64 character dectected", "SerializationException"],
      [{ B: "AB==" }, "Invalid last non-pad Base64 character dectected", "SerializationException"], // padding bits set
      [{ B: "A===" }, "Invalid last non-pad Base64 character dectected", "SerializationException"],
      [{ B: "=AAA" }, "Invalid last non-pad Base64 character dectected", "SerializationException"],
      [{ B: 5 }, "only base-64-encoded strings are convertible to bytes", "SerializationException"],
      [{ BS: ["AA=", "AA=="] }, "Base64 encoded length is expected a multiple of 4 bytes but found: 3", "SerializationException"],
      [{ M: [] }, "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>", "SerializationException"],
      [{ L: {} }, "Start of structure or map found where not expected", "SerializationException"],
      ["x", "Unexpected value type in payload", "SerializationException"],
      [[], "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue", "SerializationException"],
    ];
    for (const [input, want, type] of bad) {
      it(JSON.stringify(input).slice(0, 80), () => expect(refusal(() => validateValue(input), type)).to.equal(want));
    }
    it("accepts nesting of exactly 32 levels", () => expect(() => validateValue(nest(32))).not.to.throw());
  });

  describe("validateItem", () => {
    it("validates every attribute and drops nulls", () => {
      expect(validateItem({ a: { N: "1.0" }, b: null, c: { S: "" } }, "Item")).to.deep.equal({ a: { N: "1" }, c: { S: "" } });
    });
    it("refuses non-objects and empty names", () => {
      expect(refusal(() => validateItem([], "Item"), "SerializationException")).to.contain("Item");
      expect(refusal(() => validateItem("x", "Item"), "SerializationException")).to.contain("Item");
      expect(refusal(() => validateItem({ "": { S: "x" } }, "Item"))).to.contain("empty");
      expect(refusal(() => validateItem({ a: { SS: [] } }, "Item"))).to.contain("string set");
    });
  });

  describe("itemSize, DynamoDB's way", () => {
    const cases: [DItem, number][] = [
      [{}, 0],
      [{ a: { S: "" } }, 1], [{ a: { S: "abc" } }, 4], [{ é: { S: "é😀" } }, 2 + 6],
      [{ a: { N: "0" } }, 2], [{ a: { N: "1" } }, 1 + 2], [{ a: { N: "12" } }, 1 + 2], [{ a: { N: "123" } }, 1 + 3],
      [{ a: { N: "-1" } }, 1 + 3], [{ a: { N: "1.5" } }, 1 + 3], [{ a: { N: "10" } }, 1 + 2],
      [{ a: { N: "12345678901234567890123456789012345678" } }, 1 + 20],
      [{ a: { B: "AAEC" } }, 1 + 3], [{ a: { B: "" } }, 1], [{ a: { BOOL: true } }, 2], [{ a: { NULL: true } }, 2],
      [{ a: { SS: ["ab", "c"] } }, 1 + 3], [{ a: { NS: ["1", "12"] } }, 1 + 2 + 2], [{ a: { BS: ["AA==", "AAE="] } }, 1 + 3],
      [{ a: { L: [] } }, 1 + 3], [{ a: { L: [{ S: "ab" }, { BOOL: true }] } }, 1 + 3 + (1 + 2) + (1 + 1)],
      [{ a: { M: {} } }, 1 + 3], [{ a: { M: { xy: { S: "ab" } } } }, 1 + 3 + 1 + 2 + 2],
      [{ ab: { S: "x" }, cd: { N: "5" } }, 3 + 4],
    ];
    for (const [item, want] of cases) it(JSON.stringify(item).slice(0, 70), () => expect(itemSize(item)).to.equal(want));
    // Byte costs measured on AWS (an accept/reject pair at the 400 KB limit per literal; nubo-db/dynamodb-conformance).
    const MEASURED: [string, number][] = [
      ["0", 1], ["1", 2], ["12", 2], ["123", 3], ["1234", 3], ["12345678901234567890123456789012345678", 20], ["0042", 2],
      ["100", 2], ["1010", 3], ["0.0000001", 2], ["1E125", 2], ["1E-100", 2], ["1.5", 3], ["15", 2], ["1.2", 3], ["1.200", 3],
      ["1.234", 4], ["3.14159", 5], ["123456", 4], ["100.5", 4], ["0.15", 2], ["-42", 3], ["-0", 1],
    ];
    for (const [n, bytes] of MEASURED) {
      it(`a number ${n} costs ${bytes} bytes, as measured on DynamoDB`, () => expect(valueSize(validateValue({ N: n }))).to.equal(bytes));
    }
    it("agrees with dynalite's number rule on a range of numbers", () => {
      for (const n of ["1", "12", "123", "1234", "0.1", "0.12", "1.23", "12.3", "-12.3", "1e10", "1.1e11", "99", "100", "101"]) {
        const digits = n.replace(/^-/, "").replace(/e.*$/, "").replace(".", "").replace(/^0+/, "").replace(/0+$/, "");
        const e = Math.floor(Math.log10(Math.abs(Number(n))));
        const want = 1 + Math.ceil(digits.length / 2) + (digits.length % 2 || e % 2 ? 0 : 1) + (n.startsWith("-") ? 1 : 0);
        expect(valueSize(validateValue({ N: n })), n).to.equal(want);
      }
    });
  });

  describe("encodeItem / decodeItem", () => {
    it("is canonical: attribute order does not matter at any level", () => {
      const a = { b: { M: { z: { S: "1" }, a: { L: [{ M: { y: { N: "1" }, x: { N: "2" } } }] } } }, a: { SS: ["q", "p"] } };
      const b = { a: { SS: ["q", "p"] }, b: { M: { a: { L: [{ M: { x: { N: "2" }, y: { N: "1" } } }] }, z: { S: "1" } } } };
      expect(encodeItem(a as DItem).equals(encodeItem(b as DItem))).to.equal(true);
      expect(encodeItem(a as DItem).toString()).to.equal(
        '{"a":{"SS":["q","p"]},"b":{"M":{"a":{"L":[{"M":{"x":{"N":"2"},"y":{"N":"1"}}}]},"z":{"S":"1"}}}}');
    });
    it("sorts names nested under sorted ones, and integer-like names, as a full sort would (the in-order fast path)", () => {
      const deep = { a: { L: [{ S: "s" }, { M: { y: { N: "1" }, x: { N: "2" } } }] }, b: { S: "b" } } as DItem;
      expect(encodeItem(deep).toString()).to.equal('{"a":{"L":[{"S":"s"},{"M":{"x":{"N":"2"},"y":{"N":"1"}}}]},"b":{"S":"b"}}');
      const numeric = { a: { S: "a" }, "10": { S: "10" }, "9": { S: "9" } } as DItem;
      expect(encodeItem(numeric).toString()).to.equal(JSON.stringify({ "9": { S: "9" }, "10": { S: "10" }, a: { S: "a" } }));
      expect(encodeItem({ a: { S: "1" }, b: { M: { c: { S: "2" }, d: { S: "3" } } } }).toString()).to.equal('{"a":{"S":"1"},"b":{"M":{"c":{"S":"2"},"d":{"S":"3"}}}}');
    });
    it("writes names and strings that need escaping (quotes, controls, lone surrogates) as JSON.stringify does (the hand-written top level)", () => {
      const sorted = (m: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]]));
      const tricky = ["", "a", '"', "\\", "\n", "\u0000", "\u001f", "\u007f", "é", "😀", "\ud800", "\udc00x", "\u2028", "01", "4294967295", "-1"];
      for (const name of tricky) {
        for (const text of tricky) {
          const item = { z: { S: text }, [name || "e"]: { S: text }, n: { N: "-1.5" }, m: { M: { [text || "k"]: { S: name } } } } as DItem;
          expect(encodeItem(item).toString(), JSON.stringify([name, text])).to.equal(JSON.stringify(sorted({ ...item, m: { M: sorted((item.m as { M: Record<string, unknown> }).M) } })));
        }
      }
    });
    it("refuses the attribute name __proto__ by name at any level (an assignment would lose it)", () => {
      for (const raw of ['{"__proto__":{"S":"x"}}', '{"a":{"M":{"__proto__":{"S":"x"}}}}', '{"a":{"L":[{"M":{"__proto__":{"N":"1"}}}]}}']) {
        expect(refusal(() => validateItem(JSON.parse(raw), "Item")), raw).to.match(/__proto__ is not supported/);
      }
    });
    it("decodes exactly what it encoded", () => {
      const item: DItem = {
        s: { S: "\u0000é😀\"\\" }, n: { N: "-1.5" }, b: { B: "AAEC/w==" }, t: { BOOL: true }, z: { NULL: true },
        l: { L: [{ S: "" }, { L: [] }, { M: {} }] }, m: { M: { "x.y": { NS: ["3", "1"] }, "#": { BS: ["AA=="] } } }, e: { S: "" },
      };
      expect(decodeItem(encodeItem(item))).to.deep.equal(item);
    });
    it("refuses a stored value that is not an object", () => {
      expect(() => decodeItem(Buffer.from("[]"))).to.throw(/not a JSON object/);
    });
  });

  describe("equalValues", () => {
    const equal: [AttributeValue, AttributeValue][] = [
      [{ S: "a" }, { S: "a" }], [{ N: "1" }, { N: "1.0" }], [{ B: "AA==" }, { B: "AA==" }], [{ NULL: true }, { NULL: true }],
      [{ SS: ["a", "b"] }, { SS: ["b", "a"] }], [{ NS: ["1", "2"] }, { NS: ["2", "1"] }], [{ BS: ["AA==", "AQ=="] }, { BS: ["AQ==", "AA=="] }],
      [{ L: [{ S: "a" }, { N: "1" }] }, { L: [{ S: "a" }, { N: "1" }] }], [{ M: { a: { S: "x" }, b: { N: "2" } } }, { M: { b: { N: "2" }, a: { S: "x" } } }],
      [{ BOOL: false }, { BOOL: false }],
    ];
    const unequal: [AttributeValue, AttributeValue][] = [
      [{ S: "a" }, { S: "b" }], [{ S: "1" }, { N: "1" }], [{ N: "1" }, { N: "2" }], [{ B: "AA==" }, { S: "AA==" }],
      [{ SS: ["a"] }, { SS: ["a", "b"] }], [{ SS: ["a"] }, { L: [{ S: "a" }] }], [{ L: [{ S: "a" }, { N: "1" }] }, { L: [{ N: "1" }, { S: "a" }] }],
      [{ M: { a: { S: "x" } } }, { M: { a: { S: "x" }, b: { S: "x" } } }], [{ M: { a: { S: "x" } } }, { M: { b: { S: "x" } } }],
      [{ BOOL: true }, { BOOL: false }], [{ NULL: true }, { BOOL: false }], [{ NS: ["1"] }, { SS: ["1"] }],
    ];
    for (const [a, b] of equal) it(`${JSON.stringify(a)} = ${JSON.stringify(b)}`, () => {
      expect(equalValues(a, b)).to.equal(true);
      expect(equalValues(b, a)).to.equal(true);
    });
    for (const [a, b] of unequal) it(`${JSON.stringify(a)} <> ${JSON.stringify(b)}`, () => {
      expect(equalValues(a, b)).to.equal(false);
      expect(equalValues(b, a)).to.equal(false);
    });
  });

  it("compares large sets as sets", () => {
    const xs = Array.from({ length: 5000 }, (_, i) => String(i));
    const ys = [...xs].reverse();
    expect(equalValues({ NS: xs }, { NS: ys })).to.equal(true);
    expect(equalValues({ SS: xs }, { SS: [...ys.slice(1), "x"] })).to.equal(false);
  });

  describe("compareScalars", () => {
    it("orders S by UTF-8 bytes, N numerically, B by bytes; other pairs are incomparable", () => {
      expect(compareScalars({ S: "\uffff" }, { S: "😀" })).to.be.below(0); // UTF-16 order would say the opposite
      expect(compareScalars({ S: "a" }, { S: "ab" })).to.be.below(0);
      expect(compareScalars({ N: "10" }, { N: "9" })).to.be.above(0);
      expect(compareScalars({ B: "/w==" }, { B: "AAA=" })).to.be.above(0);
      expect(compareScalars({ S: "1" }, { N: "1" })).to.equal(undefined);
      expect(compareScalars({ BOOL: true }, { BOOL: true })).to.equal(undefined);
    });
  });
});
