"""boto3 (Python's AWS SDK) through Decant's DynamoDB front: the operations the JS tests use.

Run by boto3.test.ts with DECANT_DDB_ENDPOINT and DECANT_DDB_PREFIX set; exits non-zero (an
assertion's traceback) on the first difference and prints "boto3 walk ok" at the end.
"""
import os
from decimal import Decimal

import time
import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

endpoint = os.environ["DECANT_DDB_ENDPOINT"]
prefix = os.environ["DECANT_DDB_PREFIX"]
session = boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret", region_name="us-east-1")
client = session.client("dynamodb", endpoint_url=endpoint)
ddb = session.resource("dynamodb", endpoint_url=endpoint)


def error_code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response
    raise AssertionError("expected a ClientError")


name = f"{prefix}_orders"
table = ddb.create_table(
    TableName=name,
    KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"}, {"AttributeName": "order", "AttributeType": "N"}],
    BillingMode="PAY_PER_REQUEST",
)
table.wait_until_exists()
assert name in client.list_tables()["TableNames"]
assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"
code, _ = error_code(client.create_table, TableName=name, KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}], AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
assert code == "ResourceInUseException", code

# Put / Get with every type the resource layer maps.
table.put_item(Item={"customer": "ada", "order": 1, "total": Decimal("12.50"), "items": ["tea", "milk"], "tags": {"new"}, "meta": {"gift": True, "note": None}, "raw": b"\x00\xff"})
item = table.get_item(Key={"customer": "ada", "order": 1})["Item"]
assert item["total"] == Decimal("12.5") and item["items"] == ["tea", "milk"] and item["tags"] == {"new"}, item
assert item["meta"] == {"gift": True, "note": None} and bytes(item["raw"]) == b"\x00\xff", item

# Conditions.
code, resp = error_code(table.put_item, Item={"customer": "ada", "order": 1}, ConditionExpression="attribute_not_exists(customer)", ReturnValuesOnConditionCheckFailure="ALL_OLD")
assert code == "ConditionalCheckFailedException", code
assert resp["Item"]["total"] == {"N": "12.5"}, resp
table.put_item(Item={"customer": "ada", "order": 1, "total": Decimal("13")}, ConditionExpression=Attr("total").between(Decimal(10), Decimal(20)))

# UpdateItem: ADD, SET nested, if_not_exists, list_append, REMOVE, ReturnValues.
r = table.update_item(
    Key={"customer": "ada", "order": 1},
    # "lines" is a reserved word: it needs a name placeholder, as on DynamoDB.
    UpdateExpression="ADD visits :one SET meta = if_not_exists(meta, :m), #l = list_append(if_not_exists(#l, :empty), :l)",
    ExpressionAttributeNames={"#l": "lines"},
    ExpressionAttributeValues={":one": 1, ":m": {"a": {"b": [0, 1]}}, ":empty": [], ":l": ["x"]},
    ReturnValues="ALL_NEW",
)
assert r["Attributes"]["visits"] == 1 and r["Attributes"]["lines"] == ["x"], r
r = table.update_item(Key={"customer": "ada", "order": 1}, UpdateExpression="SET meta.a.b[1] = :v REMOVE #l", ExpressionAttributeNames={"#l": "lines"}, ExpressionAttributeValues={":v": 7}, ReturnValues="UPDATED_NEW")
assert r["Attributes"] == {"meta": {"a": {"b": [7]}}}, r  # projected on the path, as DynamoDB does

# Batch write, Query with paging, Scan with a filter.
with table.batch_writer() as batch:
    for n in range(2, 22):
        batch.put_item(Item={"customer": "bob", "order": n, "even": n % 2 == 0})
seen, start = [], None
while True:
    kwargs = {"KeyConditionExpression": Key("customer").eq("bob") & Key("order").gte(5), "Limit": 3, "ScanIndexForward": False}
    if start:
        kwargs["ExclusiveStartKey"] = start
    page = table.query(**kwargs)
    seen += [int(i["order"]) for i in page["Items"]]
    start = page.get("LastEvaluatedKey")
    if not start:
        break
assert seen == list(range(21, 4, -1)), seen
count = table.scan(FilterExpression=Attr("even").eq(True), Select="COUNT")
assert count["Count"] == 10 and count["ScannedCount"] == 21, count
got = client.batch_get_item(RequestItems={name: {"Keys": [{"customer": {"S": "bob"}, "order": {"N": str(n)}} for n in range(0, 30)]}})
assert len(got["Responses"][name]) == 20 and got["UnprocessedKeys"] == {}, got

# Delete with a condition and ALL_OLD; errors SDKs branch on.
old = table.delete_item(Key={"customer": "bob", "order": 2}, ConditionExpression=Attr("even").eq(True), ReturnValues="ALL_OLD")
assert old["Attributes"]["order"] == 2, old
code, _ = error_code(table.get_item, Key={"customer": 1, "order": 1})
assert code == "ValidationException", code
code, _ = error_code(client.describe_table, TableName=f"{prefix}_missing")
assert code == "ResourceNotFoundException", code
code, resp = error_code(client.transact_write_items, TransactItems=[{"Put": {"TableName": name, "Item": {"customer": {"S": "x"}, "order": {"N": "1"}}}}])
assert code == "ValidationException" and "not supported" in resp["Error"]["Message"], resp

table.delete()
# DELETING until every sidecar's cached description has expired, then gone.
assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "DELETING"
deadline = time.time() + 30
while True:
    try:
        client.describe_table(TableName=name)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException", e.response
        break
    assert time.time() < deadline, "the table was not deleted"
    time.sleep(0.1)
print("boto3 walk ok")
