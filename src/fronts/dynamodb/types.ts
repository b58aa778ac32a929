// Shared shapes of the DynamoDB front: the JSON wire's AttributeValue, its error, and expression context.

export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string /* base64, as on the JSON wire */ }
  | { BOOL: boolean }
  | { NULL: true }
  | { M: Record<string, AttributeValue> }
  | { L: AttributeValue[] }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] };

export type DItem = Record<string, AttributeValue>;

/** A DynamoDB error as the wire shows it: {"__type":"com.amazonaws.dynamodb.v20120810#<type>","message":...} */
export class DynamoError extends Error {
  constructor(
    readonly type: string /* "ValidationException", "ConditionalCheckFailedException", ... */,
    message: string,
    readonly status = 400,
    readonly extra?: Record<string, unknown> /* e.g. { Item } */,
  ) {
    super(message);
  }
}

export const validation = (message: string) => new DynamoError("ValidationException", message);

export interface ExprContext {
  names?: Record<string, string>;
  values?: Record<string, AttributeValue>;
}

export interface KeySchema {
  hash: { name: string; type: "S" | "N" | "B" };
  range?: { name: string; type: "S" | "N" | "B" };
}

/**
 * An operation's answer that is JSON already (a stored item spliced into its envelope): sent as
 * it is. A string, not bytes: Node writes a string body together with the headers in one write,
 * a Buffer body in a second chunk (a writev and more stream work per response).
 */
export class RawJson {
  /** Its UTF-8 length and CRC32, worked out on its first answer (the constant answers' only one). */
  bytes?: number;
  crc32?: number;
  constructor(readonly text: string) {}
}
