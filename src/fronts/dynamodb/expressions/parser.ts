// A recursive-descent parser for DynamoDB's expression languages. Syntax errors are thrown at once, naming the
// token; the semantic errors DynamoDB reports (reserved words, undefined placeholders, misused functions, ...)
// are collected while parsing and the first by DynamoDB's precedence is thrown at the end.
import { compareScalars } from "../item.js";
import type { AttributeValue, ExprContext } from "../types.js";
import { validation } from "../types.js";
import type { Comparator, ConditionNode, Operand, Path, ProjectionNode, UpdateAction, UpdateNode } from "./ast.js";
import { pathString } from "./ast.js";
import { syntaxError, type Token, tokenize } from "./lexer.js";
import { isReserved } from "./reserved.js";

export type ExpressionKind =
  | "ConditionExpression" | "FilterExpression" | "KeyConditionExpression" | "ProjectionExpression" | "UpdateExpression";

const COMPARATORS = new Set(["=", "<>", "<", "<=", ">", ">="]);
const CONDITION_FUNCTIONS: Record<string, number> = {
  attribute_exists: 1, attribute_not_exists: 1, attribute_type: 2, begins_with: 2, contains: 2, size: 1,
};
const UPDATE_FUNCTIONS: Record<string, number> = { if_not_exists: 2, list_append: 2 };
const TYPE_NAMES = ["S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"];
const TYPE_WORDS: Record<string, string> = { S: "STRING", N: "NUMBER", B: "BINARY", NULL: "NULL", BOOL: "BOOLEAN", L: "LIST", M: "MAP" };
const MAX_IN_OPERANDS = 100;
/** DynamoDB's limit on one expression string. */
const MAX_EXPRESSION_BYTES = 4096;
/** Decant's own bound on nested parentheses, NOTs and function calls, so a 4 KB expression cannot exhaust the stack. */
export const MAX_NESTING = 100;

// The order in which DynamoDB reports semantic errors when an expression has several.
const ERROR_ORDER: Record<"condition" | "projection" | "update", string[]> = {
  condition: ["parens", "unknownFunction", "misusedFunction", "reserved", "attrNameVal", "operand", "distinct", "function"],
  projection: ["reserved", "attrNameVal", "pathOverlap", "pathConflict"],
  update: ["reserved", "unknownFunction", "section", "attrName", "attrVal", "pathOverlap", "pathConflict", "operand", "function"],
};

const typeOfValue = (v: AttributeValue) => Object.keys(v)[0]!;

class Parser {
  private readonly tokens: Token[];
  private pos = 0;
  private readonly errors = new Map<string, string>();
  private readonly parenthesized = new WeakSet<object>();
  private readonly paths: Path[] = [];
  private depth = 0;

  constructor(
    private readonly kind: ExpressionKind,
    private readonly input: string,
    private readonly ctx: ExprContext,
    private readonly used: Set<string>,
  ) {
    if (input === "") throw validation(`Invalid ${kind}: The expression can not be empty;`);
    const size = Buffer.byteLength(input, "utf8");
    if (size > MAX_EXPRESSION_BYTES) {
      throw validation(`Invalid ${kind}: Expression size has exceeded the maximum allowed size; expression size: ${size}`);
    }
    this.tokens = tokenize(input);
  }

