// A real store with faults the test switches on (a proxy, not a mock: every call that is let
// through reaches the store).
import { DecantError } from "../../src/protocol/errors.js";
import type { Store } from "../../src/protocol/store.js";

export function faulty(store: Store) {
  const faults = { put: false, get: false, applyIfNewer: false, applyThenFail: false };
  const calls = { put: new Map<string, number>() };
  const s = Object.create(store) as Store;
  s.put = async (...args: Parameters<Store["put"]>) => {
    calls.put.set(args[0], (calls.put.get(args[0]) ?? 0) + 1);
    if (faults.put) throw new DecantError("unavailable", "injected: store down");
    const v = await store.put(...args);
    if (faults.applyThenFail) throw new DecantError("deadline_exceeded", "injected: applied, but the answer was lost");
    return v;
  };
  s.get = async (...args: Parameters<Store["get"]>) => {
    if (faults.get) throw new DecantError("unavailable", "injected: store down");
    return store.get(...args);
  };
  s.applyIfNewer = async (...args: Parameters<Store["applyIfNewer"]>) => {
    if (faults.applyIfNewer) throw new DecantError("unavailable", "injected: secondary down");
    return store.applyIfNewer(...args);
  };
  return { store: s, faults, calls };
}
