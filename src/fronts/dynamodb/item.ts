// DynamoDB items on the JSON wire: strict validation, DynamoDB's size rule, a canonical encoding, value equality.
import { compareKeys } from "../../protocol/types.js";
import { compareNumbers, decompose, normalizeNumber } from "./numbers.js";
import { type AttributeValue, type DItem, DynamoError, validation } from "./types.js";

export type AttributeType = "S" | "N" | "B" | "BOOL" | "NULL" | "M" | "L" | "SS" | "NS" | "BS";
export const ATTRIBUTE_TYPES: readonly AttributeType[] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];
const TYPE_SET = new Set<string>(ATTRIBUTE_TYPES);

/** DynamoDB's limit on nested M/L levels. */
export const MAX_DEPTH = 32;

/** Wrong JSON types are refused by DynamoDB's deserializer, before validation. */
const serialization = (message: string) => new DynamoError("SerializationException", message);

export function typeOf(v: AttributeValue): AttributeType {
  for (const k in v) return k as AttributeType;
  throw validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes");
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

function jsonKind(x: unknown): string {
  if (typeof x === "boolean") return x ? "TRUE_VALUE" : "FALSE_VALUE";
  if (typeof x === "number") return Number.isInteger(x) ? "NUMBER_VALUE" : "DECIMAL_VALUE";
  return "STRING_VALUE";
}

function wantString(x: unknown): string {
  if (typeof x === "string") return x;
  if (Array.isArray(x)) throw serialization("Unrecognized collection type class java.lang.String");
  if (isObject(x)) throw serialization("Start of structure or map found where not expected");
  throw serialization(`${jsonKind(x)} cannot be converted to String`);
}

function wantArray(x: unknown): unknown[] {
  if (Array.isArray(x)) return x;
  if (isObject(x)) throw serialization("Start of structure or map found where not expected");
  throw serialization("Unexpected field type");
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64: what Buffer.from would silently repair (bad characters, padding bits) is refused. */
export function checkBase64(x: unknown): string {
  if (typeof x !== "string") {
    if (Array.isArray(x)) throw serialization("Unrecognized collection type class java.nio.ByteBuffer");
    if (isObject(x)) throw serialization("Start of structure or map found where not expected");
    throw serialization("only base-64-encoded strings are convertible to bytes");
  }
  if (x.length % 4) throw serialization(`Base64 encoded length is expected a multiple of 4 bytes but found: ${x.length}`);
  if (!BASE64.test(x) || Buffer.from(x, "base64").toString("base64") !== x) {
    throw serialization("Invalid last non-pad Base64 character dectected");
  }
  return x;
}

function firstDuplicate(xs: string[]): string | undefined {
  const seen = new Set<string>();
  for (const x of xs) {
    if (seen.has(x)) return x;
    seen.add(x);
  }
  return undefined;
}

/** One AttributeValue, validated and with numbers normalized (a fresh object; the input is not changed). */
export function validateValue(raw: unknown, depth = 0): AttributeValue {
  if (!isObject(raw)) {
    if (Array.isArray(raw)) throw serialization("Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue");
    throw serialization("Unexpected value type in payload");
  }
  // Like DynamoDB's deserializer: unknown members and nulls are ignored, so {"X":1} is "empty";
  // every member is checked (its own error first) before "more than one datatype" is.
  let value: AttributeValue | undefined;
  let types = 0;
  for (const k in raw) {
    const x = raw[k];
    if (x === null || x === undefined || !TYPE_SET.has(k)) continue;
    const v = validateTyped(k as AttributeType, x, depth);
    if (types++ === 0) value = v;
  }
  if (types === 0) throw validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes");
  if (types > 1) throw validation("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes");
  return value!;
}

function validateTyped(type: AttributeType, x: unknown, depth: number): AttributeValue {
  switch (type) {
    case "S":
      return { S: wantString(x) };
    case "N":
      return { N: normalizeNumber(wantString(x)) };
    case "B":
      return { B: checkBase64(x) };
    case "BOOL":
      if (typeof x !== "boolean") throw serialization(`${jsonKind(x)} cannot be converted to Boolean`);
      return { BOOL: x };
    case "NULL":
      if (typeof x !== "boolean") throw serialization(`${jsonKind(x)} cannot be converted to Boolean`);
      // DynamoDB used to refuse {"NULL": false}; since 2026 it stores it as {"NULL": true} (captured on AWS).
      return { NULL: true };
    case "SS": {
      const ss = wantArray(x).map(wantString);
      if (!ss.length) throw validation("One or more parameter values were invalid: An string set  may not be empty");
      if (firstDuplicate(ss) !== undefined) {
        throw validation(`One or more parameter values were invalid: Input collection [${ss.join(", ")}] contains duplicates.`);
      }
      return { SS: ss };
    }
    case "NS": {
      const ns = wantArray(x).map((n) => normalizeNumber(wantString(n)));
      if (!ns.length) throw validation("One or more parameter values were invalid: An number set  may not be empty");
      if (firstDuplicate(ns) !== undefined) throw validation("Input collection contains duplicates");
      return { NS: ns };
    }
    case "BS": {
      const bs = wantArray(x).map(checkBase64);
      if (!bs.length) throw validation("One or more parameter values were invalid: Binary sets should not be empty");
      if (firstDuplicate(bs) !== undefined) {
        throw validation(`One or more parameter values were invalid: Input collection [${bs.join(", ")}]of type BS contains duplicates.`);
      }
      return { BS: bs };
    }
    case "L":
      if (depth >= MAX_DEPTH) throw tooDeep();
      return { L: wantArray(x).map((v) => validateValue(v, depth + 1)) };
    case "M": {
      if (!isObject(x)) {
        if (Array.isArray(x)) throw serialization("Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>");
        throw serialization("Unexpected field type");
      }
      if (depth >= MAX_DEPTH) throw tooDeep();
      const m: Record<string, AttributeValue> = {};
      for (const k of Object.keys(x)) {
        checkAttributeName(k);
        m[k] = validateValue(x[k], depth + 1);
      }
      return { M: m };
    }
  }
}

const tooDeep = () => validation("Nesting Levels have exceeded supported limits");

/**
 * "__proto__" is a valid DynamoDB attribute name, but a JavaScript object given it as a key by
 * assignment loses it (the assignment sets the object's prototype): refused by name, never lost.
 */
export function checkAttributeName(name: string): void {
  if (name === "__proto__") throw validation("One or more parameter values were invalid: the attribute name __proto__ is not supported by Decant's DynamoDB front");
}

/** How many lists/maps deep a value goes (a scalar: 0). */
function nesting(v: AttributeValue): number {
  if ("L" in v) return 1 + v.L.reduce((m, x) => Math.max(m, nesting(x)), 0);
  if ("M" in v) return 1 + Object.values(v.M).reduce((m, x) => Math.max(m, nesting(x)), 0);
  return 0;
}

/** Refuses an item nested deeper than DynamoDB allows (an update can build one from valid parts). */
export function checkNesting(item: DItem): void {
  for (const v of Object.values(item)) if (nesting(v) > MAX_DEPTH) throw tooDeep();
}

/** A whole item (or key): an object of attribute name -> AttributeValue. `where` names the request field. */
export function validateItem(item: unknown, where: string): DItem {
  if (!isObject(item)) {
    if (Array.isArray(item)) {
      throw serialization(`Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue> (${where})`);
    }
    throw serialization(`Unexpected field type (${where})`);
  }
  const out: DItem = {};
  for (const name in item) {
    const v = item[name];
    if (v === null || v === undefined) continue;
    if (name === "") throw validation(`One or more parameter values were invalid: An attribute name in ${where} is empty`);
    checkAttributeName(name);
    out[name] = validateValue(v, 0);
  }
  return out;
}

const utf8Length = (s: string) => Buffer.byteLength(s, "utf8");

/** Bytes of a number as DynamoDB counts them: about one per two significant digits, plus one (and one for the sign). */
function numberSize(n: string): number {
  const { sign, exponent, digits } = decompose(n);
  if (sign === 0) return 1;
  // Digits are stored in base-100 pairs aligned on the exponent's parity (dynalite's measured rule).
  const aligned = digits.length + (exponent % 2 === 0 ? 1 : 0);
  return 1 + Math.ceil(aligned / 2) + (sign < 0 ? 1 : 0);
}

export function valueSize(v: AttributeValue): number {
  if ("S" in v) return utf8Length(v.S);
  if ("N" in v) return numberSize(v.N);
  if ("B" in v) return Buffer.from(v.B, "base64").length;
  if ("BOOL" in v || "NULL" in v) return 1;
  if ("SS" in v) return v.SS.reduce((s, x) => s + utf8Length(x), 0);
  if ("NS" in v) return v.NS.reduce((s, x) => s + numberSize(x), 0);
  if ("BS" in v) return v.BS.reduce((s, x) => s + Buffer.from(x, "base64").length, 0);
  if ("L" in v) return 3 + v.L.reduce((s, x) => s + 1 + valueSize(x), 0);
  return 3 + Object.keys(v.M).reduce((s, k) => s + 1 + utf8Length(k) + valueSize(v.M[k]!), 0);
}

/** Item size DynamoDB's way: for each attribute, its name's UTF-8 bytes plus its value's size. */
export function itemSize(item: DItem): number {
  let size = 0;
  for (const name in item) size += utf8Length(name) + valueSize(item[name]!);
  return size;
}

/** DynamoDB's limit on one item. */
export const MAX_ITEM_SIZE = 400 * 1024;

/** Map keys sorted at every level; sets and lists keep their order (DynamoDB does not sort sets either). */
function canonical(v: AttributeValue): AttributeValue {
  if ("M" in v) return { M: sortedMap(v.M) };
  if ("L" in v) return { L: v.L.map(canonical) };
  return v;
}

function sortedMap(m: Record<string, AttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const k of Object.keys(m).sort()) out[k] = canonical(m[k]!);
  return out;
}

/** Whether a map's names are in order already at every level (then it is its own canonical form: no copy). */
function isCanonical(m: Record<string, AttributeValue>): boolean {
  let last: string | undefined;
  for (const k in m) {
    if (last !== undefined && !(last < k)) return false;
    last = k;
    if (!isCanonicalValue(m[k]!)) return false;
  }
  return true;
}

const isCanonicalValue = (v: AttributeValue): boolean => ("M" in v ? isCanonical(v.M) : "L" in v ? v.L.every(isCanonicalValue) : true);

/** Canonical encoding of a (validated) item: JSON, attribute names sorted at every level. */
export function encodeItem(item: DItem): Buffer {
  return Buffer.from(canonicalJson(item), "utf8");
}

/** What JSON.stringify escapes (and the surrogates it may): a string without any is written as it is. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const jsonString = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);

/** A name every JavaScript object enumerates first, in numeric order, whatever order it was set in. */
const isIndex = (name: string): boolean => /^(?:0|[1-9]\d*)$/.test(name) && Number(name) < 2 ** 32 - 1;

/**
 * JSON.stringify(sortedMap(item)), byte for byte, without the sorted copy: the top level is
 * written by hand in sorted order, each value as JSON.stringify writes it (nested maps sorted by
 * canonical()). An item with an index-like name takes the general way (objects put those first).
 */
function canonicalJson(item: DItem): string {
  const names = Object.keys(item);
  for (let i = 1; i < names.length; i++) {
    if (!(names[i - 1]! < names[i]!)) {
      names.sort();
      break;
    }
  }
  let out = "{";
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (isIndex(name)) return JSON.stringify(isCanonical(item) ? item : sortedMap(item));
    const v = item[name]!;
    const value = "S" in v ? `{"S":${jsonString(v.S)}}` : "N" in v ? `{"N":${jsonString(v.N)}}` : JSON.stringify(canonical(v));
    out += (i === 0 ? "" : ",") + jsonString(name) + ":" + value;
  }
  return out + "}";
}

