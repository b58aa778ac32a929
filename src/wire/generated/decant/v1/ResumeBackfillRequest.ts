// Original file: proto/decant/v1/migration.proto


export interface ResumeBackfillRequest {
}

export interface ResumeBackfillRequest__Output {
}
