// Tokens of DynamoDB's expression languages (condition, projection, update, key condition).
import { validation } from "../types.js";

export type TokenType = "name" | "attrName" | "attrValue" | "index" | "punct" | "eof";
export interface Token {
  type: TokenType;
  text: string;
  start: number;
  end: number;
}

const PATTERNS: [TokenType, RegExp][] = [
  ["attrName", /#[0-9A-Za-z_]+/y],
  ["attrValue", /:[0-9A-Za-z_]+/y],
  ["name", /[A-Za-z_][0-9A-Za-z_]*/y],
  ["index", /[0-9]+/y],
  ["punct", /<>|<=|>=|[=<>()[\],.+-]/y],
];
const SPACE = /[ \t\r\n]+/y;

/** Splits an expression; a character no token can start with becomes a one-character token the parser refuses. */
export function tokenize(input: string): Token[] {
  const out: Token[] = [];
  let pos = 0;
  while (pos < input.length) {
    SPACE.lastIndex = pos;
    if (SPACE.test(input)) {
      pos = SPACE.lastIndex;
      continue;
    }
    let matched = false;
    for (const [type, re] of PATTERNS) {
      re.lastIndex = pos;
      const m = re.exec(input);
      if (m) {
        out.push({ type, text: m[0], start: pos, end: pos + m[0].length });
        pos += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) {
      const ch = String.fromCodePoint(input.codePointAt(pos)!);
      out.push({ type: "punct", text: ch, start: pos, end: pos + ch.length });
      pos += ch.length;
    }
  }
  out.push({ type: "eof", text: "<EOF>", start: input.length, end: input.length });
  return out;
}

/** DynamoDB's syntax error: the offending token and the text from the token before it to the one after. */
export function syntaxError(kind: string, input: string, tokens: Token[], at: number) {
  const tok = tokens[at]!;
  const from = tokens[Math.max(0, at - 1)]!.start;
  const to = tokens[Math.min(tokens.length - 1, at + 1)]!.end;
  return validation(`Invalid ${kind}: Syntax error; token: "${tok.text}", near: "${input.slice(from, to)}"`);
}
