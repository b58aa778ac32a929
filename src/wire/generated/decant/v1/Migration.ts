// Original file: proto/decant/v1/migration.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { GetStatusRequest as _decant_v1_GetStatusRequest, GetStatusRequest__Output as _decant_v1_GetStatusRequest__Output } from '../../decant/v1/GetStatusRequest.js';
import type { GetStatusResponse as _decant_v1_GetStatusResponse, GetStatusResponse__Output as _decant_v1_GetStatusResponse__Output } from '../../decant/v1/GetStatusResponse.js';
import type { PauseBackfillRequest as _decant_v1_PauseBackfillRequest, PauseBackfillRequest__Output as _decant_v1_PauseBackfillRequest__Output } from '../../decant/v1/PauseBackfillRequest.js';
import type { ResetRequest as _decant_v1_ResetRequest, ResetRequest__Output as _decant_v1_ResetRequest__Output } from '../../decant/v1/ResetRequest.js';
import type { ResumeBackfillRequest as _decant_v1_ResumeBackfillRequest, ResumeBackfillRequest__Output as _decant_v1_ResumeBackfillRequest__Output } from '../../decant/v1/ResumeBackfillRequest.js';
import type { SetPhaseRequest as _decant_v1_SetPhaseRequest, SetPhaseRequest__Output as _decant_v1_SetPhaseRequest__Output } from '../../decant/v1/SetPhaseRequest.js';
import type { StartBackfillRequest as _decant_v1_StartBackfillRequest, StartBackfillRequest__Output as _decant_v1_StartBackfillRequest__Output } from '../../decant/v1/StartBackfillRequest.js';
import type { VerifyReport as _decant_v1_VerifyReport, VerifyReport__Output as _decant_v1_VerifyReport__Output } from '../../decant/v1/VerifyReport.js';
import type { VerifyRequest as _decant_v1_VerifyRequest, VerifyRequest__Output as _decant_v1_VerifyRequest__Output } from '../../decant/v1/VerifyRequest.js';

