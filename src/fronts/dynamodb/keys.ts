// Store keys of DynamoDB items (DESIGN.md §6): partition prefix + range part, injective, valid UTF-8, no NUL,
// and within a partition the UTF-8 byte order of the store key equals DynamoDB's order of the range key.
//
// Each key attribute is written in an order-preserving alphabet whose code words are prefix-free:
//   S: the string itself, with U+0000 -> U+0001 U+0002 and U+0001 -> U+0001 U+0003 (UTF-8 byte order is kept:
//      every other character's bytes are >= 0x02);
//   B: lowercase hex of the bytes;
//   N: sign ("0" negative, "1" zero, "2" positive), the exponent biased to 000..255 (inverted for negatives),
//      the significant digits (nines' complement and a closing "~" for negatives, so -5 sorts after -51).
// The hash part ends with U+0001 U+0001, which no code word starts with, so no partition's prefix is a prefix
// of another's. The range part is last and needs no terminator.
import { decompose, compose } from "./numbers.js";
import type { AttributeValue, DItem, KeySchema } from "./types.js";
import { validation } from "./types.js";

export const HASH_END = "\u0001\u0001";
/** The store protocol's key limit (DESIGN.md §2: 1-1024 UTF-8 bytes). */
export const MAX_STORE_KEY_BYTES = 1024;
export const MAX_HASH_KEY_BYTES = 2048;
export const MAX_RANGE_KEY_BYTES = 1024;

type KeyType = "S" | "N" | "B";
const EXP_BIAS = 130;
const EXP_MAX = 255; // 125 + 130

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const ESCAPED = /[\u0000\u0001]/;

function encodeString(s: string): string {
  if (!ESCAPED.test(s)) return s;
  return s.replace(/[\u0000\u0001]/g, (c) => (c === "\u0000" ? "\u0001\u0002" : "\u0001\u0003"));
}

function decodeString(s: string): string {
  return s.replace(/\u0001[\u0002\u0003]/g, (c) => (c === "\u0001\u0002" ? "\u0000" : "\u0001"));
}

function encodeNumber(n: string): string {
  const { sign, exponent, digits } = decompose(n);
  if (sign === 0) return "1";
  const biased = exponent + EXP_BIAS;
  if (sign > 0) return `2${String(biased).padStart(3, "0")}${digits}`;
  const complement = digits.replace(/\d/g, (d) => String(9 - Number(d)));
  return `0${String(EXP_MAX - biased).padStart(3, "0")}${complement}~`;
}

function decodeNumber(s: string): string {
  if (s === "1") return "0";
  const m = /^([02])(\d{3})(\d+)(~?)$/.exec(s);
  if (!m || (m[1] === "0") !== (m[4] === "~")) throw new Error(`malformed number in a DynamoDB store key: ${JSON.stringify(s)}`);
  if (m[1] === "2") return compose(1, Number(m[2]) - EXP_BIAS, m[3]!);
  const digits = m[3]!.replace(/\d/g, (d) => String(9 - Number(d)));
  return compose(-1, EXP_MAX - Number(m[2]) - EXP_BIAS, digits);
}

/**
 * One key value in the order-preserving alphabet. For S and B this is a homomorphism (enc(a + b) = enc(a) + enc(b)),
 * so `begins_with` on the range key is a prefix of the store key: partitionPrefix(..) + encodeKeyValue(prefix).
 */
export function encodeKeyValue(type: KeyType, v: AttributeValue): string {
  if (type === "S" && "S" in v) return encodeString(v.S);
  if (type === "N" && "N" in v) return encodeNumber(v.N);
  if (type === "B" && "B" in v) return Buffer.from(v.B, "base64").toString("hex");
  throw validation(`One or more parameter values were invalid: Condition parameter type does not match schema type`);
}

