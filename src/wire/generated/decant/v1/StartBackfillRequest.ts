// Original file: proto/decant/v1/migration.proto


export interface StartBackfillRequest {
  'rate_limit'?: (number | string);
  'concurrency'?: (number);
}

export interface StartBackfillRequest__Output {
  'rate_limit': (number);
  'concurrency': (number);
}
