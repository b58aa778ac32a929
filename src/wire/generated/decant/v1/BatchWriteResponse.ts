// Original file: proto/decant/v1/store.proto

import type { WriteResult as _decant_v1_WriteResult, WriteResult__Output as _decant_v1_WriteResult__Output } from '../../decant/v1/WriteResult.js';

export interface BatchWriteResponse {
  'results'?: (_decant_v1_WriteResult)[];
}

export interface BatchWriteResponse__Output {
  'results': (_decant_v1_WriteResult__Output)[];
}
