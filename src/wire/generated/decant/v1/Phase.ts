// Original file: proto/decant/v1/migration.proto

export const Phase = {
  PHASE_UNSPECIFIED: 'PHASE_UNSPECIFIED',
  SINGLE: 'SINGLE',
  DUAL_WRITE: 'DUAL_WRITE',
  SHADOW_READ: 'SHADOW_READ',
  READ_TARGET: 'READ_TARGET',
  TARGET_PRIMARY: 'TARGET_PRIMARY',
  COMPLETE: 'COMPLETE',
} as const;

export type Phase =
  | 'PHASE_UNSPECIFIED'
  | 0
  | 'SINGLE'
  | 1
  | 'DUAL_WRITE'
  | 2
  | 'SHADOW_READ'
  | 3
  | 'READ_TARGET'
  | 4
  | 'TARGET_PRIMARY'
  | 5
  | 'COMPLETE'
  | 6

export type Phase__Output = typeof Phase[keyof typeof Phase]
