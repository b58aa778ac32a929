// Original file: proto/decant/v1/migration.proto


export interface GetStatusRequest {
}

export interface GetStatusRequest__Output {
}
