// Original file: proto/decant/v1/migration.proto


export interface BackfillWorker {
  'id'?: (string);
  'segments'?: (number);
  'items_per_second'?: (number | string);
}

export interface BackfillWorker__Output {
  'id': (string);
  'segments': (number);
  'items_per_second': (number);
}
