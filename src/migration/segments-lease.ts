// Fenced segment leases (docs/PROTOCOL.md, "Segment leases", S1–S3), shared by the backfill and
// the verifier: take a segment by compare-and-set with a new token, judge lapses on this
// process's monotonic clock, renew and checkpoint by compare-and-set, and stop for good once the
// record shows another holder.
import type { Logger } from "../log.js";
import type { ControlStore } from "./control.js";
import type { SegmentHolder } from "./segments.js";
import type { Clock } from "./work-context.js";

/** What every leased record carries. */
export interface Leased {
  index: number;
  ns: string;
  done: boolean;
  owner?: string;
  run?: string;
  token: number;
  cursor?: string;
  updatedAt: number;
  history: SegmentHolder[];
}

/** Who held a segment, from which checkpoint: kept so a takeover can be audited (bounded). */
const HISTORY = 32;

/** One segment this process holds: its record as last written, and since when the lease holds. */
export interface Held<R extends Leased> {
  key: string;
  rec: R;
  version: bigint;
  /** Monotonic time the write that last renewed the lease started: the lease holds leaseMs from it. */
  renewedAt: number;
  /** Record writes of one segment run one at a time (a renewal never races a checkpoint). */
  chain: Promise<unknown>;
  lost: boolean;
}

export interface Listed<R> {
  key: string;
  value: R;
  version: bigint;
}

/** Thrown into a segment's work when its lease ended: the work stops, writing nothing more. */
export class LeaseLost extends Error {}

export class SegmentLeases {
  private readonly seen = new Map<string, { version: bigint; since: number }>();

  constructor(
    private readonly control: ControlStore,
    private readonly holder: { id: string; run: string },
    private readonly clock: Clock,
    private readonly leaseMs: number,
    /** No write starts within this margin of the lease's end (S3). */
    private readonly marginMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Sorts listed segments into those another holder runs now (held, renewed within a lease on
   * this clock) and those this process may take: unheld first, then lapsed, in random order so
   * replicas that list at the same moment spread out. `running` are the keys this process runs.
   */
  survey<R extends Leased>(all: Listed<R>[], running: Set<string>): { free: Listed<R>[]; elsewhere: number } {
    const now = this.clock.monotonic();
    for (const k of this.seen.keys()) if (!all.some((s) => s.key === k)) this.seen.delete(k);
    const free: Listed<R>[] = [];
    let elsewhere = 0;
    for (const s of all) {
      if (s.value.done || running.has(s.key)) continue;
      const lapsed = this.lapsed(s.key, s.version, now);
      if (s.value.owner !== undefined && s.value.run !== this.holder.run && !lapsed) elsewhere++;
      else free.push(s);
    }
    const shuffled = free.map((s) => ({ s, r: Math.random() + (s.value.owner !== undefined ? 1 : 0) })).sort((a, b) => a.r - b.r);
    return { free: shuffled.map((x) => x.s), elsewhere };
  }

  private lapsed(key: string, version: bigint, now: number): boolean {
    const s = this.seen.get(key);
    if (!s || s.version !== version) {
      this.seen.set(key, { version, since: now });
      return false;
    }
    return now - s.since >= this.leaseMs;
  }

  /** S1: takes the segment with a new token; null if another holder was faster. */
  async take<R extends Leased>(s: Listed<R>, what: string): Promise<Held<R> | null> {
    const startedAt = this.clock.monotonic();
    const now = this.clock.wall();
    const { id, run } = this.holder;
    const rec: R = {
      ...s.value,
      owner: id,
      run,
      token: s.value.token + 1,
      updatedAt: now,
      history: [...s.value.history, { owner: id, token: s.value.token + 1, at: now, ...(s.value.cursor !== undefined ? { from: s.value.cursor } : {}) }].slice(-HISTORY),
    };
    const version = await this.control.compareAndSet(s.key, rec, s.version);
    if (version === false) return null;
    if (s.value.owner !== undefined && s.value.run !== run) {
      this.logger.warn(`took over the ${what} segment ${s.value.index} (${s.value.ns}) from ${s.value.owner} at its checkpoint`, { token: rec.token });
    }
    return { key: s.key, rec, version, renewedAt: startedAt, chain: Promise.resolve(), lost: false };
  }

  /** S3: the lease holds, with the margin for a write about to start. */
  holds(h: Held<Leased>): boolean {
    return !h.lost && this.clock.monotonic() + this.marginMs < h.renewedAt + this.leaseMs;
  }

  /**
   * S2: writes the segment's record if this process still holds it (compare-and-set on the
   * version it last wrote). Returns false once the segment is lost; it never writes it again.
   */
  save<R extends Leased>(h: Held<R>, next: (rec: R) => R): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      if (h.lost) return false;
      for (let i = 0; i < 5; i++) {
        const startedAt = this.clock.monotonic();
        const rec = next(h.rec);
        const v = await this.control.compareAndSet(h.key, rec, h.version);
        if (v !== false) {
          h.rec = rec;
          h.version = v;
          h.renewedAt = startedAt;
          return true;
        }
        const fresh = await this.control.read<R>(h.key);
        if (!fresh || fresh.value.run !== this.holder.run || fresh.value.token !== h.rec.token) {
          h.lost = true;
          this.logger.warn(`segment ${h.rec.index} (${h.rec.ns}) was taken over${fresh?.value.owner ? ` by ${fresh.value.owner}` : ""}; this worker stops writing it`, { token: h.rec.token });
          return false;
        }
        h.version = fresh.version; // written by this holder's own earlier attempt whose answer was lost
      }
      return false;
    };
    const p = h.chain.then(run, run);
    h.chain = p.catch(() => undefined);
    return p;
  }

  /** Renews the lease every quarter lease until the returned function is called. */
  renewing<R extends Leased>(h: Held<R>): () => void {
    const timer = setInterval(() => void this.save(h, (r) => ({ ...r, updatedAt: this.clock.wall() })).catch(() => undefined), Math.max(20, this.leaseMs / 4));
    return () => clearInterval(timer);
  }

  /** Gives the segment back at its checkpoint, so another worker need not wait a lease. */
  async release<R extends Leased>(h: Held<R>, error?: string): Promise<void> {
    await this.save(h, (r) => ({ ...r, owner: undefined, run: undefined, updatedAt: this.clock.wall(), ...(error ? { error } : {}) })).catch(() => undefined);
  }
}