  // --- token helpers ---
  private get tok(): Token {
    return this.tokens[this.pos]!;
  }
  private fail(): never {
    throw syntaxError(this.kind, this.input, this.tokens, this.pos);
  }
  private isPunct(p: string): boolean {
    return this.tok.type === "punct" && this.tok.text === p;
  }
  private isKeyword(word: string): boolean {
    return this.tok.type === "name" && this.tok.text.toUpperCase() === word;
  }
  private expectPunct(p: string): void {
    if (!this.isPunct(p)) this.fail();
    this.pos++;
  }
  private expectKeyword(word: string): void {
    if (!this.isKeyword(word)) this.fail();
    this.pos++;
  }
  expectEnd(): void {
    if (this.tok.type !== "eof") this.fail();
  }
  /** Runs one nested construct, refusing nesting beyond MAX_NESTING. */
  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_NESTING) {
      throw validation(`Invalid ${this.kind}: The expression has more than ${MAX_NESTING} levels of nesting`);
    }
    try {
      return f();
    } finally {
      this.depth--;
    }
  }
  private error(category: string, message: string): void {
    if (!this.errors.has(category)) this.errors.set(category, message);
  }
  throwErrors(order: keyof typeof ERROR_ORDER): void {
    for (const category of ERROR_ORDER[order]) {
      const message = this.errors.get(category);
      if (message !== undefined) throw validation(`Invalid ${this.kind}: ${message}`);
    }
  }

  // --- placeholders and paths ---
  private nameCategory(): string {
    return this.kind === "UpdateExpression" ? "attrName" : "attrNameVal";
  }
  private resolveName(token: string): string {
    this.used.add(token);
    const name = this.ctx.names?.[token];
    if (name === undefined) {
      this.error(this.nameCategory(), `An expression attribute name used in the document path is not defined; attribute name: ${token}`);
      return token;
    }
    return name;
  }
  private resolveValue(token: string): AttributeValue {
    this.used.add(token);
    const value = this.ctx.values?.[token];
    if (value === undefined) {
      this.error(this.kind === "UpdateExpression" ? "attrVal" : "attrNameVal",
        `An expression attribute value used in expression is not defined; attribute value: ${token}`);
      return { NULL: true };
    }
    return value;
  }
  private pathName(): string {
    const t = this.tok;
    if (t.type === "attrName") {
      this.pos++;
      return this.resolveName(t.text);
    }
    if (t.type === "name") {
      this.pos++;
      if (isReserved(t.text)) this.error("reserved", `Attribute name is a reserved keyword; reserved keyword: ${t.text}`);
      return t.text;
    }
    this.fail();
  }
  parsePath(): Path {
    const path: Path = [this.pathName()];
    for (;;) {
      if (this.isPunct(".")) {
        this.pos++;
        path.push(this.pathName());
      } else if (this.isPunct("[")) {
        this.pos++;
        if (this.tok.type !== "index") this.fail();
        path.push(Number(this.tok.text));
        this.pos++;
        this.expectPunct("]");
      } else {
        return path;
      }
    }
  }
  /** Records a path an update or projection names, refusing overlaps as DynamoDB does. */
  private addPath(path: Path): void {
    for (const other of this.paths) {
      let i = 0;
      for (; i < other.length && i < path.length; i++) {
        if (typeof other[i] !== typeof path[i]) {
          this.error("pathConflict", `Two document paths conflict with each other; must remove or rewrite one of these paths; path one: ${pathString(other)}, path two: ${pathString(path)}`);
          break;
        }
        if (other[i] !== path[i]) break;
      }
      if (i === other.length || i === path.length) {
        this.error("pathOverlap", `Two document paths overlap with each other; must remove or rewrite one of these paths; path one: ${pathString(other)}, path two: ${pathString(path)}`);
      }
    }
    this.paths.push(path);
  }

  // --- operands ---
  private parseOperand(functions: Record<string, number>): Operand {
    const t = this.tok;
    if (t.type === "attrValue") {
      this.pos++;
      return { kind: "value", value: this.resolveValue(t.text) };
    }
    if (t.type === "name" && this.tokens[this.pos + 1]?.text === "(" && this.tokens[this.pos + 1]?.type === "punct") {
      this.pos += 2;
      const args = [this.nested(() => this.parseOperand(functions))];
      while (this.isPunct(",")) {
        this.pos++;
        args.push(this.nested(() => this.parseOperand(functions)));
      }
      this.expectPunct(")");
      if (!(t.text in functions)) this.error("unknownFunction", `Invalid function name; function: ${t.text}`);
      return { kind: "call", name: t.text, args };
    }
    return { kind: "path", path: this.parsePath() };
  }

  // --- conditions ---
  /** DynamoDB's precedence: NOT binds tighter than AND, AND tighter than OR. */
  parseCondition(): ConditionNode {
    return this.parseBinary("OR", () => this.parseBinary("AND", () => this.parseNot()));
  }
  private parseBinary(word: "OR" | "AND", operand: () => ConditionNode): ConditionNode {
    let left = operand();
    while (this.isKeyword(word)) {
      this.pos++;
      left = { kind: word === "OR" ? "or" : "and", left, right: operand() };
    }
    return left;
  }
  private parseNot(): ConditionNode {
    if (this.isKeyword("NOT")) {
      this.pos++;
      return { kind: "not", arg: this.nested(() => this.parseNot()) };
    }
    return this.parsePrimary();
  }
  private parsePrimary(): ConditionNode {
    if (this.isPunct("(")) {
      this.pos++;
      const inner = this.nested(() => this.parseCondition());
      this.expectPunct(")");
      if (this.parenthesized.has(inner)) this.error("parens", "The expression has redundant parentheses;");
      this.parenthesized.add(inner);
      return inner;
    }
    const left = this.parseOperand(CONDITION_FUNCTIONS);
    const isFunction = !(this.tok.type === "punct" && COMPARATORS.has(this.tok.text)) && !this.isKeyword("BETWEEN") && !this.isKeyword("IN");
    if (!isFunction) this.checkOperand(left);
    if (this.tok.type === "punct" && COMPARATORS.has(this.tok.text)) {
      const op = this.tok.text as Comparator;
      this.pos++;
      const right = this.conditionOperand();
      this.checkDistinct(op, left, right);
      return { kind: "compare", op, left, right };
    }
    if (this.isKeyword("BETWEEN")) {
      this.pos++;
      const low = this.conditionOperand();
      this.expectKeyword("AND");
      const high = this.conditionOperand();
      this.checkBetween(low, high);
      return { kind: "between", arg: left, low, high };
    }
    if (this.isKeyword("IN")) {
      this.pos++;
      this.expectPunct("(");
      const list = [this.conditionOperand()];
      while (this.isPunct(",")) {
        this.pos++;
        list.push(this.conditionOperand());
      }
      this.expectPunct(")");
      if (list.length > MAX_IN_OPERANDS) {
        this.error("operand", `The IN operator is provided with too many operands; number of operands: ${list.length}`);
      }
      return { kind: "in", arg: left, list };
    }
    if (left.kind === "call" && left.name !== "size") {
      this.checkConditionFunction(left.name, left.args);
      return { kind: "function", name: left.name, args: left.args };
    }
    if (left.kind === "call") {
      this.error("misusedFunction", `The function is not allowed to be used this way in an expression; function: ${left.name}`);
      return { kind: "true" };
    }
    this.fail();
  }
  /** An operand of a comparison: only size() may be a function there. */
  private conditionOperand(): Operand {
    return this.checkOperand(this.parseOperand(CONDITION_FUNCTIONS));
  }
  private checkOperand(operand: Operand): Operand {
    if (operand.kind === "call") {
      if (operand.name !== "size") {
        this.error("misusedFunction", `The function is not allowed to be used this way in an expression; function: ${operand.name}`);
      } else {
        this.checkConditionFunction(operand.name, operand.args);
      }
    }
    return operand;
  }
  private checkDistinct(op: string, a: Operand | undefined, b: Operand | undefined): void {
    if (a?.kind !== "path" || b?.kind !== "path" || pathString(a.path) !== pathString(b.path)) return;
    this.error("distinct", `The first operand must be distinct from the remaining operands for this operator or function; operator: ${op}, first operand: ${pathString(a.path)}`);
  }
  private checkBetween(low: Operand, high: Operand): void {
    if (low.kind !== "value" || high.kind !== "value") return;
    const [t1, t2] = [typeOfValue(low.value), typeOfValue(high.value)];
    const show = (v: AttributeValue, t: string) => `AttributeValue: {${t}:${(v as Record<string, unknown>)[t]}}`;
    const bounds = `lower bound operand: ${show(low.value, t1)}, upper bound operand: ${show(high.value, t2)}`;
    if (t1 !== t2) {
      this.error("function", `The BETWEEN operator requires same data type for lower and upper bounds; ${bounds}`);
    } else if ((compareScalars(low.value, high.value) ?? 0) > 0) {
      this.error("function", `The BETWEEN operator requires upper bound to be greater than or equal to lower bound; ${bounds}`);
    }
  }
  private checkConditionFunction(name: string, args: Operand[]): void {
    const arity = CONDITION_FUNCTIONS[name];
    if (arity === undefined) return; // already reported as unknown
    for (const arg of args) {
      if (arg.kind === "call" && arg.name !== "size") {
        this.error("misusedFunction", `The function is not allowed to be used this way in an expression; function: ${arg.name}`);
      }
    }
    if (args.length !== arity) {
      this.error("operand", `Incorrect number of operands for operator or function; operator or function: ${name}, number of operands: ${args.length}`);
      return;
    }
    if (arity === 2) this.checkDistinct(name, args[0], args[1]);
    const literalType = (a: Operand | undefined) => (a?.kind === "value" ? typeOfValue(a.value) : undefined);
    const badType = (t: string) =>
      this.error("function", `Incorrect operand type for operator or function; operator or function: ${name}, operand type: ${t}`);
    switch (name) {
      case "attribute_exists":
      case "attribute_not_exists":
        if (args[0]!.kind !== "path") this.error("function", `Operator or function requires a document path; operator or function: ${name}`);
        break;
      case "begins_with":
        for (const a of args) {
          const t = literalType(a);
          if (t !== undefined && t !== "S" && t !== "B") badType(t);
        }
        break;
      case "attribute_type": {
        const t = literalType(args[1]);
        if (t !== "S") badType(t ?? "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        else if (!TYPE_NAMES.includes((args[1] as { value: { S: string } }).value.S)) {
          this.error("function", `Invalid attribute type name found; type: ${(args[1] as { value: { S: string } }).value.S}, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}`);
        }
        break;
      }
      case "size": {
        const t = literalType(args[0]);
        if (t === "N" || t === "BOOL" || t === "NULL") badType(t);
        break;
      }
    }
  }

  // --- projections ---
  parseProjection(): ProjectionNode {
    const paths = [this.parsePath()];
    this.addPath(paths[0]!);
    while (this.isPunct(",")) {
      this.pos++;
      const p = this.parsePath();
      this.addPath(p);
      paths.push(p);
    }
    return { paths };
  }

  // --- updates ---
  parseUpdate(): UpdateNode {
    const actions: UpdateAction[] = [];
    const sections = new Set<string>();
    do {
      const word = this.tok.type === "name" ? this.tok.text.toUpperCase() : "";
      if (word !== "SET" && word !== "REMOVE" && word !== "ADD" && word !== "DELETE") this.fail();
      this.pos++;
      if (sections.has(word)) this.error("section", `The "${word}" section can only be used once in an update expression;`);
      sections.add(word);
      actions.push(this.parseAction(word));
      while (this.isPunct(",")) {
        this.pos++;
        actions.push(this.parseAction(word));
      }
    } while (this.tok.type !== "eof");
    return { actions };
  }
  private parseAction(word: string): UpdateAction {
    const path = this.parsePath();
    this.addPath(path);
    if (word === "REMOVE") return { kind: "REMOVE", path };
    if (word === "SET") {
      this.expectPunct("=");
      return { kind: "SET", path, value: this.parseSetValue() };
    }
    if (this.tok.type !== "attrValue") this.fail();
    const value = this.resolveValue(this.tok.text);
    this.pos++;
    const t = typeOfValue(value);
    if (TYPE_WORDS[t] && !(word === "ADD" && t === "N")) {
      this.error("operand", `Incorrect operand type for operator or function; operator: ${word}, operand type: ${TYPE_WORDS[t]}`);
    }
    return { kind: word as "ADD" | "DELETE", path, value };
  }
  private parseSetValue(): Operand {
    const left = this.setOperand();
    if (this.isPunct("+") || this.isPunct("-")) {
      const op = this.tok.text as "+" | "-";
      this.pos++;
      const right = this.setOperand();
      for (const side of [left, right]) {
        const t = side.kind === "value" ? typeOfValue(side.value) : undefined;
        if (t !== undefined && t !== "N") {
          this.error("function", `Incorrect operand type for operator or function; operator or function: ${op}, operand type: ${t}`);
        }
      }
      return { kind: "arith", op, left, right };
    }
    return left;
  }
  private setOperand(): Operand {
    const operand = this.parseOperand(UPDATE_FUNCTIONS);
    if (operand.kind === "call") this.checkUpdateFunction(operand.name, operand.args);
    return operand;
  }
  private checkUpdateFunction(name: string, args: Operand[]): void {
    for (const a of args) if (a.kind === "call") this.checkUpdateFunction(a.name, a.args);
    if (!(name in UPDATE_FUNCTIONS)) return;
    if (args.length !== 2) {
      this.error("function", `Incorrect number of operands for operator or function; operator or function: ${name}, number of operands: ${args.length}`);
      return;
    }
    if (name === "if_not_exists" && args[0]!.kind !== "path") {
      this.error("function", `Operator or function requires a document path; operator or function: ${name}`);
    }
    if (name === "list_append") {
      for (const a of args) {
        const t = a.kind === "value" ? typeOfValue(a.value) : undefined;
        if (t !== undefined && t !== "L") {
          this.error("function", `Incorrect operand type for operator or function; operator or function: ${name}, operand type: ${t}`);
        }
      }
    }
  }
}

/** Parses the whole input with one grammar, then reports the semantic errors in DynamoDB's order. */
function parseWhole<T>(kind: ExpressionKind, expr: string, ctx: ExprContext, used: Set<string>,
  grammar: (p: Parser) => T, order: keyof typeof ERROR_ORDER): T {
  const p = new Parser(kind, expr, ctx, used);
  const node = grammar(p);
  p.expectEnd();
  p.throwErrors(order);
  return node;
}

export function parseConditionExpression(kind: ExpressionKind, expr: string, ctx: ExprContext, used: Set<string>): ConditionNode {
  return parseWhole(kind, expr, ctx, used, (p) => p.parseCondition(), "condition");
}

export function parseProjectionExpression(expr: string, ctx: ExprContext, used: Set<string>): ProjectionNode {
  return parseWhole("ProjectionExpression", expr, ctx, used, (p) => p.parseProjection(), "projection");
}

export function parseUpdateExpression(expr: string, ctx: ExprContext, used: Set<string>): UpdateNode {
  return parseWhole("UpdateExpression", expr, ctx, used, (p) => p.parseUpdate(), "update");
}
