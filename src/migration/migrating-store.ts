// The migration layer is itself a store built from two stores (like unstorage's overlay):
// reads go where the phase says, writes go to the primary (which assigns the version) and
// then to the secondary through applyIfNewer. It never speaks SQL or DynamoDB itself.
import type { Caller } from "../protocol/call.js";
import { DecantError, isDecantError } from "../protocol/errors.js";
import type { Capabilities, Store } from "../protocol/store.js";
import type { Condition, DeleteResult, Item, LargeValueOptions, RawItem, RawScanOptions, ScanOptions, ScanPage, ValueSize, WriteOp, WriteOutcome } from "../protocol/types.js";
import { describe as describeError } from "../protocol/errors.js";
import { runBatch } from "../protocol/batch.js";
import { strictSecondary, type AdmittedWrite, type Intent, type MigrationController } from "./controller.js";
import { ROLES, type Phase, type Role } from "./phases.js";

/** Kinds after which a store guarantees nothing was written (the Store contract). */
const DEFINITE = new Set(["invalid_argument", "version_mismatch", "failed_precondition", "fenced", "unimplemented", "cancelled"]);
const definite = (err: unknown): boolean => isDecantError(err) && DEFINITE.has(err.kind);

const MAX_SHADOW_READS_IN_FLIGHT = 32;

const LAPSED_BEFORE = "this sidecar's view of the migration phase lapsed before the write reached the store; nothing was written";
const LAPSED_DURING = "this sidecar's view of the migration phase lapsed while the write ran; it is not acknowledged (if it landed, the repair journal copies it)";

export class MigratingStore implements Store {
  readonly kind = "migration";
  private shadowInFlight = 0;

  constructor(private readonly controller: MigrationController) {}

  get description(): string {
    const c = this.controller;
    return c.target ? `${c.current.description} → ${c.target.description}` : c.current.description;
  }

  /** The strictest of both stores, so every accepted value can be migrated. */
  get capabilities(): Capabilities {
    const { current, target } = this.controller;
    const reads = this.readStore();
    return {
      orderedScan: reads.capabilities.orderedScan,
      segmentedScan: reads.capabilities.segmentedScan,
      maxValueBytes: (key) => Math.min(current.capabilities.maxValueBytes(key), target ? target.capabilities.maxValueBytes(key) : Infinity),
      durable: current.capabilities.durable && (target?.capabilities.durable ?? true),
      purgeTombstones: false,
    };
  }

  private readStore(phase: Phase = this.controller.phase): Store {
    return this.controller.store(ROLES[phase].reads);
  }

