import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { BatchGetRequest as _decant_v1_BatchGetRequest, BatchGetRequest__Output as _decant_v1_BatchGetRequest__Output } from './decant/v1/BatchGetRequest.js';
import type { BatchGetResponse as _decant_v1_BatchGetResponse, BatchGetResponse__Output as _decant_v1_BatchGetResponse__Output } from './decant/v1/BatchGetResponse.js';
import type { BatchWriteRequest as _decant_v1_BatchWriteRequest, BatchWriteRequest__Output as _decant_v1_BatchWriteRequest__Output } from './decant/v1/BatchWriteRequest.js';
import type { BatchWriteResponse as _decant_v1_BatchWriteResponse, BatchWriteResponse__Output as _decant_v1_BatchWriteResponse__Output } from './decant/v1/BatchWriteResponse.js';
import type { Condition as _decant_v1_Condition, Condition__Output as _decant_v1_Condition__Output } from './decant/v1/Condition.js';
import type { DeleteOperation as _decant_v1_DeleteOperation, DeleteOperation__Output as _decant_v1_DeleteOperation__Output } from './decant/v1/DeleteOperation.js';
import type { DeleteRequest as _decant_v1_DeleteRequest, DeleteRequest__Output as _decant_v1_DeleteRequest__Output } from './decant/v1/DeleteRequest.js';
import type { DeleteResponse as _decant_v1_DeleteResponse, DeleteResponse__Output as _decant_v1_DeleteResponse__Output } from './decant/v1/DeleteResponse.js';
import type { GetRequest as _decant_v1_GetRequest, GetRequest__Output as _decant_v1_GetRequest__Output } from './decant/v1/GetRequest.js';
import type { GetResponse as _decant_v1_GetResponse, GetResponse__Output as _decant_v1_GetResponse__Output } from './decant/v1/GetResponse.js';
import type { Item as _decant_v1_Item, Item__Output as _decant_v1_Item__Output } from './decant/v1/Item.js';
import type { PutOperation as _decant_v1_PutOperation, PutOperation__Output as _decant_v1_PutOperation__Output } from './decant/v1/PutOperation.js';
import type { PutRequest as _decant_v1_PutRequest, PutRequest__Output as _decant_v1_PutRequest__Output } from './decant/v1/PutRequest.js';
import type { PutResponse as _decant_v1_PutResponse, PutResponse__Output as _decant_v1_PutResponse__Output } from './decant/v1/PutResponse.js';
import type { ScanRequest as _decant_v1_ScanRequest, ScanRequest__Output as _decant_v1_ScanRequest__Output } from './decant/v1/ScanRequest.js';
import type { ScanResponse as _decant_v1_ScanResponse, ScanResponse__Output as _decant_v1_ScanResponse__Output } from './decant/v1/ScanResponse.js';
import type { StoreClient as _decant_v1_StoreClient, StoreDefinition as _decant_v1_StoreDefinition } from './decant/v1/Store.js';
import type { Write as _decant_v1_Write, Write__Output as _decant_v1_Write__Output } from './decant/v1/Write.js';
import type { WriteResult as _decant_v1_WriteResult, WriteResult__Output as _decant_v1_WriteResult__Output } from './decant/v1/WriteResult.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  decant: {
    v1: {
      BatchGetRequest: MessageTypeDefinition<_decant_v1_BatchGetRequest, _decant_v1_BatchGetRequest__Output>
      BatchGetResponse: MessageTypeDefinition<_decant_v1_BatchGetResponse, _decant_v1_BatchGetResponse__Output>
      BatchWriteRequest: MessageTypeDefinition<_decant_v1_BatchWriteRequest, _decant_v1_BatchWriteRequest__Output>
      BatchWriteResponse: MessageTypeDefinition<_decant_v1_BatchWriteResponse, _decant_v1_BatchWriteResponse__Output>
      Condition: MessageTypeDefinition<_decant_v1_Condition, _decant_v1_Condition__Output>
      DeleteOperation: MessageTypeDefinition<_decant_v1_DeleteOperation, _decant_v1_DeleteOperation__Output>
      DeleteRequest: MessageTypeDefinition<_decant_v1_DeleteRequest, _decant_v1_DeleteRequest__Output>
      DeleteResponse: MessageTypeDefinition<_decant_v1_DeleteResponse, _decant_v1_DeleteResponse__Output>
      GetRequest: MessageTypeDefinition<_decant_v1_GetRequest, _decant_v1_GetRequest__Output>
      GetResponse: MessageTypeDefinition<_decant_v1_GetResponse, _decant_v1_GetResponse__Output>
      Item: MessageTypeDefinition<_decant_v1_Item, _decant_v1_Item__Output>
      PutOperation: MessageTypeDefinition<_decant_v1_PutOperation, _decant_v1_PutOperation__Output>
      PutRequest: MessageTypeDefinition<_decant_v1_PutRequest, _decant_v1_PutRequest__Output>
      PutResponse: MessageTypeDefinition<_decant_v1_PutResponse, _decant_v1_PutResponse__Output>
      ScanRequest: MessageTypeDefinition<_decant_v1_ScanRequest, _decant_v1_ScanRequest__Output>
      ScanResponse: MessageTypeDefinition<_decant_v1_ScanResponse, _decant_v1_ScanResponse__Output>
      Store: SubtypeConstructor<typeof grpc.Client, _decant_v1_StoreClient> & { service: _decant_v1_StoreDefinition }
      Write: MessageTypeDefinition<_decant_v1_Write, _decant_v1_Write__Output>
      WriteResult: MessageTypeDefinition<_decant_v1_WriteResult, _decant_v1_WriteResult__Output>
    }
  }
}

