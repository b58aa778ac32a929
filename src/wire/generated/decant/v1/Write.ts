// Original file: proto/decant/v1/store.proto

import type { PutOperation as _decant_v1_PutOperation, PutOperation__Output as _decant_v1_PutOperation__Output } from '../../decant/v1/PutOperation.js';
import type { DeleteOperation as _decant_v1_DeleteOperation, DeleteOperation__Output as _decant_v1_DeleteOperation__Output } from '../../decant/v1/DeleteOperation.js';

export interface Write {
  'put'?: (_decant_v1_PutOperation | null);
  'delete'?: (_decant_v1_DeleteOperation | null);
  'operation'?: "put"|"delete";
}

export interface Write__Output {
  'put'?: (_decant_v1_PutOperation__Output | null);
  'delete'?: (_decant_v1_DeleteOperation__Output | null);
  'operation'?: "put"|"delete";
}
