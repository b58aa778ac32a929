// The phase table of DESIGN.md §4: who serves reads, who assigns versions, who replicates.
// It is part of the protocol (GetStatus names phases; metrics label them), so every layer may
// use it; the rules for moving between phases stay with the migration (src/migration/phases.ts).
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
