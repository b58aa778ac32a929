// Original file: proto/decant/v1/migration.proto

import type { BackfillWorker as _decant_v1_BackfillWorker, BackfillWorker__Output as _decant_v1_BackfillWorker__Output } from '../../decant/v1/BackfillWorker.js';
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
  'segments_total'?: (number);
  'segments_done'?: (number);
  'segments_running'?: (number);
  'segments_waiting'?: (number);
  'workers'?: (_decant_v1_BackfillWorker)[];
  'eta_seconds'?: (number | string);
  '_eta_seconds'?: "eta_seconds";
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
  'segments_total': (number);
  'segments_done': (number);
  'segments_running': (number);
  'segments_waiting': (number);
  'workers': (_decant_v1_BackfillWorker__Output)[];
  'eta_seconds'?: (number);
  '_eta_seconds'?: "eta_seconds";
}
