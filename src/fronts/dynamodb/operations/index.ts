// The operations the front serves, by X-Amz-Target name, and the ones it refuses by name.
import { validation } from "../types.js";
import { batchGetItem, batchWriteItem } from "./batch.js";
import type { Operation } from "./common.js";
import { deleteItem, getItem, putItem, updateItem } from "./items.js";
import { query, scan } from "./reads.js";
import { createTable, deleteTable, describeLimits, describeTable, describeTimeToLive, listTables, updateTable } from "./tables.js";

export type { OpContext } from "./common.js";

/** DynamoDB operations that are later work: refused with a ValidationException that says so. */
export const REFUSED: Record<string, string> = {
  TransactWriteItems: "transactions",
  TransactGetItems: "transactions",
  ExecuteStatement: "PartiQL",
  BatchExecuteStatement: "PartiQL",
  ExecuteTransaction: "PartiQL",
  UpdateTimeToLive: "TTL",
  CreateGlobalTable: "global tables",
  UpdateGlobalTable: "global tables",
  DescribeGlobalTable: "global tables",
  ListGlobalTables: "global tables",
  UpdateContinuousBackups: "backups",
  DescribeContinuousBackups: "backups",
  CreateBackup: "backups",
  ListBackups: "backups",
  RestoreTableFromBackup: "backups",
  RestoreTableToPointInTime: "backups",
  ExportTableToPointInTime: "exports",
  ImportTable: "imports",
  EnableKinesisStreamingDestination: "streams",
  DisableKinesisStreamingDestination: "streams",
  DescribeKinesisStreamingDestination: "streams",
  TagResource: "tags",
  UntagResource: "tags",
  ListTagsOfResource: "tags",
  DescribeContributorInsights: "contributor insights",
  UpdateContributorInsights: "contributor insights",
};

const refused = (op: string, what: string): Operation => async () => {
  throw validation(`${op} is not supported by Decant's DynamoDB front (${what} are not implemented yet); see the README's "DynamoDB API" section`);
};

export const OPERATIONS: Record<string, Operation> = {
  CreateTable: createTable,
  DescribeTable: describeTable,
  ListTables: listTables,
  DeleteTable: deleteTable,
  UpdateTable: updateTable,
  DescribeTimeToLive: describeTimeToLive,
  DescribeLimits: describeLimits,
  GetItem: getItem,
  PutItem: putItem,
  UpdateItem: updateItem,
  DeleteItem: deleteItem,
  Query: query,
  Scan: scan,
  BatchGetItem: batchGetItem,
  BatchWriteItem: batchWriteItem,
  ...Object.fromEntries(Object.entries(REFUSED).map(([op, what]) => [op, refused(op, what)])),
};
