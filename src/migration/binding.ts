// Rule 9 (DESIGN.md): a data store records which control store coordinates it, by the control
// store's random identity, so a replica configured with another control store (DECANT_CONTROL
// drift) refuses to start instead of acting as a second primary. Bound replicas touch the record
// now and then: a running replica is visible from the data store, and a replica whose store was
// re-bound under it (decant control rebind) sees so and stops writing.
import { randomBytes } from "node:crypto";
import { DecantError } from "../protocol/errors.js";
import type { Store } from "../protocol/store.js";
import { BACKFILL_KEY, BINDING_KEY, ControlStore, IDENTITY_KEY, JOURNAL_PREFIX, PHASE_KEY, type PhaseRecord } from "./control.js";

export interface Binding {
  /** The control store's identity (its "identity" record). */
  control: string;
  /** Where that control store was, for people. */
  description: string;
  /** The last bound replica's touch (for people: liveness is judged by the version changing). */
  seenBy?: string;
  seenAt?: number;
}

export const REBIND_COMMAND = "decant control rebind --yes";

/** The control store's identity, made on its first use. */
export async function controlIdentity(control: ControlStore): Promise<string> {
  let identity = await control.read<{ id: string }>(IDENTITY_KEY);
  if (!identity) {
    await control.compareAndSet(IDENTITY_KEY, { id: randomBytes(8).toString("hex") }, null);
    identity = await control.read<{ id: string }>(IDENTITY_KEY);
  }
  return identity!.value.id;
}

/** Binds `data` to the control store on first use; refuses if another control store coordinates it. */
export async function checkBinding(data: Store, role: string, control: ControlStore): Promise<void> {
  const id = await controlIdentity(control);
  const records = new ControlStore(data);
  let binding = await records.read<Binding>(BINDING_KEY);
  if (!binding) {
    await records.compareAndSet<Binding>(BINDING_KEY, { control: id, description: control.store.description }, null);
    binding = await records.read<Binding>(BINDING_KEY);
  }
  if (binding!.value.control !== id) throw bindingMismatch(data, role, binding!.value, control);
}

/**
 * Why a store bound to another control store is refused. The same description with another
 * identity is not drift in the configuration: the store at that place is not the one it was.
 */
export function bindingMismatch(data: Store, role: string, binding: Binding, control: ControlStore): DecantError {
  const here = control.store.description;
  if (binding.description === here) {
    return new DecantError(
      "failed_precondition",
      `the ${role} store ${data.description} is bound to the control store at ${here}, but the control store now at ${here} has another identity: ` +
        `it was recreated or lost its state (a deleted SQLite file, a lost emptyDir, a dropped database), or each replica has a store of its own at that address. ` +
        `The migration's phase and journal history kept there is gone. If every replica uses this one control store and none still runs on the old one, ` +
        `re-bind with \`${REBIND_COMMAND}\` (same configuration as this sidecar; it refuses while a replica of the old control store still runs). ` +
        `Otherwise every replica must use the same control store: give them one shared DECANT_CONTROL (README, Troubleshooting)`,
    );
  }
  return new DecantError("failed_precondition", `the ${role} store ${data.description} is coordinated by the control store ${binding.description}, but this sidecar's control store is ${here}: every replica must use the same control store (check DECANT_CONTROL)`);
}

/**
 * A bound replica's periodic touch: proves it runs (the record's version moves) and checks the
 * binding still names its control store. Returns the refusal when it does not.
 */
export async function touchBinding(data: Store, role: string, control: ControlStore, id: string, replicaId: string): Promise<DecantError | undefined> {
  const records = new ControlStore(data);
  const binding = await records.read<Binding>(BINDING_KEY);
  if (!binding) return undefined; // removed by hand: the next start binds again
  if (binding.value.control !== id) return bindingMismatch(data, role, binding.value, control);
  await records.compareAndSet<Binding>(BINDING_KEY, { control: id, description: control.store.description, seenBy: replicaId, seenAt: Date.now() }, binding.version);
  return undefined;
}

