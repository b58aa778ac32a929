// Evaluating conditions and projections on an item, with DynamoDB's semantics: a comparison of values of
// different types is false (not an error), numbers compare numerically, strings and binaries by bytes.
import { compareScalars, equalValues } from "../item.js";
import type { AttributeValue, DItem } from "../types.js";
import type { ConditionNode, Operand, Path, ProjectionNode } from "./ast.js";

/** The value at a document path, or undefined when any step is missing or of the wrong type. */
export function resolvePath(item: DItem | undefined, path: Path): AttributeValue | undefined {
  if (!item) return undefined;
  let cur: AttributeValue | undefined = item[path[0] as string];
  for (let i = 1; i < path.length && cur !== undefined; i++) {
    const step = path[i]!;
    if (typeof step === "number") cur = "L" in cur ? cur.L[step] : undefined;
    else cur = "M" in cur ? cur.M[step] : undefined;
  }
  return cur;
}

/** size(): string and binary length in bytes, number of elements of a set, list or map. */
export function sizeOf(v: AttributeValue | undefined): AttributeValue | undefined {
  if (v === undefined) return undefined;
  let n: number | undefined;
  if ("S" in v) n = Buffer.byteLength(v.S, "utf8");
  else if ("B" in v) n = Buffer.from(v.B, "base64").length;
  else if ("SS" in v) n = v.SS.length;
  else if ("NS" in v) n = v.NS.length;
  else if ("BS" in v) n = v.BS.length;
  else if ("L" in v) n = v.L.length;
  else if ("M" in v) n = Object.keys(v.M).length;
  return n === undefined ? undefined : { N: String(n) };
}

function operandValue(o: Operand, item: DItem | undefined): AttributeValue | undefined {
  switch (o.kind) {
    case "value":
      return o.value;
    case "path":
      return resolvePath(item, o.path);
    case "call":
      return o.name === "size" ? sizeOf(operandValue(o.args[0]!, item)) : undefined;
    case "arith":
      return undefined;
  }
}

function compare(op: string, a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === undefined || b === undefined) return op === "<>" && (a !== undefined || b !== undefined);
  if (op === "=") return equalValues(a, b);
  if (op === "<>") return !equalValues(a, b);
  const c = compareScalars(a, b);
  if (c === undefined) return false;
  switch (op) {
    case "<":
      return c < 0;
    case "<=":
      return c <= 0;
    case ">":
      return c > 0;
    default:
      return c >= 0;
  }
}

const bytes = (b64: string) => Buffer.from(b64, "base64");

function beginsWith(a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if ("S" in a && "S" in b) return a.S.startsWith(b.S);
  if ("B" in a && "B" in b) {
    const [x, y] = [bytes(a.B), bytes(b.B)];
    return x.length >= y.length && x.subarray(0, y.length).equals(y);
  }
  return false;
}

function contains(a: AttributeValue | undefined, b: AttributeValue | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  if ("S" in a) return "S" in b && a.S.includes(b.S);
  if ("B" in a) return "B" in b && bytes(a.B).includes(bytes(b.B));
  if ("SS" in a) return "S" in b && a.SS.includes(b.S);
  if ("NS" in a) return "N" in b && a.NS.some((n) => equalValues({ N: n }, b));
  if ("BS" in a) return "B" in b && a.BS.some((x) => equalValues({ B: x }, b));
  if ("L" in a) return a.L.some((x) => equalValues(x, b));
  return false;
}

function callFunction(name: string, args: Operand[], item: DItem | undefined): boolean {
  const [a, b] = args.map((o) => operandValue(o, item));
  switch (name) {
    case "attribute_exists":
      return a !== undefined;
    case "attribute_not_exists":
      return a === undefined;
    case "attribute_type":
      return a !== undefined && b !== undefined && "S" in b && Object.keys(a)[0] === b.S;
    case "begins_with":
      return beginsWith(a, b);
    case "contains":
      return contains(a, b);
    default:
      return false;
  }
}

/** Whether the condition holds for the item (undefined: no item, so every attribute is missing). */
export function evaluate(c: ConditionNode, item: DItem | undefined): boolean {
  switch (c.kind) {
    case "and":
      return evaluate(c.left, item) && evaluate(c.right, item);
    case "or":
      return evaluate(c.left, item) || evaluate(c.right, item);
    case "not":
      return !evaluate(c.arg, item);
    case "true":
      return true;
    case "compare":
      return compare(c.op, operandValue(c.left, item), operandValue(c.right, item));
    case "between": {
      const v = operandValue(c.arg, item);
      return compare(">=", v, operandValue(c.low, item)) && compare("<=", v, operandValue(c.high, item));
    }
    case "in": {
      const v = operandValue(c.arg, item);
      return v !== undefined && c.list.some((o) => compare("=", v, operandValue(o, item)));
    }
    case "function":
      return callFunction(c.name, c.args, item);
  }
}

type Sparse = { M: Record<string, Sparse> } | { L: Map<number, Sparse> } | { V: AttributeValue };

/** The item cut down to the projected paths; list elements keep their order and close up (as DynamoDB returns them). */
export function projectItem(item: DItem, p: ProjectionNode): DItem {
  const root: Record<string, Sparse> = {};
  for (const path of p.paths) {
    const value = resolvePath(item, path);
    if (value === undefined) continue;
    let node: Sparse = { M: root };
    for (let i = 0; i < path.length; i++) {
      const step = path[i]!;
      const last = i === path.length - 1;
      if (typeof step === "number") {
        const list: Map<number, Sparse> = "L" in node ? node.L : new Map();
        const next: Sparse = last ? { V: value } : (list.get(step) ?? (typeof path[i + 1] === "number" ? { L: new Map() } : { M: {} }));
        list.set(step, next);
        node = next;
      } else {
        const map: Record<string, Sparse> = "M" in node ? node.M : {};
        const next: Sparse = last ? { V: value } : (map[step] ?? (typeof path[i + 1] === "number" ? { L: new Map() } : { M: {} }));
        map[step] = next;
        node = next;
      }
    }
  }
  const out: DItem = {};
  for (const k of Object.keys(root)) out[k] = materialize(root[k]!);
  return out;
}

function materialize(s: Sparse): AttributeValue {
  if ("V" in s) return s.V;
  if ("L" in s) return { L: [...s.L.entries()].sort(([a], [b]) => a - b).map(([, v]) => materialize(v)) };
  const m: Record<string, AttributeValue> = {};
  for (const k of Object.keys(s.M)) m[k] = materialize(s.M[k]!);
  return { M: m };
}
