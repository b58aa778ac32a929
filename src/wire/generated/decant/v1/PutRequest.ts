// Original file: proto/decant/v1/store.proto

import type { Condition as _decant_v1_Condition, Condition__Output as _decant_v1_Condition__Output } from '../../decant/v1/Condition.js';

export interface PutRequest {
  'namespace'?: (string);
  'key'?: (string);
  'value'?: (Buffer | Uint8Array | string);
  'condition'?: (_decant_v1_Condition | null);
}

export interface PutRequest__Output {
  'namespace': (string);
  'key': (string);
  'value': (Buffer);
  'condition': (_decant_v1_Condition__Output | null);
}
