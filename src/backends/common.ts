// Transitional: the pieces moved to src/protocol (semantics, paging, batch) and kit.ts.
export { checkCondition, checkEpoch, checkValueSize, liveItems, nextVersion, refuseIfFenced } from "../protocol/semantics.js";
export { decodeCursor, encodeCursor, isKeyCursor, prefixEnd } from "../protocol/paging.js";
export { compareKeys } from "../protocol/types.js";
export { asStoreError, isNetworkError, redactUrl, retry, DEFAULT_RETRY, type RetryPolicy } from "./kit.js";
import { deadlineExceeded } from "../protocol/errors.js";
export async function withTimeout<T>(store: string, op: string, ms: number, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineExceeded(store, op, ms)), ms);
  });
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
