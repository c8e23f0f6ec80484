"""The `ObjectLedger` on DynamoDB, with a TTL so that it forgets objects after two weeks.

Key schema: pk = "O#<bucket>/<key>", sk = "E#<etag>". It can live in the baseline's table (the
prefixes do not collide) or in a table of its own. `expires_at` (the table's TTL attribute, a
Number of epoch seconds) is the object's newest eventTime plus `ttl_days`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ledger import ProcessedObject
from ..model import DAY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DEFAULT_TTL_DAYS = 14.0


def ledger_keys(bucket: str, key: str, etag: str) -> dict[str, Any]:
    return {"pk": {"S": f"O#{bucket}/{key}"}, "sk": {"S": f"E#{etag}"}}


class DynamoDbLedger:
    def __init__(
        self, client: DynamoDBClient, table: str, ttl_days: float = DEFAULT_TTL_DAYS
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_s = int(ttl_days * DAY)
        self.requests = 0

    def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
        self.requests += 1
        # Consistent: a redelivery can follow the first delivery by seconds.
        item: Any = self.client.get_item(
            TableName=self.table, Key=ledger_keys(bucket, key, etag), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return ProcessedObject(
            bucket=bucket,
            key=key,
            etag=etag,
            records=int(item["records"]["N"]),
            alerts=int(item["alerts"]["N"]),
            processed_at=int(item["processed_at"]["N"]),
            outcome=item.get("outcome", {}).get("S", "processed"),
        )

    def record(self, entry: ProcessedObject) -> None:
        self.requests += 1
        self.client.put_item(
            TableName=self.table,
            Item={
                **ledger_keys(entry.bucket, entry.key, entry.etag),
                "bucket": {"S": entry.bucket},
                "key": {"S": entry.key},
                "etag": {"S": entry.etag},
                "records": {"N": str(entry.records)},
                "alerts": {"N": str(entry.alerts)},
                "processed_at": {"N": str(entry.processed_at)},
                "outcome": {"S": entry.outcome},
                "expires_at": {"N": str(entry.processed_at + self.ttl_s)},
            },
        )
