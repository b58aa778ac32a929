// Original file: proto/decant/v1/migration.proto

import type { Phase as _decant_v1_Phase, Phase__Output as _decant_v1_Phase__Output } from '../../decant/v1/Phase.js';
import type { Replica as _decant_v1_Replica, Replica__Output as _decant_v1_Replica__Output } from '../../decant/v1/Replica.js';
import type { BackfillStatus as _decant_v1_BackfillStatus, BackfillStatus__Output as _decant_v1_BackfillStatus__Output } from '../../decant/v1/BackfillStatus.js';
import type { VerifyReport as _decant_v1_VerifyReport, VerifyReport__Output as _decant_v1_VerifyReport__Output } from '../../decant/v1/VerifyReport.js';
import type { Long } from '@grpc/proto-loader';

export interface GetStatusResponse {
  'phase'?: (_decant_v1_Phase);
  'active'?: (boolean);
  'replicas'?: (_decant_v1_Replica)[];
  'backfill'?: (_decant_v1_BackfillStatus | null);
  'last_verify'?: (_decant_v1_VerifyReport | null);
  'repair_journal_depth'?: (number | string | Long);
  'current_store'?: (string);
  'target_store'?: (string);
  'epoch'?: (number | string | Long);
}

export interface GetStatusResponse__Output {
  'phase': (_decant_v1_Phase__Output);
  'active': (boolean);
  'replicas': (_decant_v1_Replica__Output)[];
  'backfill': (_decant_v1_BackfillStatus__Output | null);
  'last_verify': (_decant_v1_VerifyReport__Output | null);
  'repair_journal_depth': (string);
  'current_store': (string);
  'target_store': (string);
  'epoch': (string);
}
