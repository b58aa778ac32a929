// The legacy parameters `Expected` (+ `ConditionalOperator`) and `AttributeUpdates`, converted to the same trees
// as ConditionExpression and UpdateExpression.
import { checkAttributeName, validateValue } from "../item.js";
import type { AttributeValue } from "../types.js";
import { validation } from "../types.js";
import type { ConditionNode, Operand, UpdateAction, UpdateNode } from "./ast.js";

const invalid = (m: string) => validation(`One or more parameter values were invalid: ${m}`);
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

const ARGUMENTS: Record<string, [number, number]> = {
  EQ: [1, 1], NE: [1, 1], LE: [1, 1], LT: [1, 1], GE: [1, 1], GT: [1, 1], CONTAINS: [1, 1], NOT_CONTAINS: [1, 1],
  BEGINS_WITH: [1, 1], NULL: [0, 0], NOT_NULL: [0, 0], IN: [1, Infinity], BETWEEN: [2, 2],
};
const ALLOWED_TYPES: Record<string, string[]> = {
  LE: ["S", "N", "B"], LT: ["S", "N", "B"], GE: ["S", "N", "B"], GT: ["S", "N", "B"], CONTAINS: ["S", "N", "B"],
  NOT_CONTAINS: ["S", "N", "B"], BEGINS_WITH: ["S", "B"], IN: ["S", "N", "B"], BETWEEN: ["S", "N", "B"],
};
const COMPARATOR: Record<string, "=" | "<>" | "<=" | "<" | ">=" | ">"> = { EQ: "=", NE: "<>", LE: "<=", LT: "<", GE: ">=", GT: ">" };

const typeOf = (v: AttributeValue) => Object.keys(v)[0]!;

/** One `Expected` entry as a condition on the top-level attribute `name`. */
function expectation(name: string, raw: unknown): ConditionNode {
  if (!isObject(raw)) throw invalid(`Expected entry for Attribute: ${name} is not a structure`);
  const path: Operand = { kind: "path", path: [name] };
  const hasList = raw.AttributeValueList !== undefined && raw.AttributeValueList !== null;
  const hasValue = raw.Value !== undefined && raw.Value !== null;
  const hasExists = raw.Exists !== undefined && raw.Exists !== null;
  if (hasList && hasValue) throw invalid(`Value and AttributeValueList cannot be used together for Attribute: ${name}`);
  if (raw.ComparisonOperator === undefined || raw.ComparisonOperator === null) {
    if (hasList) throw invalid(`AttributeValueList can only be used with a ComparisonOperator for Attribute: ${name}`);
    const exists = !hasExists || raw.Exists === true;
    if (exists && !hasValue) throw invalid(`Value must be provided when Exists is ${hasExists ? String(raw.Exists) : "null"} for Attribute: ${name}`);
    if (!exists && hasValue) throw invalid(`Value cannot be used when Exists is false for Attribute: ${name}`);
    if (!exists) return { kind: "function", name: "attribute_not_exists", args: [path] };
    return { kind: "compare", op: "=", left: path, right: { kind: "value", value: validateValue(raw.Value) } };
  }
  if (hasExists) throw invalid(`Exists and ComparisonOperator cannot be used together for Attribute: ${name}`);
  const op = String(raw.ComparisonOperator);
  const range = ARGUMENTS[op];
  if (!range) {
    throw validation(`1 validation error detected: Value '${op}' at 'expected.${name}.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]`);
  }
  const rawList: unknown[] = hasList ? (Array.isArray(raw.AttributeValueList) ? raw.AttributeValueList : [raw.AttributeValueList]) : hasValue ? [raw.Value] : [];
  if (range[0] > 0 && rawList.length === 0) {
    throw invalid(`Value or AttributeValueList must be used with ComparisonOperator: ${op} for Attribute: ${name}`);
  }
  const values = rawList.map((v) => validateValue(v));
  if (values.length < range[0] || values.length > range[1]) throw invalid(`Invalid number of argument(s) for the ${op} ComparisonOperator`);
  if (values.some((v) => typeOf(v) !== typeOf(values[0]!))) throw invalid("AttributeValues inside AttributeValueList must be of same type");
  const allowed = ALLOWED_TYPES[op];
  const wrong = allowed && values.find((v) => !allowed.includes(typeOf(v)));
  if (wrong) throw invalid(`ComparisonOperator ${op} is not valid for ${typeOf(wrong)} AttributeValue type`);
  const operands: Operand[] = values.map((value) => ({ kind: "value", value }));
  switch (op) {
    case "NULL":
      return { kind: "function", name: "attribute_not_exists", args: [path] };
    case "NOT_NULL":
      return { kind: "function", name: "attribute_exists", args: [path] };
    case "CONTAINS":
    case "BEGINS_WITH":
      return { kind: "function", name: op.toLowerCase(), args: [path, operands[0]!] };
    case "NOT_CONTAINS":
      return { kind: "not", arg: { kind: "function", name: "contains", args: [path, operands[0]!] } };
    case "IN":
      return { kind: "in", arg: path, list: operands };
    case "BETWEEN":
      return { kind: "between", arg: path, low: operands[0]!, high: operands[1]! };
    default:
      return { kind: "compare", op: COMPARATOR[op]!, left: path, right: operands[0]! };
  }
}

/** `Expected` (with `ConditionalOperator` AND, the default, or OR) as one condition. */
export function legacyExpectedCondition(expected: unknown, op: "AND" | "OR" = "AND"): ConditionNode {
  if (!isObject(expected)) throw invalid("Expected must be a map of attribute names to conditions");
  const parts = Object.keys(expected).map((name) => expectation(name, expected[name]));
  if (parts.length === 0) return { kind: "true" };
  return parts.reduce((left, right) => ({ kind: op === "OR" ? "or" : "and", left, right }));
}

/** `AttributeUpdates` as update actions on top-level attributes. */
export function legacyUpdates(updates: unknown): UpdateNode {
  if (!isObject(updates)) throw invalid("AttributeUpdates must be a map of attribute names to updates");
  const actions: UpdateAction[] = [];
  for (const name of Object.keys(updates)) {
    const u = updates[name];
    checkAttributeName(name);
    if (!isObject(u)) throw invalid(`AttributeUpdates entry for ${name} is not a structure`);
    const action = u.Action === undefined || u.Action === null ? "PUT" : String(u.Action);
    const value = u.Value === undefined || u.Value === null ? undefined : validateValue(u.Value);
    const path = [name];
    if (action === "PUT") {
      if (!value) throw invalid("Only DELETE action is allowed when no attribute value is specified");
      actions.push({ kind: "SET", path, value: { kind: "value", value } });
    } else if (action === "DELETE") {
      if (!value) actions.push({ kind: "REMOVE", path });
      else if (["SS", "NS", "BS"].includes(typeOf(value))) actions.push({ kind: "DELETE", path, value });
      else throw invalid(`DELETE action with value is not supported for the type ${typeOf(value)}`);
    } else if (action === "ADD") {
      if (!value) throw invalid("Only DELETE action is allowed when no attribute value is specified");
      if (!["N", "SS", "NS", "BS", "L"].includes(typeOf(value))) throw invalid(`ADD action is not supported for the type ${typeOf(value)}`);
      actions.push({ kind: "ADD", path, value });
    } else {
      throw validation(`1 validation error detected: Value '${action}' at 'attributeUpdates.${name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]`);
    }
  }
  return { actions };
}
