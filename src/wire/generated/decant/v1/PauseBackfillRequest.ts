// Original file: proto/decant/v1/migration.proto


export interface PauseBackfillRequest {
}

export interface PauseBackfillRequest__Output {
}
