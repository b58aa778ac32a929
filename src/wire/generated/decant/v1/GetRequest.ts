// Original file: proto/decant/v1/store.proto


export interface GetRequest {
  'namespace'?: (string);
  'key'?: (string);
}

export interface GetRequest__Output {
  'namespace': (string);
  'key': (string);
}
