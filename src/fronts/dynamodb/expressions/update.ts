// Applying a parsed UpdateExpression (or legacy AttributeUpdates) to an item, as DynamoDB does: every SET value
// is computed from the item as it was, then the actions are applied; list removals close up the list.
import { checkNesting } from "../item.js";
import { addNumbers, subtractNumbers } from "../numbers.js";
import type { AttributeValue, DItem } from "../types.js";
import { validation } from "../types.js";
import type { Operand, Path, UpdateAction, UpdateNode } from "./ast.js";
import { resolvePath } from "./evaluate.js";

const badType = () => validation("An operand in the update expression has an incorrect data type");
const badPath = () => validation("The document path provided in the update expression is invalid for update");

/** DynamoDB refuses updates of key attributes before looking at the item. */
export function checkUpdateKeys(u: UpdateNode, keyNames: string[]): void {
  for (const a of u.actions) {
    const top = a.path[0] as string;
    if (!keyNames.includes(top)) continue;
    throw validation(`One or more parameter values were invalid: Cannot update attribute ${top}. This attribute is part of the key`);
  }
}

function setValue(o: Operand, item: DItem): AttributeValue {
  switch (o.kind) {
    case "value":
      return o.value;
    case "path": {
      const v = resolvePath(item, o.path);
      if (v === undefined) throw validation("The provided expression refers to an attribute that does not exist in the item");
      return v;
    }
    case "arith": {
      const [a, b] = [setValue(o.left, item), setValue(o.right, item)];
      if (!("N" in a) || !("N" in b)) throw badType();
      return { N: o.op === "+" ? addNumbers(a.N, b.N) : subtractNumbers(a.N, b.N) };
    }
    case "call": {
      if (o.name === "if_not_exists") {
        const existing = o.args[0]!.kind === "path" ? resolvePath(item, o.args[0]!.path) : undefined;
        return existing ?? setValue(o.args[1]!, item);
      }
      const [a, b] = [setValue(o.args[0]!, item), setValue(o.args[1]!, item)];
      if (!("L" in a) || !("L" in b)) throw badType();
      return { L: [...a.L, ...b.L] };
    }
  }
}

type Container = { M: Record<string, AttributeValue> } | { L: AttributeValue[] };

/** The map or list holding the last step of path, or undefined when the path cannot be updated. */
function parentOf(item: DItem, path: Path): Container | undefined {
  const parent: AttributeValue | undefined = path.length === 1 ? { M: item } : resolvePath(item, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (parent === undefined) return undefined;
  if (typeof last === "number") return "L" in parent ? parent : undefined;
  return "M" in parent ? parent : undefined;
}

function put(item: DItem, path: Path, value: AttributeValue): void {
  const parent = parentOf(item, path);
  if (!parent) throw badPath();
  const last = path[path.length - 1]!;
  if ("L" in parent) {
    const i = last as number;
    if (i < parent.L.length) parent.L[i] = value;
    else parent.L.push(value); // beyond the end: appended, as DynamoDB does
  } else {
    parent.M[last as string] = value;
  }
}

/** Removals last, each path resolved first, so every list index names an element of the list as it was. */
function removeAll(item: DItem, paths: Path[]): void {
  const fromLists = new Map<AttributeValue[], number[]>();
  for (const path of paths) {
    const parent = parentOf(item, path);
    const last = path[path.length - 1]!;
    if (!parent) throw badPath(); // like SET: the path up to the last step must exist
    if ("M" in parent) delete parent.M[last as string];
    else fromLists.set(parent.L, [...(fromLists.get(parent.L) ?? []), last as number]);
  }
  for (const [list, indexes] of fromLists) {
    for (const i of indexes.sort((x, y) => y - x)) if (i < list.length) list.splice(i, 1);
  }
}

// Set members are canonical strings once validated (see item.ts), so Sets give linear-time union/difference.
function setUnion(existing: string[], added: string[]): string[] {
  const have = new Set(existing);
  return [...existing, ...added.filter((x) => !have.has(x))];
}

type SetType = "SS" | "NS" | "BS";
const setType = (v: AttributeValue): SetType | undefined => ("SS" in v ? "SS" : "NS" in v ? "NS" : "BS" in v ? "BS" : undefined);
const members = (v: AttributeValue, t: SetType) => (v as Record<SetType, string[]>)[t];

function add(item: DItem, path: Path, value: AttributeValue): void {
  const existing = resolvePath(item, path);
  if ("N" in value) {
    if (existing !== undefined && !("N" in existing)) throw badType();
    put(item, path, { N: addNumbers(existing && "N" in existing ? existing.N : "0", value.N) });
    return;
  }
  if ("L" in value) {
    // Only from legacy AttributeUpdates: ADD of a list appends to it.
    if (existing !== undefined && !("L" in existing)) throw badType();
    put(item, path, { L: [...(existing && "L" in existing ? existing.L : []), ...value.L] });
    return;
  }
  const t = setType(value);
  if (!t) throw badType();
  if (existing === undefined) return put(item, path, value);
  if (setType(existing) !== t) throw badType();
  put(item, path, { [t]: setUnion(members(existing, t), members(value, t)) } as AttributeValue);
}

function deleteFrom(item: DItem, path: Path, value: AttributeValue): void {
  const existing = resolvePath(item, path);
  const t = setType(value);
  if (!t) throw badType();
  if (existing === undefined) return;
  if (setType(existing) !== t) throw badType();
  const gone = new Set(members(value, t));
  const left = members(existing, t).filter((x) => !gone.has(x));
  if (left.length === 0) removeAll(item, [path]);
  else put(item, path, { [t]: left } as AttributeValue);
}

const clone = <T>(v: T): T => structuredClone(v);

/** The item after the update. `item` undefined: the item does not exist yet and starts as its key. */
export function apply(item: DItem | undefined, u: UpdateNode, key: DItem): DItem {
  checkUpdateKeys(u, Object.keys(key));
  const before = item ?? clone(key);
  const out = clone(before);
  const sets = u.actions.filter((a): a is Extract<UpdateAction, { kind: "SET" }> => a.kind === "SET")
    .map((a) => ({ path: a.path, value: setValue(a.value, before) }));
  for (const s of sets) put(out, s.path, clone(s.value));
  for (const a of u.actions) {
    if (a.kind === "ADD") add(out, a.path, a.value);
    else if (a.kind === "DELETE") deleteFrom(out, a.path, a.value);
  }
  removeAll(out, u.actions.filter((a) => a.kind === "REMOVE").map((a) => a.path));
  checkNesting(out);
  return out;
}
