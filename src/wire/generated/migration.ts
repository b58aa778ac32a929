import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { BackfillStatus as _decant_v1_BackfillStatus, BackfillStatus__Output as _decant_v1_BackfillStatus__Output } from './decant/v1/BackfillStatus.js';
import type { BackfillWorker as _decant_v1_BackfillWorker, BackfillWorker__Output as _decant_v1_BackfillWorker__Output } from './decant/v1/BackfillWorker.js';
import type { GetStatusRequest as _decant_v1_GetStatusRequest, GetStatusRequest__Output as _decant_v1_GetStatusRequest__Output } from './decant/v1/GetStatusRequest.js';
import type { GetStatusResponse as _decant_v1_GetStatusResponse, GetStatusResponse__Output as _decant_v1_GetStatusResponse__Output } from './decant/v1/GetStatusResponse.js';
import type { MigrationClient as _decant_v1_MigrationClient, MigrationDefinition as _decant_v1_MigrationDefinition } from './decant/v1/Migration.js';
import type { PauseBackfillRequest as _decant_v1_PauseBackfillRequest, PauseBackfillRequest__Output as _decant_v1_PauseBackfillRequest__Output } from './decant/v1/PauseBackfillRequest.js';
import type { Replica as _decant_v1_Replica, Replica__Output as _decant_v1_Replica__Output } from './decant/v1/Replica.js';
import type { ResetRequest as _decant_v1_ResetRequest, ResetRequest__Output as _decant_v1_ResetRequest__Output } from './decant/v1/ResetRequest.js';
import type { ResumeBackfillRequest as _decant_v1_ResumeBackfillRequest, ResumeBackfillRequest__Output as _decant_v1_ResumeBackfillRequest__Output } from './decant/v1/ResumeBackfillRequest.js';
import type { SetPhaseRequest as _decant_v1_SetPhaseRequest, SetPhaseRequest__Output as _decant_v1_SetPhaseRequest__Output } from './decant/v1/SetPhaseRequest.js';
import type { StartBackfillRequest as _decant_v1_StartBackfillRequest, StartBackfillRequest__Output as _decant_v1_StartBackfillRequest__Output } from './decant/v1/StartBackfillRequest.js';
import type { VerifyReport as _decant_v1_VerifyReport, VerifyReport__Output as _decant_v1_VerifyReport__Output } from './decant/v1/VerifyReport.js';
import type { VerifyRequest as _decant_v1_VerifyRequest, VerifyRequest__Output as _decant_v1_VerifyRequest__Output } from './decant/v1/VerifyRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  decant: {
    v1: {
      BackfillStatus: MessageTypeDefinition<_decant_v1_BackfillStatus, _decant_v1_BackfillStatus__Output>
      BackfillWorker: MessageTypeDefinition<_decant_v1_BackfillWorker, _decant_v1_BackfillWorker__Output>
      GetStatusRequest: MessageTypeDefinition<_decant_v1_GetStatusRequest, _decant_v1_GetStatusRequest__Output>
      GetStatusResponse: MessageTypeDefinition<_decant_v1_GetStatusResponse, _decant_v1_GetStatusResponse__Output>
      Migration: SubtypeConstructor<typeof grpc.Client, _decant_v1_MigrationClient> & { service: _decant_v1_MigrationDefinition }
      PauseBackfillRequest: MessageTypeDefinition<_decant_v1_PauseBackfillRequest, _decant_v1_PauseBackfillRequest__Output>
      Phase: EnumTypeDefinition
      Replica: MessageTypeDefinition<_decant_v1_Replica, _decant_v1_Replica__Output>
      ResetRequest: MessageTypeDefinition<_decant_v1_ResetRequest, _decant_v1_ResetRequest__Output>
      ResumeBackfillRequest: MessageTypeDefinition<_decant_v1_ResumeBackfillRequest, _decant_v1_ResumeBackfillRequest__Output>
      SetPhaseRequest: MessageTypeDefinition<_decant_v1_SetPhaseRequest, _decant_v1_SetPhaseRequest__Output>
      StartBackfillRequest: MessageTypeDefinition<_decant_v1_StartBackfillRequest, _decant_v1_StartBackfillRequest__Output>
      VerifyReport: MessageTypeDefinition<_decant_v1_VerifyReport, _decant_v1_VerifyReport__Output>
      VerifyRequest: MessageTypeDefinition<_decant_v1_VerifyRequest, _decant_v1_VerifyRequest__Output>
    }
  }
}

