// KeyConditionExpression: `hash = :v`, optionally AND one range condition; everything else refused with
// DynamoDB's messages.
import type { AttributeValue, ExprContext, KeySchema } from "../types.js";
import { validation } from "../types.js";
import type { ConditionNode, Operand } from "./ast.js";
import { parseConditionExpression } from "./parser.js";

export type KeyOp = "=" | "<" | "<=" | ">" | ">=" | "BETWEEN" | "BEGINS_WITH";
export interface KeyCondition {
  hash: AttributeValue;
  range?: { op: KeyOp; values: AttributeValue[] };
}

const FLIPPED: Record<string, KeyOp> = { "=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<=" };

interface Part {
  name: string;
  op: KeyOp;
  values: AttributeValue[];
}

function operandsOf(c: ConditionNode): Operand[] {
  switch (c.kind) {
    case "compare":
      return [c.left, c.right];
    case "between":
      return [c.arg, c.low, c.high];
    case "function":
      return c.args;
    default:
      return [];
  }
}

function collect(c: ConditionNode, parts: Part[]): void {
  if (c.kind === "and") {
    collect(c.left, parts);
    collect(c.right, parts);
    return;
  }
  if (c.kind === "or" || c.kind === "not" || c.kind === "in") {
    throw validation(`Invalid operator used in KeyConditionExpression: ${c.kind.toUpperCase()}`);
  }
  if (c.kind === "compare" && c.op === "<>") throw validation("Invalid operator used in KeyConditionExpression: <>");
  if (c.kind === "function" && c.name !== "begins_with") {
    throw validation(`Invalid operator used in KeyConditionExpression: ${c.name}`);
  }
  const operands = operandsOf(c);
  if (operands.some((o) => o.kind === "call")) throw validation("KeyConditionExpressions cannot contain nested operations");
  if ((c.kind === "between" || c.kind === "function") && operands[0]!.kind !== "path") {
    const op = c.kind === "between" ? "BETWEEN" : "begins_with";
    throw validation(`Invalid condition in KeyConditionExpression: ${op} operator must have the key attribute as its first operand`);
  }
  const paths = operands.filter((o) => o.kind === "path");
  if (paths.length > 1) throw validation("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition");
  if (paths.length === 0) throw validation("Invalid condition in KeyConditionExpression: No key attribute specified");
  if (paths[0]!.path.length > 1) throw validation("KeyConditionExpressions cannot have conditions on nested attributes");
  const name = paths[0]!.path[0] as string;
  if (parts.some((p) => p.name === name)) throw validation("KeyConditionExpressions must only contain one condition per key");
  const values = operands.filter((o): o is Extract<Operand, { kind: "value" }> => o.kind === "value").map((o) => o.value);
  let op: KeyOp;
  if (c.kind === "between") op = "BETWEEN";
  else if (c.kind === "function") op = "BEGINS_WITH";
  else {
    const cmp = c as Extract<ConditionNode, { kind: "compare" }>;
    op = cmp.left.kind === "path" ? (cmp.op as KeyOp) : FLIPPED[cmp.op]!; // `:v < sk` is `sk > :v`
  }
  parts.push({ name, op, values });
}

export function parseKeyConditionExpression(expr: string, ctx: ExprContext, schema: KeySchema, used: Set<string>): KeyCondition {
  const parts: Part[] = [];
  collect(parseConditionExpression("KeyConditionExpression", expr, ctx, used), parts);
  if (parts.length > 2) throw validation("Conditions can be of length 1 or 2 only");
  if (!schema.range && parts.length > 1) throw validation("Query key condition not supported");
  const hash = parts.find((p) => p.name === schema.hash.name);
  if (!hash) throw validation(`Query condition missed key schema element: ${schema.hash.name}`);
  const range = parts.find((p) => p.name === schema.range?.name);
  if (parts.length > (range ? 2 : 1)) throw validation(`Query condition missed key schema element: ${schema.range!.name}`);
  // DynamoDB's order: per key attribute, hash first, the value types before the operator.
  const typeMismatch = (p: Part, t: string) => p.values.some((v) => !(t in v));
  const mismatch = () => validation("One or more parameter values were invalid: Condition parameter type does not match schema type");
  if (typeMismatch(hash, schema.hash.type)) throw mismatch();
  if (hash.op !== "=") throw validation("Query key condition not supported");
  if (range && typeMismatch(range, schema.range!.type)) throw mismatch();
  const out: KeyCondition = { hash: hash.values[0]! };
  if (range) out.range = { op: range.op, values: range.values };
  return out;
}
