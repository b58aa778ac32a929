// Original file: proto/decant/v1/store.proto

import type { Long } from '@grpc/proto-loader';

export interface WriteResult {
  'key'?: (string);
  'version'?: (number | string | Long);
  'code'?: (number);
  'message'?: (string);
  'deleted'?: (boolean);
  'current_version'?: (number | string | Long);
}

export interface WriteResult__Output {
  'key': (string);
  'version': (string);
  'code': (number);
  'message': (string);
  'deleted': (boolean);
  'current_version': (string);
}
