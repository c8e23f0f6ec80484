"""The DynamoDB tables the stores run on, for tests, the benchmarks and local runs on moto.

A deployment declares its table in its template (infra/resources.yml, checked by
test_deploy_template.py); this is the same table made with the API: the baseline's key schema,
on-demand, with TTL on `expires_at`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudtrail_anomaly.stores.dynamodb.keys import TTL_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# The tables conftest's `dynamodb` fixture creates.
BASELINE_TABLE = "baseline"  # the baseline and the outbox
LEDGER_TABLE = "ledger"


def create_table(client: DynamoDBClient, table: str) -> None:
    """Create a table with the baseline's key schema, on-demand, with TTL on `expires_at` (the
    ledger's table has the same schema)."""
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table)
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
