// The phase table of DESIGN.md §4: who serves reads, who assigns versions, who replicates.

export const PHASES = ["SINGLE", "DUAL_WRITE", "SHADOW_READ", "READ_TARGET", "TARGET_PRIMARY", "COMPLETE"] as const;
export type Phase = (typeof PHASES)[number];

export type Role = "current" | "target";

export interface PhaseRoles {
  reads: Role;
  primary: Role;
  secondary?: Role;
  /** Read the other store too and compare, off the request path. */
  shadowRead: boolean;
}

export const ROLES: Record<Phase, PhaseRoles> = {
  SINGLE: { reads: "current", primary: "current", shadowRead: false },
  DUAL_WRITE: { reads: "current", primary: "current", secondary: "target", shadowRead: false },
  SHADOW_READ: { reads: "current", primary: "current", secondary: "target", shadowRead: true },
  READ_TARGET: { reads: "target", primary: "current", secondary: "target", shadowRead: false },
  TARGET_PRIMARY: { reads: "target", primary: "target", secondary: "current", shadowRead: false },
  COMPLETE: { reads: "target", primary: "target", shadowRead: false },
};

export const isPhase = (p: unknown): p is Phase => typeof p === "string" && (PHASES as readonly string[]).includes(p);

const index = (p: Phase) => PHASES.indexOf(p);

/** Forward one step at a time; back to any earlier phase until COMPLETE (rule 7). */
export function transitionError(from: Phase, to: Phase): string | null {
  if (from === to) return `the migration is already in ${to}`;
  if (from === "COMPLETE") return "the migration is COMPLETE; there is no way back from it (reconfigure with the target as current)";
  if (index(to) > index(from) + 1) return `cannot jump from ${from} to ${to}; the next step is ${PHASES[index(from) + 1]}`;
  return null;
}

/** Moving the primary needs the write fence (rule 3). */
export const movesPrimary = (from: Phase, to: Phase): boolean => ROLES[from].primary !== ROLES[to].primary;
