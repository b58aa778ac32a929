// Original file: proto/decant/v1/store.proto

import type { Long } from '@grpc/proto-loader';

export interface Condition {
  'expected_version'?: (number | string | Long);
  'must_not_exist'?: (boolean);
  'kind'?: "expected_version"|"must_not_exist";
}

export interface Condition__Output {
  'expected_version'?: (string);
  'must_not_exist'?: (boolean);
  'kind'?: "expected_version"|"must_not_exist";
}
