import { execFileSync } from "node:child_process";
import { expect } from "chai";
import { addNumbers, compareNumbers, compose, decompose, normalizeNumber, subtractNumbers } from "../../../src/fronts/dynamodb/numbers.js";
import { refusal } from "./refusal.js";
import { Decimal } from "decimal.js";

const MAX = "9.9999999999999999999999999999999999999E+125";
const MAX_PLAIN = "99999999999999999999999999999999999999" + "0".repeat(88);
const MIN_PLAIN = "0." + "0".repeat(129) + "1";


const CONVERT = "The parameter cannot be converted to a numeric value";
const OVER = "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDER = "Number underflow. Attempting to store a number with magnitude smaller than supported range";
const DIGITS = "Attempting to store more than 38 significant digits in a Number";

describe("dynamodb numbers", () => {
  const canonical: [string, string][] = [
    ["0", "0"], ["-0", "0"], ["0.000", "0"], ["000", "0"], ["0e10", "0"], ["-0.0e-500", "0"], ["0e99999999999", "0"],
    ["1", "1"], ["-1", "-1"], ["+1", "1"], ["007", "7"], ["1.50", "1.5"], ["-0.50", "-0.5"], [".5", "0.5"], ["5.", "5"],
    ["1e3", "1000"], ["1E3", "1000"], ["1E+3", "1000"], ["1.5e-3", "0.0015"], ["12.3400", "12.34"], ["-12.3400e2", "-1234"],
    ["100", "100"], ["1000000", "1000000"], ["1e125", "1" + "0".repeat(125)], ["-1e125", "-1" + "0".repeat(125)],
    [MAX, MAX_PLAIN], ["-" + MAX, "-" + MAX_PLAIN], ["1E-130", MIN_PLAIN], ["-1E-130", "-" + MIN_PLAIN],
    ["12345678901234567890123456789012345678", "12345678901234567890123456789012345678"],
    ["1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"],
    ["0.00012345678901234567890123456789012345678", "0.00012345678901234567890123456789012345678"],
    ["000000000000000000000000000000000000000000001", "1"],
  ];
  for (const [input, want] of canonical) {
    it(`normalizes ${input.length > 30 ? input.slice(0, 30) + "…" : input}`, () => {
      expect(normalizeNumber(input)).to.equal(want);
      expect(normalizeNumber(want)).to.equal(want);
    });
  }

  const refused: [string, string][] = [
    ["", CONVERT], ["NaN", `${CONVERT}: NaN`], ["Infinity", `${CONVERT}: Infinity`], ["-Infinity", `${CONVERT}: -Infinity`],
    ["1e", `${CONVERT}: 1e`], ["e5", `${CONVERT}: e5`], ["abc", `${CONVERT}: abc`], ["0x10", `${CONVERT}: 0x10`],
    ["0b1", `${CONVERT}: 0b1`], [" 1", `${CONVERT}:  1`], ["1 ", `${CONVERT}: 1 `], ["1,5", `${CONVERT}: 1,5`],
    ["--1", `${CONVERT}: --1`], ["1e+", `${CONVERT}: 1e+`], [".", `${CONVERT}: .`], ["-", `${CONVERT}: -`], ["1.2.3", `${CONVERT}: 1.2.3`],
    ["1_000", `${CONVERT}: 1_000`], ["١", `${CONVERT}: ١`],
    ["1E126", OVER], ["-1E126", OVER], ["10E125", OVER], ["1e99999999999", OVER],
    ["1E-131", UNDER], ["-1E-131", UNDER], ["0.1E-130", UNDER], ["1e-99999999999", UNDER],
    ["123456789012345678901234567890123456789", DIGITS], ["1.23456789012345678901234567890123456789", DIGITS],
    ["-0.000123456789012345678901234567890123456789", DIGITS],
  ];
  for (const [input, want] of refused) {
    it(`refuses ${JSON.stringify(input)}`, () => expect(refusal(() => normalizeNumber(input))).to.equal(want));
  }

  it("refuses a non-string", () => {
    expect(refusal(() => normalizeNumber(5 as unknown as string))).to.equal(`${CONVERT}: 5`);
  });

  const order = ["-" + MAX, "-1e100", "-1000", "-2", "-1.5", "-1", "-0.5", "-1E-130", "0", "1E-130", "0.001", "0.5", "1", "1.0000001", "2", "10", "1e100", MAX];
  it("compares numerically, exactly", () => {
    for (let i = 0; i < order.length; i++) {
      for (let j = 0; j < order.length; j++) {
        expect(Math.sign(compareNumbers(order[i]!, order[j]!)), `${order[i]} vs ${order[j]}`).to.equal(Math.sign(i - j));
      }
    }
    expect(compareNumbers("12345678901234567890123456789012345678", "12345678901234567890123456789012345679")).to.be.below(0);
    expect(compareNumbers("1.0", "1")).to.equal(0);
  });

  const sums: [string, string, string][] = [
    ["1", "2", "3"], ["0.1", "0.2", "0.3"], ["-1", "1", "0"], ["1e125", "-1e125", "0"],
    ["99999999999999999999999999999999999999", "1", "100000000000000000000000000000000000000"],
    ["12345678901234567890123456789012345678", "-12345678901234567890123456789012345677", "1"],
    ["0.1", "-0.3", "-0.2"], ["1E-130", "1E-130", "0." + "0".repeat(129) + "2"],
  ];
  for (const [a, b, want] of sums) {
    it(`adds ${a.slice(0, 20)} + ${b.slice(0, 20)} exactly`, () => {
      expect(addNumbers(a, b)).to.equal(want);
      expect(subtractNumbers(want, b)).to.equal(normalizeNumber(a));
    });
  }

  it("refuses sums beyond the range or the precision", () => {
    expect(refusal(() => addNumbers(MAX, "1e88"))).to.equal(OVER);
    expect(refusal(() => subtractNumbers("-" + MAX, "1e88"))).to.equal(OVER);
    expect(refusal(() => addNumbers("1e100", "1"))).to.equal(DIGITS);
    expect(refusal(() => addNumbers("12345678901234567890123456789012345678", "0.1"))).to.equal(DIGITS);
    expect(refusal(() => addNumbers("1", "x"))).to.equal(`${CONVERT}: x`);
    expect(addNumbers(MAX, "-" + MAX)).to.equal("0");
  });

  it("loads as node's ESM loader loads it (decimal.mjs), not only as tsx's CommonJS path does", function () {
    this.timeout(30_000);
    const url = new URL("../../../src/fronts/dynamodb/numbers.ts", import.meta.url).href;
    const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e",
      `const m = await import(${JSON.stringify(url)}); process.stdout.write(m.addNumbers("0.1", "0.2"));`], { encoding: "utf8" });
    expect(out).to.equal("0.3");
  });

  it("decomposes and composes back", () => {
    for (const n of [...order, "123.456", "-0.00789", "5e20"]) {
      const c = normalizeNumber(n);
      const d = decompose(c);
      expect(compose(d.sign, d.exponent, d.digits)).to.equal(c);
      if (d.sign !== 0) expect(d.digits).to.match(/^[1-9](\d*[1-9])?$/);
    }
    expect(decompose("-123.45")).to.deep.equal({ sign: -1, exponent: 2, digits: "12345" });
    expect(decompose("0.05")).to.deep.equal({ sign: 1, exponent: -2, digits: "5" });
  });

  it("takes plain canonical numbers without decimal.js and agrees with it on every one (the fast path)", () => {
    // decimal.js's own answers, for numbers the fast path takes (<= 20 characters, canonical) and ones it must not.
    const viaDecimal = (n: string) => {
      const d = new Decimal(n);
      if (d.isZero()) return { sign: 0, exponent: 0, digits: "" };
      return { sign: d.isNeg() ? -1 : 1, exponent: d.e, digits: d.abs().toFixed().replace(".", "").replace(/^0+/, "").replace(/0+$/, "") };
    };
    let seed = 7;
    const rand = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
    const samples = ["0", "-0", "1", "-1", "10", "100", "-100", "0.5", "-0.05", "0.001", "1.5", "10.01", "12345678901234567890", "-1234567890123456789", "0.0000000000000000001", "1.0", "01", "1e2", "-0.0", "99999999999999999999"];
    for (let i = 0; i < 2000; i++) {
      const int = rand(3) === 0 ? "0" : String(rand(10 ** (1 + rand(9))));
      const frac = rand(2) ? "" : `.${String(rand(10 ** (1 + rand(8)))).padStart(1 + rand(6), "0")}`;
      samples.push(`${rand(2) ? "-" : ""}${int}${frac}`);
    }
    for (const n of samples) {
      const c = new Decimal(n).toFixed().replace(/^-0$/, "0");
      expect(normalizeNumber(n), n).to.equal(c);
      expect(decompose(c), c).to.deep.equal(viaDecimal(c));
    }
  });
});
