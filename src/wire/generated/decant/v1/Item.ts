// Original file: proto/decant/v1/store.proto

import type { Long } from '@grpc/proto-loader';

export interface Item {
  'key'?: (string);
  'value'?: (Buffer | Uint8Array | string);
  'version'?: (number | string | Long);
}

export interface Item__Output {
  'key': (string);
  'value': (Buffer);
  'version': (string);
}
