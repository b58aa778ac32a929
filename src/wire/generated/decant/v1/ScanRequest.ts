// Original file: proto/decant/v1/store.proto


export interface ScanRequest {
  'namespace'?: (string);
  'prefix'?: (string);
  'page_size'?: (number);
  'page_token'?: (string);
}

export interface ScanRequest__Output {
  'namespace': (string);
  'prefix': (string);
  'page_size': (number);
  'page_token': (string);
}
