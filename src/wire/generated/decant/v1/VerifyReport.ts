// Original file: proto/decant/v1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface VerifyReport {
  'checked'?: (number | string | Long);
  'in_sync'?: (number | string | Long);
  'missing'?: (number | string | Long);
  'stale'?: (number | string | Long);
  'extra'?: (number | string | Long);
  'done'?: (boolean);
  'sample_keys'?: (string)[];
  'repaired'?: (number | string | Long);
}

export interface VerifyReport__Output {
  'checked': (string);
  'in_sync': (string);
  'missing': (string);
  'stale': (string);
  'extra': (string);
  'done': (boolean);
  'sample_keys': (string)[];
  'repaired': (string);
}
