// Moving between the phases of DESIGN.md §4 (the table itself is src/protocol/phases.ts).
import { PHASES, ROLES, type Phase } from "../protocol/phases.js";

export { PHASES, ROLES, isPhase, type Phase, type PhaseRoles, type Role } from "../protocol/phases.js";

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
