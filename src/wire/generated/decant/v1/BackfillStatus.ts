// Original file: proto/decant/v1/migration.proto

import type { Long } from '@grpc/proto-loader';

export interface BackfillStatus {
  'state'?: (string);
  'scanned'?: (number | string | Long);
  'copied'?: (number | string | Long);
  'skipped'?: (number | string | Long);
  'estimated_total'?: (number | string | Long);
  'items_per_second'?: (number | string);
  'error'?: (string);
  'runner'?: (string);
}

export interface BackfillStatus__Output {
  'state': (string);
  'scanned': (string);
  'copied': (string);
  'skipped': (string);
  'estimated_total': (string);
  'items_per_second': (number);
  'error': (string);
  'runner': (string);
}
