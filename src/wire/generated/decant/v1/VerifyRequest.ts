// Original file: proto/decant/v1/migration.proto


export interface VerifyRequest {
  'namespace'?: (string);
  'repair'?: (boolean);
}

export interface VerifyRequest__Output {
  'namespace': (string);
  'repair': (boolean);
}
