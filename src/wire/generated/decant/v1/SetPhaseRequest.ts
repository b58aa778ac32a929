// Original file: proto/decant/v1/migration.proto

import type { Phase as _decant_v1_Phase, Phase__Output as _decant_v1_Phase__Output } from '../../decant/v1/Phase.js';

export interface SetPhaseRequest {
  'phase'?: (_decant_v1_Phase);
  'force'?: (boolean);
}

export interface SetPhaseRequest__Output {
  'phase': (_decant_v1_Phase__Output);
  'force': (boolean);
}