export interface MigrationClient extends grpc.Client {
  GetStatus(argument: _decant_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _decant_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _decant_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  GetStatus(argument: _decant_v1_GetStatusRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _decant_v1_GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _decant_v1_GetStatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _decant_v1_GetStatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  getStatus(argument: _decant_v1_GetStatusRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  PauseBackfill(argument: _decant_v1_PauseBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  PauseBackfill(argument: _decant_v1_PauseBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  PauseBackfill(argument: _decant_v1_PauseBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  PauseBackfill(argument: _decant_v1_PauseBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  pauseBackfill(argument: _decant_v1_PauseBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  pauseBackfill(argument: _decant_v1_PauseBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  pauseBackfill(argument: _decant_v1_PauseBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  pauseBackfill(argument: _decant_v1_PauseBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  Reset(argument: _decant_v1_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _decant_v1_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _decant_v1_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  Reset(argument: _decant_v1_ResetRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _decant_v1_ResetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _decant_v1_ResetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _decant_v1_ResetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  reset(argument: _decant_v1_ResetRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  ResumeBackfill(argument: _decant_v1_ResumeBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  ResumeBackfill(argument: _decant_v1_ResumeBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  ResumeBackfill(argument: _decant_v1_ResumeBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  ResumeBackfill(argument: _decant_v1_ResumeBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  resumeBackfill(argument: _decant_v1_ResumeBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  resumeBackfill(argument: _decant_v1_ResumeBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  resumeBackfill(argument: _decant_v1_ResumeBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  resumeBackfill(argument: _decant_v1_ResumeBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  SetPhase(argument: _decant_v1_SetPhaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  SetPhase(argument: _decant_v1_SetPhaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  SetPhase(argument: _decant_v1_SetPhaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  SetPhase(argument: _decant_v1_SetPhaseRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  setPhase(argument: _decant_v1_SetPhaseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  setPhase(argument: _decant_v1_SetPhaseRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  setPhase(argument: _decant_v1_SetPhaseRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  setPhase(argument: _decant_v1_SetPhaseRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  StartBackfill(argument: _decant_v1_StartBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  StartBackfill(argument: _decant_v1_StartBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  StartBackfill(argument: _decant_v1_StartBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  StartBackfill(argument: _decant_v1_StartBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  startBackfill(argument: _decant_v1_StartBackfillRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  startBackfill(argument: _decant_v1_StartBackfillRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  startBackfill(argument: _decant_v1_StartBackfillRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  startBackfill(argument: _decant_v1_StartBackfillRequest, callback: grpc.requestCallback<_decant_v1_GetStatusResponse__Output>): grpc.ClientUnaryCall;
  
  Verify(argument: _decant_v1_VerifyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_decant_v1_VerifyReport__Output>;
  Verify(argument: _decant_v1_VerifyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_decant_v1_VerifyReport__Output>;
  verify(argument: _decant_v1_VerifyRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_decant_v1_VerifyReport__Output>;
  verify(argument: _decant_v1_VerifyRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_decant_v1_VerifyReport__Output>;
  
}

export interface MigrationHandlers extends grpc.UntypedServiceImplementation {
  GetStatus: grpc.handleUnaryCall<_decant_v1_GetStatusRequest__Output, _decant_v1_GetStatusResponse>;
  
  PauseBackfill: grpc.handleUnaryCall<_decant_v1_PauseBackfillRequest__Output, _decant_v1_GetStatusResponse>;
  
  Reset: grpc.handleUnaryCall<_decant_v1_ResetRequest__Output, _decant_v1_GetStatusResponse>;
  
  ResumeBackfill: grpc.handleUnaryCall<_decant_v1_ResumeBackfillRequest__Output, _decant_v1_GetStatusResponse>;
  
  SetPhase: grpc.handleUnaryCall<_decant_v1_SetPhaseRequest__Output, _decant_v1_GetStatusResponse>;
  
  StartBackfill: grpc.handleUnaryCall<_decant_v1_StartBackfillRequest__Output, _decant_v1_GetStatusResponse>;
  
  Verify: grpc.handleServerStreamingCall<_decant_v1_VerifyRequest__Output, _decant_v1_VerifyReport>;
  
}

export interface MigrationDefinition extends grpc.ServiceDefinition {
  GetStatus: MethodDefinition<_decant_v1_GetStatusRequest, _decant_v1_GetStatusResponse, _decant_v1_GetStatusRequest__Output, _decant_v1_GetStatusResponse__Output>
  PauseBackfill: MethodDefinition<_decant_v1_PauseBackfillRequest, _decant_v1_GetStatusResponse, _decant_v1_PauseBackfillRequest__Output, _decant_v1_GetStatusResponse__Output>
  Reset: MethodDefinition<_decant_v1_ResetRequest, _decant_v1_GetStatusResponse, _decant_v1_ResetRequest__Output, _decant_v1_GetStatusResponse__Output>
  ResumeBackfill: MethodDefinition<_decant_v1_ResumeBackfillRequest, _decant_v1_GetStatusResponse, _decant_v1_ResumeBackfillRequest__Output, _decant_v1_GetStatusResponse__Output>
  SetPhase: MethodDefinition<_decant_v1_SetPhaseRequest, _decant_v1_GetStatusResponse, _decant_v1_SetPhaseRequest__Output, _decant_v1_GetStatusResponse__Output>
  StartBackfill: MethodDefinition<_decant_v1_StartBackfillRequest, _decant_v1_GetStatusResponse, _decant_v1_StartBackfillRequest__Output, _decant_v1_GetStatusResponse__Output>
  Verify: MethodDefinition<_decant_v1_VerifyRequest, _decant_v1_VerifyReport, _decant_v1_VerifyRequest__Output, _decant_v1_VerifyReport__Output>
}
