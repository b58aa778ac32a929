// Original file: proto/decant/v1/store.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BatchGetRequest as _decant_v1_BatchGetRequest, BatchGetRequest__Output as _decant_v1_BatchGetRequest__Output } from '../../decant/v1/BatchGetRequest.js';
import type { BatchGetResponse as _decant_v1_BatchGetResponse, BatchGetResponse__Output as _decant_v1_BatchGetResponse__Output } from '../../decant/v1/BatchGetResponse.js';
import type { BatchWriteRequest as _decant_v1_BatchWriteRequest, BatchWriteRequest__Output as _decant_v1_BatchWriteRequest__Output } from '../../decant/v1/BatchWriteRequest.js';
import type { BatchWriteResponse as _decant_v1_BatchWriteResponse, BatchWriteResponse__Output as _decant_v1_BatchWriteResponse__Output } from '../../decant/v1/BatchWriteResponse.js';
import type { DeleteRequest as _decant_v1_DeleteRequest, DeleteRequest__Output as _decant_v1_DeleteRequest__Output } from '../../decant/v1/DeleteRequest.js';
import type { DeleteResponse as _decant_v1_DeleteResponse, DeleteResponse__Output as _decant_v1_DeleteResponse__Output } from '../../decant/v1/DeleteResponse.js';
import type { GetRequest as _decant_v1_GetRequest, GetRequest__Output as _decant_v1_GetRequest__Output } from '../../decant/v1/GetRequest.js';
import type { GetResponse as _decant_v1_GetResponse, GetResponse__Output as _decant_v1_GetResponse__Output } from '../../decant/v1/GetResponse.js';
import type { PutRequest as _decant_v1_PutRequest, PutRequest__Output as _decant_v1_PutRequest__Output } from '../../decant/v1/PutRequest.js';
import type { PutResponse as _decant_v1_PutResponse, PutResponse__Output as _decant_v1_PutResponse__Output } from '../../decant/v1/PutResponse.js';
import type { ScanRequest as _decant_v1_ScanRequest, ScanRequest__Output as _decant_v1_ScanRequest__Output } from '../../decant/v1/ScanRequest.js';
import type { ScanResponse as _decant_v1_ScanResponse, ScanResponse__Output as _decant_v1_ScanResponse__Output } from '../../decant/v1/ScanResponse.js';

export interface StoreClient extends grpc.Client {
  BatchGet(argument: _decant_v1_BatchGetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _decant_v1_BatchGetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _decant_v1_BatchGetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  BatchGet(argument: _decant_v1_BatchGetRequest, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _decant_v1_BatchGetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _decant_v1_BatchGetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _decant_v1_BatchGetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  batchGet(argument: _decant_v1_BatchGetRequest, callback: grpc.requestCallback<_decant_v1_BatchGetResponse__Output>): grpc.ClientUnaryCall;
  
  BatchWrite(argument: _decant_v1_BatchWriteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  BatchWrite(argument: _decant_v1_BatchWriteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  BatchWrite(argument: _decant_v1_BatchWriteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  BatchWrite(argument: _decant_v1_BatchWriteRequest, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  batchWrite(argument: _decant_v1_BatchWriteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  batchWrite(argument: _decant_v1_BatchWriteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  batchWrite(argument: _decant_v1_BatchWriteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  batchWrite(argument: _decant_v1_BatchWriteRequest, callback: grpc.requestCallback<_decant_v1_BatchWriteResponse__Output>): grpc.ClientUnaryCall;
  
  Delete(argument: _decant_v1_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _decant_v1_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _decant_v1_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _decant_v1_DeleteRequest, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _decant_v1_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _decant_v1_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _decant_v1_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _decant_v1_DeleteRequest, callback: grpc.requestCallback<_decant_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  
  Get(argument: _decant_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _decant_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _decant_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _decant_v1_GetRequest, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _decant_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _decant_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _decant_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _decant_v1_GetRequest, callback: grpc.requestCallback<_decant_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  
  Put(argument: _decant_v1_PutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _decant_v1_PutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _decant_v1_PutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _decant_v1_PutRequest, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _decant_v1_PutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _decant_v1_PutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _decant_v1_PutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _decant_v1_PutRequest, callback: grpc.requestCallback<_decant_v1_PutResponse__Output>): grpc.ClientUnaryCall;
  
  Scan(argument: _decant_v1_ScanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  Scan(argument: _decant_v1_ScanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  Scan(argument: _decant_v1_ScanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  Scan(argument: _decant_v1_ScanRequest, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  scan(argument: _decant_v1_ScanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  scan(argument: _decant_v1_ScanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  scan(argument: _decant_v1_ScanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  scan(argument: _decant_v1_ScanRequest, callback: grpc.requestCallback<_decant_v1_ScanResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface StoreHandlers extends grpc.UntypedServiceImplementation {
  BatchGet: grpc.handleUnaryCall<_decant_v1_BatchGetRequest__Output, _decant_v1_BatchGetResponse>;
  
  BatchWrite: grpc.handleUnaryCall<_decant_v1_BatchWriteRequest__Output, _decant_v1_BatchWriteResponse>;
  
  Delete: grpc.handleUnaryCall<_decant_v1_DeleteRequest__Output, _decant_v1_DeleteResponse>;
  
  Get: grpc.handleUnaryCall<_decant_v1_GetRequest__Output, _decant_v1_GetResponse>;
  
  Put: grpc.handleUnaryCall<_decant_v1_PutRequest__Output, _decant_v1_PutResponse>;
  
  Scan: grpc.handleUnaryCall<_decant_v1_ScanRequest__Output, _decant_v1_ScanResponse>;
  
}

export interface StoreDefinition extends grpc.ServiceDefinition {
  BatchGet: MethodDefinition<_decant_v1_BatchGetRequest, _decant_v1_BatchGetResponse, _decant_v1_BatchGetRequest__Output, _decant_v1_BatchGetResponse__Output>
  BatchWrite: MethodDefinition<_decant_v1_BatchWriteRequest, _decant_v1_BatchWriteResponse, _decant_v1_BatchWriteRequest__Output, _decant_v1_BatchWriteResponse__Output>
  Delete: MethodDefinition<_decant_v1_DeleteRequest, _decant_v1_DeleteResponse, _decant_v1_DeleteRequest__Output, _decant_v1_DeleteResponse__Output>
  Get: MethodDefinition<_decant_v1_GetRequest, _decant_v1_GetResponse, _decant_v1_GetRequest__Output, _decant_v1_GetResponse__Output>
  Put: MethodDefinition<_decant_v1_PutRequest, _decant_v1_PutResponse, _decant_v1_PutRequest__Output, _decant_v1_PutResponse__Output>
  Scan: MethodDefinition<_decant_v1_ScanRequest, _decant_v1_ScanResponse, _decant_v1_ScanRequest__Output, _decant_v1_ScanResponse__Output>
}