export interface RebindOptions {
  stores: { role: string; store: Store }[];
  control: ControlStore;
  /** How long a binding record is watched for a running replica's touch (at least the replica TTL). */
  observeMs: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RebindResult {
  role: string;
  store: string;
  /** What the store was bound to before (undefined: not bound, left alone; "same": already bound here). */
  from?: string;
  rebound: boolean;
}

/**
 * Binds the stores to the configured control store after it was recreated. Refuses when the
 * control store holds a migration underway (its records would be read against stores they do
 * not describe) or when a replica bound to the old control store still touches a binding.
 */
export async function rebind(o: RebindOptions): Promise<RebindResult[]> {
  await refuseUnlessIdle(o.control);
  const id = await controlIdentity(o.control);
  const seen = new Map<string, { value: Binding; version: bigint }>();
  const results: RebindResult[] = [];
  for (const { role, store } of o.stores) {
    const binding = await new ControlStore(store).read<Binding>(BINDING_KEY);
    if (!binding) results.push({ role, store: store.description, rebound: false });
    else if (binding.value.control === id) results.push({ role, store: store.description, from: "same", rebound: false });
    else seen.set(role, binding);
  }
  if (seen.size === 0) return results;
  await (o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms))))(o.observeMs);
  for (const { role, store } of o.stores) {
    const before = seen.get(role);
    if (!before) continue;
    const now = await new ControlStore(store).read<Binding>(BINDING_KEY);
    if (now && now.version !== before.version) throw stillRunning(role, store, now.value);
  }
  for (const { role, store } of o.stores) {
    const before = seen.get(role);
    if (!before) continue;
    const written = await new ControlStore(store).compareAndSet<Binding>(BINDING_KEY, { control: id, description: o.control.store.description }, before.version);
    if (written === false) throw stillRunning(role, store, (await new ControlStore(store).read<Binding>(BINDING_KEY))?.value);
    results.push({ role, store: store.description, from: before.value.description, rebound: true });
  }
  return results;
}

function stillRunning(role: string, store: Store, binding?: Binding): DecantError {
  const who = binding?.seenBy ? ` (replica ${binding.seenBy}, ${new Date(binding.seenAt ?? 0).toISOString()})` : "";
  return new DecantError("failed_precondition", `a replica bound to the control store ${binding?.description ?? "?"} still runs: it touched the binding of the ${role} store ${store.description} while this command watched${who}. Stop it, or give it this DECANT_CONTROL, before re-binding; nothing was changed`);
}

/** The configured control store must hold no migration underway: SINGLE, or COMPLETE, with nothing pending. */
async function refuseUnlessIdle(control: ControlStore): Promise<void> {
  const where = control.store.description;
  const phase = (await control.read<PhaseRecord>(PHASE_KEY))?.value;
  if (phase && (!(phase.phase === "SINGLE" || phase.phase === "COMPLETE") || phase.fence || phase.pending)) {
    throw new DecantError("failed_precondition", `the control store ${where} holds a migration in phase ${phase.phase}${phase.pending ? ` (moving to ${phase.pending})` : ""}: it is not a recreated, empty control store, so it is not re-bound. Check DECANT_CONTROL`);
  }
  const backfill = (await control.read<{ state?: string }>(BACKFILL_KEY))?.value;
  if (backfill && (backfill.state === "running" || backfill.state === "paused")) {
    throw new DecantError("failed_precondition", `the control store ${where} holds a ${backfill.state} backfill: it is not re-bound while one is underway`);
  }
  if ((await control.list(JOURNAL_PREFIX, 1)).length > 0) {
    throw new DecantError("failed_precondition", `the control store ${where} holds repair journal entries (writes not yet copied to a secondary): it is not re-bound while repair work is pending`);
  }
}
