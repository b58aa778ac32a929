// Original file: proto/decant/v1/store.proto

import type { Long } from '@grpc/proto-loader';

export interface PutResponse {
  'version'?: (number | string | Long);
}

export interface PutResponse__Output {
  'version': (string);
}
