// Original file: proto/decant/v1/store.proto

import type { Write as _decant_v1_Write, Write__Output as _decant_v1_Write__Output } from '../../decant/v1/Write.js';

export interface BatchWriteRequest {
  'namespace'?: (string);
  'writes'?: (_decant_v1_Write)[];
}

export interface BatchWriteRequest__Output {
  'namespace': (string);
  'writes': (_decant_v1_Write__Output)[];
}