  // Not async: a Get while the view is fresh takes no promise of its own (on every request).
  // The caller goes with the read to the store that serves it (not with the view's renewal, nor the shadow read).
  get(ns: string, key: string, call?: Caller): Promise<Item | null> {
    if (!this.controller.viewFresh()) return this.controller.freshView().then(() => this.readByPhase(ns, key, call));
    try {
      return this.readByPhase(ns, key, call);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private readByPhase(ns: string, key: string, call: Caller | undefined): Promise<Item | null> {
    const phase = this.controller.phase;
    const read = this.readStore(phase).get(ns, key, call);
    if (!ROLES[phase].shadowRead) return read;
    return read.then((item) => {
      this.shadowCompare(ns, key, item);
      return item;
    });
  }

  /** Off the request path: read the target too and count disagreements. */
  private shadowCompare(ns: string, key: string, seen: Item | null): void {
    if (this.shadowInFlight >= MAX_SHADOW_READS_IN_FLIGHT || !this.controller.target) return;
    this.shadowInFlight++;
    // Without the caller: a client that leaves once answered must not count as a mismatch.
    this.controller.target
      .get(ns, key)
      .then((other) => {
        const same = seen === null ? other === null : other !== null && other.version === seen.version && other.value.equals(seen.value);
        if (!same) this.controller.metrics.shadowMismatches.inc();
      })
      .catch(() => this.controller.metrics.shadowMismatches.inc())
      .finally(() => this.shadowInFlight--);
  }

  async batchGet(ns: string, keys: string[], call?: Caller): Promise<Item[]> {
    await this.controller.freshView();
    return this.readStore().batchGet(ns, keys, call);
  }

  /** Cursors name the store they came from: a scan cannot continue on the other store's cursor. */
  async scan(ns: string, options: ScanOptions, call?: Caller): Promise<ScanPage<Item>> {
    await this.controller.freshView();
    const role = ROLES[this.controller.phase].reads;
    let cursor = options.cursor;
    if (cursor !== undefined) {
      const [from, rest] = [cursor.slice(0, cursor.indexOf(":")), cursor.slice(cursor.indexOf(":") + 1)];
      if (from !== "current" && from !== "target") throw new DecantError("invalid_argument", "page_token: is not a token this server issued", { field: "page_token" });
      if (from !== role) throw new DecantError("failed_precondition", `the migration moved reads from the ${from} store to the ${role} store during this scan; start the scan again`);
      cursor = rest;
    }
    const page = await this.controller.store(role).scan(ns, { ...options, cursor }, call);
    return { items: page.items, cursor: page.cursor === undefined ? undefined : `${role}:${page.cursor}` };
  }

  // Not async, as get: a write in a phase without a secondary takes no promise of its own.
  // No fence of the client's own: the migration layer fences its primary writes itself.
  put(ns: string, key: string, value: Buffer, condition?: Condition, _fence?: number, call?: Caller): Promise<bigint> {
    try {
      this.controller.checkValueFits(key, value);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.write(
      ns,
      key,
      call,
      (store, fence) => store.put(ns, key, value, condition, fence, call),
      (version) => ({ key, value, version }),
    );
  }

  async delete(ns: string, key: string, condition?: Condition, _fence?: number, call?: Caller): Promise<DeleteResult> {
    return this.write(
      ns,
      key,
      call,
      (store, fence) => store.delete(ns, key, condition, fence, call),
      (result) => (result.deleted ? { key, value: null, version: result.version } : null),
    );
  }

  /** Each write on its own (not atomic), in order per key, a few keys at a time; the caller stops it only before it starts (runBatch). */
  async batchWrite(ns: string, ops: WriteOp[], call?: Caller): Promise<WriteOutcome[]> {
    return runBatch(this, ns, ops, 8, call);
  }

  /**
   * One client write (docs/PROTOCOL.md steps 3–9): admitted under an epoch, its intent in the
   * journal first whenever there is a secondary, the primary write carrying the epoch for the
   * store's fence, a lease check after it, then the secondary. A write refused by the fence
   * wrote nothing: it is admitted again under the phase the record says now.
   * `call` goes only to the intent and (inside `primaryWrite`) to the primary write: everything
   * after the primary write (the copy to the secondary, the intent's removal or its repair mark)
   * is never given it, so it finishes even when the caller has gone.
   */
  private write<T>(ns: string, key: string, call: Caller | undefined, primaryWrite: (store: Store, fence?: number) => Promise<T>, replica: (result: T) => RawItem | null): Promise<T> {
    const c = this.controller;
    let w: AdmittedWrite | Promise<AdmittedWrite>;
    try {
      w = c.admitWrite(); // a promise only while a fence holds writes
    } catch (err) {
      return Promise.reject(err);
    }
    if (!(w instanceof Promise) && !ROLES[w.phase].secondary && !c.hooks.beforePrimary) return this.primaryOnly(w, ns, key, call, primaryWrite, replica);
    return this.writeAttempts(ns, key, call, primaryWrite, replica, 0, w);
  }

  private async writeAttempts<T>(ns: string, key: string, call: Caller | undefined, primaryWrite: (store: Store, fence?: number) => Promise<T>, replica: (result: T) => RawItem | null, first: number, admitted?: AdmittedWrite | Promise<AdmittedWrite>): Promise<T> {
    for (let attempt = first; ; attempt++) {
      try {
        return await this.writeOnce(ns, key, call, primaryWrite, replica, attempt === first ? admitted : undefined);
      } catch (err) {
        if (!isDecantError(err, "fenced") || attempt >= 2) throw err;
        await this.controller.tick();
      }
    }
  }

  /**
   * writeOnce for a write admitted at once in a phase without a secondary (no intent, no test
   * hook), step for step, in then() callbacks rather than async layers: the commonest write,
   * so each promise and microtask saved counts on every request.
   */
  private primaryOnly<T>(w: AdmittedWrite, ns: string, key: string, call: Caller | undefined, primaryWrite: (store: Store, fence?: number) => Promise<T>, replica: (result: T) => RawItem | null): Promise<T> {
    const c = this.controller;
    let started = 0;
    let pending: Promise<T>;
    try {
      if (!c.leaseHeld(w)) throw new DecantError("unavailable", LAPSED_BEFORE);
      const primary = c.store(ROLES[w.phase].primary);
      started = performance.now();
      pending = primaryWrite(primary, primary.capabilities.fencing ? w.epoch : undefined);
    } catch (err) {
      w.done();
      return Promise.reject(err);
    }
    return pending.then(
      (result) => {
        try {
          c.backfill.observeLiveLatency(performance.now() - started);
          if (!c.leaseHeld(w)) throw new DecantError("unavailable", LAPSED_DURING);
          return result;
        } finally {
          w.done();
        }
      },
      (err: unknown) => {
        w.done();
        // A write the store fenced wrote nothing: admitted again, as write() does.
        if (!isDecantError(err, "fenced")) throw err;
        return c.tick().then(() => this.writeAttempts(ns, key, call, primaryWrite, replica, 1));
      },
    );
  }

  private async writeOnce<T>(ns: string, key: string, call: Caller | undefined, primaryWrite: (store: Store, fence?: number) => Promise<T>, replica: (result: T) => RawItem | null, admitted?: AdmittedWrite | Promise<AdmittedWrite>): Promise<T> {
    const c = this.controller;
    const w = await (admitted ?? c.admitWrite());
    try {
      const roles = ROLES[w.phase];
      // The intent goes with the caller: one gone already refuses it, and so the write (nothing written).
      const intent = roles.secondary ? await c.writeIntent(ns, key, call) : undefined;
      if (c.hooks.beforePrimary) await c.hooks.beforePrimary({ ...w, ns, key, call }); // test hooks: no await per write without one
      // Model finding N3: the intent write took time; the view must still hold as the primary call starts.
      // From here on nothing but the primary write itself is given the caller.
      if (!c.leaseHeld(w)) {
        if (intent) c.dropIntent(intent);
        throw new DecantError("unavailable", LAPSED_BEFORE);
      }
      const primary = c.store(roles.primary);
      let result: T;
      const started = performance.now();
      try {
        result = await primaryWrite(primary, primary.capabilities.fencing ? w.epoch : undefined);
      } catch (err) {
        if (intent && definite(err)) c.dropIntent(intent);
        else if (intent) await c.leaveForRepair(roles.secondary!, intent, true, err);
        throw err;
      }
      c.backfill.observeLiveLatency(performance.now() - started);
      if (!c.leaseHeld(w)) {
        // Step 7: the view lapsed during the call, so the phase may have moved meanwhile.
        const err = new DecantError("unavailable", LAPSED_DURING);
        if (intent) await c.leaveForRepair(roles.secondary!, intent, true, err);
        throw err;
      }
      const item = replica(result);
      if (!intent) return result;
      if (!item) {
        c.dropIntent(intent); // nothing was deleted: nothing to copy
        return result;
      }
      if (c.hooks.beforeSecondary) await c.hooks.beforeSecondary({ ...w, ns, key, call });
      // The primary has the write: its copy and the intent's removal finish even if the caller has gone (no caller given).
      await this.replicate(w.phase, ns, item, intent);
      return result;
    } finally {
      w.done();
    }
  }

  /** Sends a primary write to the secondary; step 9 decides what a failure means. */
  private async replicate(phase: Phase, ns: string, item: RawItem, intent: Intent): Promise<void> {
    const c = this.controller;
    const role = ROLES[phase].secondary!;
    let problem: unknown;
    try {
      const [applied] = await c.store(role).applyIfNewer(ns, [item]);
      if (applied || (await this.holdsSame(role, ns, item))) {
        c.clearIntent(intent);
        return;
      }
      problem = new DecantError("internal", `the ${role} store holds a different item at version ${item.version} or later for ${ns}/${item.key}; left for repair`);
    } catch (err) {
      // Even invalid_argument (a version the secondary cannot hold): the primary has applied it.
      problem = err;
    }
    await c.leaveForRepair(role, intent, !isDecantError(problem) || !DEFINITE.has(problem.kind), problem);
    if (strictSecondary(phase)) {
      throw new DecantError("unavailable", `the write reached the primary but not the ${role} store, which serves (or is about to serve) reads; it is not acknowledged and will be repaired: ${describeError(problem)}`, { cause: problem });
    }
  }

  /** applyIfNewer refused: the secondary already holds this item (the backfill or a repair copied it), or a newer one. */
  private async holdsSame(role: Role, ns: string, item: RawItem): Promise<boolean> {
    const there = await this.controller.rawOn(role, ns, item.key);
    if (!there) return false;
    if (there.version > item.version) return true;
    return there.version === item.version && (there.value === null ? item.value === null : item.value !== null && there.value.equals(item.value));
  }

  // Replication operations address the primary (and carry the write to the secondary), so the
  // migration layer passes the same conformance suite as any backend.
  getRaw(ns: string, key: string, call?: Caller): Promise<RawItem | null> {
    return this.readStore().getRaw(ns, key, call);
  }

  batchGetRaw(ns: string, keys: string[], call?: Caller): Promise<RawItem[]> {
    return this.readStore().batchGetRaw(ns, keys, call);
  }

  /** The caller can stop it only before the primary's applyIfNewer starts; the secondary's copy is not given it. */
  async applyIfNewer(ns: string, items: RawItem[], _fence?: number, call?: Caller): Promise<boolean[]> {
    for (const item of items) this.controller.checkValueFits(item.key, item.value);
    const { phase, done } = await this.controller.admitWrite();
    try {
      const applied = await this.controller.store(ROLES[phase].primary).applyIfNewer(ns, items, undefined, call);
      const role = ROLES[phase].secondary;
      if (role) await this.controller.store(role).applyIfNewer(ns, items);
      return applied;
    } finally {
      done();
    }
  }

  scanRaw(ns: string, options: RawScanOptions, call?: Caller): Promise<ScanPage<RawItem>> {
    return this.readStore().scanRaw(ns, options, call);
  }

  largeValues(ns: string, options: LargeValueOptions, call?: Caller): Promise<ScanPage<ValueSize>> {
    return this.readStore().largeValues(ns, options, call);
  }

  namespaces(call?: Caller): Promise<string[]> {
    return this.readStore().namespaces(call);
  }

  estimateCount(ns: string, call?: Caller): Promise<number> {
    return this.readStore().estimateCount(ns, call);
  }

  /** The caller can stop it only before the primary's drop starts; the secondary's is not given it. */
  async dropNamespace(ns: string, call?: Caller): Promise<void> {
    const roles = ROLES[this.controller.phase];
    await this.controller.store(roles.primary).dropNamespace(ns, call);
    if (roles.secondary) await this.controller.store(roles.secondary).dropNamespace(ns);
  }

  /**
   * Finding 8: a purge cannot be fenced against a migration that starts while it runs (purged
   * keys would restart at version 1 under tombstones already copied), so a running sidecar
   * never purges. Purge with the store's own tools while no sidecar runs, or not at all.
   */
  async purgeTombstones(): Promise<number> {
    throw new DecantError("failed_precondition", "tombstones are not purged through a running sidecar: a migration started meanwhile would lose the versions that make it converge");
  }

  async close(): Promise<void> {}
}
