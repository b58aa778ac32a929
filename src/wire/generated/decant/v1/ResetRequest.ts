// Original file: proto/decant/v1/migration.proto


export interface ResetRequest {
}

export interface ResetRequest__Output {
}
