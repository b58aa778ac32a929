// The parsed forms of DynamoDB expressions (names and values already resolved from the placeholders).
import type { AttributeValue } from "../types.js";

/** A document path: attribute and map-key names, and list indexes. */
export type Path = (string | number)[];

export type Operand =
  | { kind: "path"; path: Path }
  | { kind: "value"; value: AttributeValue }
  | { kind: "call"; name: string; args: Operand[] } // size() in conditions; if_not_exists, list_append in SET
  | { kind: "arith"; op: "+" | "-"; left: Operand; right: Operand }; // SET only

export type Comparator = "=" | "<>" | "<" | "<=" | ">" | ">=";

export type ConditionNode =
  | { kind: "and" | "or"; left: ConditionNode; right: ConditionNode }
  | { kind: "not"; arg: ConditionNode }
  | { kind: "compare"; op: Comparator; left: Operand; right: Operand }
  | { kind: "between"; arg: Operand; low: Operand; high: Operand }
  | { kind: "in"; arg: Operand; list: Operand[] }
  | { kind: "function"; name: string; args: Operand[] }
  /** Only from legacy `Expected`: a constant. */
  | { kind: "true" };

export interface ProjectionNode {
  paths: Path[];
}

export type UpdateAction =
  | { kind: "SET"; path: Path; value: Operand }
  | { kind: "REMOVE"; path: Path }
  | { kind: "ADD"; path: Path; value: AttributeValue }
  | { kind: "DELETE"; path: Path; value: AttributeValue };

export interface UpdateNode {
  actions: UpdateAction[];
}

/** `[a, b, [2], c]`, as DynamoDB prints paths in its messages. */
export function pathString(path: Path): string {
  return `[${path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join(", ")}]`;
}
