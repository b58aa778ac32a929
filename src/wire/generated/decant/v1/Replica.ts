// Original file: proto/decant/v1/migration.proto

import type { Phase as _decant_v1_Phase, Phase__Output as _decant_v1_Phase__Output } from '../../decant/v1/Phase.js';
import type { Long } from '@grpc/proto-loader';

export interface Replica {
  'id'?: (string);
  'acked_phase'?: (_decant_v1_Phase);
  'age_seconds'?: (number | string);
  'acked_epoch'?: (number | string | Long);
}

export interface Replica__Output {
  'id': (string);
  'acked_phase': (_decant_v1_Phase__Output);
  'age_seconds': (number);
  'acked_epoch': (string);
}
