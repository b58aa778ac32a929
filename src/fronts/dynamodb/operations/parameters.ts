// Every top-level parameter of every operation the front serves, as DynamoDB's API (2012-08-10)
// names them. A parameter is served, accepted as a no-op (said in the README), or refused by its
// operation with a ValidationException naming it; one this table does not know (a newer API's)
// is refused here by name, so nothing a client asks for is silently ignored.
import { validation } from "../types.js";
import { optionalEnum, type Input } from "./common.js";

const CONSUMED = ["ReturnConsumedCapacity"];
const EXPRESSIONS = ["ExpressionAttributeNames", "ExpressionAttributeValues"];
const WRITE = ["TableName", "Expected", "ConditionalOperator", "ConditionExpression", "ReturnValues", "ReturnItemCollectionMetrics", "ReturnValuesOnConditionCheckFailure", ...CONSUMED, ...EXPRESSIONS];
const READS = ["TableName", "IndexName", "Select", "AttributesToGet", "Limit", "ConsistentRead", "ConditionalOperator", "ExclusiveStartKey", "ProjectionExpression", "FilterExpression", ...CONSUMED, ...EXPRESSIONS];
const TABLE = ["TableName", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput", "StreamSpecification", "SSESpecification", "TableClass", "DeletionProtectionEnabled", "OnDemandThroughput", "WarmThroughput"];

export const PARAMETERS: Record<string, ReadonlySet<string>> = Object.fromEntries(
  Object.entries({
    CreateTable: [...TABLE, "KeySchema", "LocalSecondaryIndexes", "GlobalSecondaryIndexes", "Tags", "ResourcePolicy"],
    UpdateTable: [...TABLE, "GlobalSecondaryIndexUpdates", "ReplicaUpdates", "MultiRegionConsistency", "GlobalTableWitnessUpdates"],
    DescribeTable: ["TableName"],
    DeleteTable: ["TableName"],
    ListTables: ["ExclusiveStartTableName", "Limit"],
    DescribeTimeToLive: ["TableName"],
    DescribeLimits: [],
    GetItem: ["TableName", "Key", "AttributesToGet", "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames", ...CONSUMED],
    PutItem: [...WRITE, "Item"],
    DeleteItem: [...WRITE, "Key"],
    UpdateItem: [...WRITE, "Key", "AttributeUpdates", "UpdateExpression"],
    Query: [...READS, "KeyConditions", "QueryFilter", "ScanIndexForward", "KeyConditionExpression"],
    Scan: [...READS, "ScanFilter", "Segment", "TotalSegments"],
    BatchGetItem: ["RequestItems", ...CONSUMED],
    BatchWriteItem: ["RequestItems", "ReturnItemCollectionMetrics", ...CONSUMED],
  }).map(([op, names]) => [op, new Set(names)]),
);

/**
 * Refuses a parameter the operation does not have (in this front's knowledge of the API), and
 * checks the accepted no-op ones: ReturnConsumedCapacity (no ConsumedCapacity is returned) and
 * ReturnItemCollectionMetrics (there are no local secondary indexes, so there are no metrics).
 */
export function checkParameters(op: string, input: Input): void {
  const known = PARAMETERS[op];
  if (!known) return; // refused operations say so themselves
  for (const name in input) {
    if (!known.has(name) && input[name] !== null) throw validation(`${name} is not a parameter of ${op} that Decant's DynamoDB front supports`);
  }
  if (input.ReturnConsumedCapacity !== undefined) optionalEnum(input, "ReturnConsumedCapacity", ["INDEXES", "TOTAL", "NONE"] as const);
  if (input.ReturnItemCollectionMetrics !== undefined) optionalEnum(input, "ReturnItemCollectionMetrics", ["SIZE", "NONE"] as const);
}