export function decodeItem(buf: Buffer): DItem {
  const parsed: unknown = JSON.parse(buf.toString("utf8"));
  if (!isObject(parsed)) throw new Error("stored DynamoDB item is not a JSON object");
  return parsed as DItem;
}

/** Order of two strings by their UTF-8 bytes (code point order, unlike JavaScript's UTF-16 `<`). */
export const compareStrings = compareKeys;

export function compareBinary(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "base64"), Buffer.from(b, "base64"));
}

/** DynamoDB's order of two scalars of one type (S, N or B); undefined when they are not comparable. */
export function compareScalars(a: AttributeValue, b: AttributeValue): number | undefined {
  if ("S" in a && "S" in b) return compareStrings(a.S, b.S);
  if ("N" in a && "N" in b) return compareNumbers(a.N, b.N);
  if ("B" in a && "B" in b) return compareBinary(a.B, b.B);
  return undefined;
}

/**
 * Set members are canonical once validated (numbers normalized, base64 strict), so equal members are equal
 * strings and sets compare in linear time, even for the largest sets an item can hold.
 */
function sameSet(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const bs = new Set(b);
  return a.every((x) => bs.has(x));
}

const binEq = (x: string, y: string) => x === y || compareBinary(x, y) === 0;
const numEq = (x: string, y: string) => x === y || compareNumbers(x, y) === 0;

/** Value equality as DynamoDB's `=`: same type and same value; sets compare as sets, numbers numerically. */
export function equalValues(a: AttributeValue, b: AttributeValue): boolean {
  if ("S" in a) return "S" in b && a.S === b.S;
  if ("N" in a) return "N" in b && numEq(a.N, b.N);
  if ("B" in a) return "B" in b && binEq(a.B, b.B);
  if ("BOOL" in a) return "BOOL" in b && a.BOOL === b.BOOL;
  if ("NULL" in a) return "NULL" in b;
  if ("SS" in a) return "SS" in b && sameSet(a.SS, b.SS);
  if ("NS" in a) return "NS" in b && sameSet(a.NS, b.NS);
  if ("BS" in a) return "BS" in b && sameSet(a.BS, b.BS);
  if ("L" in a) return "L" in b && a.L.length === b.L.length && a.L.every((x, i) => equalValues(x, b.L[i]!));
  if (!("M" in b)) return false;
  const ka = Object.keys(a.M);
  return ka.length === Object.keys(b.M).length && ka.every((k) => k in b.M && equalValues(a.M[k]!, b.M[k]!));
}
