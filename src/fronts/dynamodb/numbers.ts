// DynamoDB numbers: exact decimals with DynamoDB's limits (38 significant digits, magnitude 1E-130 .. <1E+126),
// held as canonical plain strings ("1e3" -> "1000", "-0.50" -> "-0.5", "-0" -> "0").
// The named export: the default import differs between decimal.mjs (node ESM) and decimal.js (CommonJS, tsx).
import { Decimal as DecimalJs } from "decimal.js";
import { validation } from "./types.js";

// Wide enough that every sum/difference of two in-range numbers is exact (exponents -130..125, 38 digits).
const Decimal = DecimalJs.clone({ precision: 400, toExpNeg: -9e15, toExpPos: 9e15, minE: -9e15, maxE: 9e15 });
type Dec = InstanceType<typeof Decimal>;

export const MAX_DIGITS = 38;
export const MAX_EXPONENT = 125; // largest: 9.99..9E+125
export const MIN_EXPONENT = -130; // smallest non-zero magnitude: 1E-130

// What java.math.BigDecimal accepts (DynamoDB parses with it); decimal.js alone would also take NaN, Infinity, 0x10.
const NUMBER_SYNTAX = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
// Exponents beyond this are decided without decimal.js (which would turn them into Infinity/0).
const MAX_LITERAL_EXPONENT = 1e9;

const cannotConvert = (n: string) =>
  validation(n === "" ? "The parameter cannot be converted to a numeric value" : `The parameter cannot be converted to a numeric value: ${n}`);

export const overflow = () =>
  validation("Number overflow. Attempting to store a number with magnitude larger than supported range");
export const underflow = () =>
  validation("Number underflow. Attempting to store a number with magnitude smaller than supported range");
export const tooPrecise = () => validation("Attempting to store more than 38 significant digits in a Number");

function parse(n: string): Dec {
  if (typeof n !== "string" || !NUMBER_SYNTAX.test(n)) throw cannotConvert(String(n));
  const e = /[eE]([+-]?\d+)$/.exec(n);
  if (e && Math.abs(Number(e[1])) > MAX_LITERAL_EXPONENT) {
    if (!/[1-9]/.test(n.slice(0, e.index))) return new Decimal(0);
    throw Number(e[1]) > 0 ? overflow() : underflow();
  }
  return new Decimal(n);
}

/** Throws unless d fits DynamoDB's range and precision; returns the canonical string. */
function checked(d: Dec): string {
  if (d.isZero()) return "0";
  if (d.e > MAX_EXPONENT) throw overflow();
  if (d.e < MIN_EXPONENT) throw underflow();
  if (d.sd() > MAX_DIGITS) throw tooPrecise();
  return d.toFixed();
}

/**
 * Already canonical and well inside every limit (at most 20 characters, so at most 20 significant
 * digits and a magnitude between 1E-19 and 1E+20): no leading zero, no trailing fractional zero,
 * no exponent, not "-0". Most numbers on the wire are like this; they skip decimal.js.
 */
const PLAIN = /^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$/;
const isPlain = (n: string) => n.length <= 20 && n !== "-0" && PLAIN.test(n);

/** The canonical form of a DynamoDB number, or a ValidationException worded as DynamoDB's. */
export function normalizeNumber(n: string): string {
  if (typeof n === "string" && isPlain(n)) return n;
  return checked(parse(n));
}

/** Numeric order of two (valid) numbers: negative, 0 or positive. */
export function compareNumbers(a: string, b: string): number {
  return new Decimal(a).cmp(new Decimal(b));
}

export function addNumbers(a: string, b: string): string {
  return checked(parse(a).plus(parse(b)));
}

export function subtractNumbers(a: string, b: string): string {
  return checked(parse(a).minus(parse(b)));
}

/** Sign (-1, 0, 1), scientific exponent and significant digits (no leading/trailing zeros) of a valid number. */
export function decompose(n: string): { sign: -1 | 0 | 1; exponent: number; digits: string } {
  if (isPlain(n)) return decomposePlain(n);
  const d = new Decimal(n);
  if (d.isZero()) return { sign: 0, exponent: 0, digits: "" };
  const digits = d.abs().toFixed().replace(".", "").replace(/^0+/, "").replace(/0+$/, "");
  return { sign: d.isNeg() ? -1 : 1, exponent: d.e, digits };
}

/** decompose of a canonical plain number, with string operations only. */
function decomposePlain(n: string): { sign: -1 | 0 | 1; exponent: number; digits: string } {
  if (n === "0") return { sign: 0, exponent: 0, digits: "" };
  const negative = n.charCodeAt(0) === 45; // "-"
  const abs = negative ? n.slice(1) : n;
  const dot = abs.indexOf(".");
  const int = dot < 0 ? abs : abs.slice(0, dot);
  const frac = dot < 0 ? "" : abs.slice(dot + 1);
  const sign = negative ? -1 : 1;
  if (int !== "0") return { sign, exponent: int.length - 1, digits: (int + frac).replace(/0+$/, "") };
  const zeros = frac.length - frac.replace(/^0+/, "").length;
  return { sign, exponent: -(zeros + 1), digits: frac.slice(zeros) };
}

/** Inverse of decompose. */
export function compose(sign: -1 | 0 | 1, exponent: number, digits: string): string {
  if (sign === 0) return "0";
  return new Decimal(`${sign < 0 ? "-" : ""}0.${digits}e${exponent + 1}`).toFixed();
}
