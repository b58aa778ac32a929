// Original file: proto/decant/v1/store.proto


export interface BatchGetRequest {
  'namespace'?: (string);
  'keys'?: (string)[];
}

export interface BatchGetRequest__Output {
  'namespace': (string);
  'keys': (string)[];
}
