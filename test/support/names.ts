import { randomBytes } from "node:crypto";

/** A fresh namespace per test, so runs and tests never interfere. */
export const freshNamespace = (tag = "t"): string => `${tag}_${randomBytes(6).toString("hex")}`;

export const buf = (s: string): Buffer => Buffer.from(s, "utf8");
