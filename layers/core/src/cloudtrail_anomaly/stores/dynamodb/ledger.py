"""The `ObjectLedger` on DynamoDB, with a TTL so that it forgets objects after two weeks.

Key schema: pk = "O#<bucket>/<key>", sk = "E#<etag>". It can live in the baseline's table (the
prefixes do not collide) or in a table of its own. `expires_at` (the table's TTL attribute, a
Number of epoch seconds) is the object's newest eventTime plus `ttl_days`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ...domain.model import DAY
from ...ports import ObjectId, ProcessedObject
from .batch import BATCH_WRITE_LIMIT, batch_get, batch_put

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DEFAULT_TTL_DAYS = 14.0


def ledger_keys(bucket: str, key: str, etag: str) -> dict[str, Any]:
    return {"pk": {"S": f"O#{bucket}/{key}"}, "sk": {"S": f"E#{etag}"}}


def _entry(bucket: str, key: str, etag: str, item: Any) -> ProcessedObject:
    return ProcessedObject(
        bucket=bucket,
        key=key,
        etag=etag,
        records=int(item["records"]["N"]),
        alerts=int(item["alerts"]["N"]),
        processed_at=int(item["processed_at"]["N"]),
        outcome=item.get("outcome", {}).get("S", "processed"),
    )


class DynamoDbLedger:
    write_batch_size = BATCH_WRITE_LIMIT  # a BatchWriteItem request

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        ttl_days: float = DEFAULT_TTL_DAYS,
        *,
        max_batch_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_s = int(ttl_days * DAY)
        self.max_batch_attempts = max_batch_attempts
        self._sleep = sleep
        self.requests = 0
        self.errors = 0  # batch requests that failed after botocore's retries

    def _call(self) -> None:
        self.requests += 1

    def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
        self.requests += 1
        # Consistent: a redelivery can follow the first delivery by seconds.
        item: Any = self.client.get_item(
            TableName=self.table, Key=ledger_keys(bucket, key, etag), ConsistentRead=True
        ).get("Item")
        return _entry(bucket, key, etag, item) if item else None

    def record(self, entry: ProcessedObject) -> None:
        self.requests += 1
        self.client.put_item(TableName=self.table, Item=self._item(entry))

    def _item(self, entry: ProcessedObject) -> dict[str, Any]:
        return {
            **ledger_keys(entry.bucket, entry.key, entry.etag),
            "bucket": {"S": entry.bucket},
            "key": {"S": entry.key},
            "etag": {"S": entry.etag},
            "records": {"N": str(entry.records)},
            "alerts": {"N": str(entry.alerts)},
            "processed_at": {"N": str(entry.processed_at)},
            "outcome": {"S": entry.outcome},
            "expires_at": {"N": str(entry.processed_at + self.ttl_s)},
        }

    def get_many(self, ids: Iterable[ObjectId]) -> dict[ObjectId, ProcessedObject | None]:
        wanted = {(f"O#{b}/{k}", f"E#{e}"): (b, k, e) for b, k, e in ids}
        if not wanted:
            return {}
        try:
            result = batch_get(
                self.client,
                self.table,
                [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in wanted],
                consistent=True,  # a redelivery can follow the first delivery by seconds
                max_attempts=self.max_batch_attempts,
                sleep=self._sleep,
                on_call=self._call,
            )
        except (BotoCoreError, ClientError):
            self.errors += 1
            return {}  # nothing answered: each object is asked for again on its own
        answered: dict[ObjectId, ProcessedObject | None] = dict.fromkeys(wanted.values())
        for key in result.unprocessed:
            answered.pop(wanted[(key["pk"]["S"], key["sk"]["S"])], None)
        for item in result.items:
            oid = wanted[(item["pk"]["S"], item["sk"]["S"])]
            answered[oid] = _entry(*oid, item)
        return answered

    def record_many(self, entries: Sequence[ProcessedObject]) -> int:
        latest = [*{e.id: e for e in entries}.values()]  # one put per key: batches refuse twins
        unwritten = 0
        for i in range(0, len(latest), BATCH_WRITE_LIMIT):
            chunk = [self._item(e) for e in latest[i : i + BATCH_WRITE_LIMIT]]
            try:
                result = batch_put(
                    self.client,
                    self.table,
                    chunk,
                    max_attempts=self.max_batch_attempts,
                    sleep=self._sleep,
                    on_call=self._call,
                )
            except (BotoCoreError, ClientError):
                self.errors += 1
                unwritten += len(chunk)
                continue
            unwritten += len(result.unprocessed)
        return unwritten