function decodeKeyValue(type: KeyType, s: string): AttributeValue {
  if (type === "S") return { S: decodeString(s) };
  if (type === "N") return { N: decodeNumber(s) };
  if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error(`malformed binary in a DynamoDB store key: ${JSON.stringify(s)}`);
  return { B: Buffer.from(s, "hex").toString("base64") };
}

/** What the key attributes must satisfy in DynamoDB (present, typed, non-empty, within its size limits). */
function checkKeyAttribute(item: DItem, name: string, type: KeyType, isHash: boolean, what: "item" | "key"): AttributeValue {
  const v = item[name];
  if (v === undefined || !(type in v)) {
    if (what === "key") throw validation("The provided key element does not match the schema");
    if (v === undefined) throw validation(`One or more parameter values were invalid: Missing the key ${name} in the item`);
    throw validation(`One or more parameter values were invalid: Type mismatch for key ${name} expected: ${type} actual: ${Object.keys(v)[0]}`);
  }
  const raw = "S" in v ? v.S : "B" in v ? v.B : undefined;
  if (raw === "") {
    throw validation(`One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${type === "S" ? "string" : "binary"} value. Key: ${name}`);
  }
  if ("S" in v && LONE_SURROGATE.test(v.S)) {
    throw validation(`One or more parameter values were invalid: the key attribute ${name} is not valid UTF-16 (lone surrogate)`);
  }
  const bytes = "S" in v ? Buffer.byteLength(v.S, "utf8") : "B" in v ? Buffer.from(v.B, "base64").length : 0;
  if (isHash && bytes > MAX_HASH_KEY_BYTES) {
    throw validation("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes");
  }
  if (!isHash && bytes > MAX_RANGE_KEY_BYTES) {
    throw validation("One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes");
  }
  return v;
}

/** The prefix every store key of the partition `hash` starts with (and no other partition's does). */
export function partitionPrefix(schema: KeySchema, hash: AttributeValue): string {
  return encodeKeyValue(schema.hash.type, hash) + HASH_END;
}

/**
 * The store key of an item (what = "item": DynamoDB's messages for an Item) or of a Key parameter (what = "key":
 * exactly the key attributes, "The provided key element does not match the schema" otherwise).
 */
export function encodeKey(schema: KeySchema, item: DItem, what: "item" | "key" = "item"): string {
  if (what === "key" && Object.keys(item).length !== (schema.range ? 2 : 1)) {
    throw validation("The provided key element does not match the schema");
  }
  const hash = checkKeyAttribute(item, schema.hash.name, schema.hash.type, true, what);
  let key = partitionPrefix(schema, hash);
  if (schema.range) key += encodeKeyValue(schema.range.type, checkKeyAttribute(item, schema.range.name, schema.range.type, false, what));
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_STORE_KEY_BYTES) {
    throw validation(`One or more parameter values were invalid: the item's key takes ${bytes} bytes in the store, more than Decant's limit of ${MAX_STORE_KEY_BYTES} (DynamoDB allows longer keys)`);
  }
  return key;
}

/** The key attributes of a store key written by encodeKey. */
export function decodeKey(schema: KeySchema, key: string): DItem {
  const end = hashEnd(key);
  if (end < 0) throw new Error(`not a DynamoDB store key: ${JSON.stringify(key)}`);
  const out: DItem = { [schema.hash.name]: decodeKeyValue(schema.hash.type, key.slice(0, end)) };
  const rest = key.slice(end + HASH_END.length);
  if (schema.range) out[schema.range.name] = decodeKeyValue(schema.range.type, rest);
  else if (rest !== "") throw new Error(`not a DynamoDB store key of a hash-only table: ${JSON.stringify(key)}`);
  return out;
}

/** Where the hash part ends: the first U+0001 not followed by U+0002/U+0003 (escapes are two characters). */
function hashEnd(key: string): number {
  for (let i = key.indexOf("\u0001"); i >= 0; i = key.indexOf("\u0001", i + 2)) {
    if (key[i + 1] === "\u0001") return i;
  }
  return -1;
}
