// Original file: proto/decant/v1/store.proto

import type { Long } from '@grpc/proto-loader';

export interface DeleteResponse {
  'deleted'?: (boolean);
  'version'?: (number | string | Long);
}

export interface DeleteResponse__Output {
  'deleted': (boolean);
  'version': (string);
}
