"""The DynamoDB ledger on moto: one object at a time and in batches, with DynamoDB's limits,
unprocessed keys and items, and failures that leave objects unrecorded, never lost."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from cloudtrail_anomaly.ports import ProcessedObject
from cloudtrail_anomaly.stores.dynamodb.ledger import DynamoDbLedger

from tests.dynamo_tables import LEDGER_TABLE

TABLE = LEDGER_TABLE
T0 = 1_717_200_000


def entry(n: int, etag: str = "") -> ProcessedObject:
    return ProcessedObject("b", f"AWSLogs/k{n:04d}.json.gz", etag or f"e{n}", n, n % 2, T0 + n)


class Wrapped:
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_batch_write_then_batch_read_round_trips_within_dynamodb_limits(dynamodb: Any) -> None:
    ledger = DynamoDbLedger(dynamodb, TABLE, ttl_days=14)
    assert ledger.record_many([entry(n) for n in range(60)]) == 0
    assert ledger.requests == 3  # 25 + 25 + 10
    ids = [entry(n).id for n in range(150)]  # 60 recorded, 90 never seen
    answered = ledger.get_many(ids)
    assert ledger.requests == 3 + 2  # 100 + 50 keys
    assert set(answered) == set(ids)
    assert [answered[entry(n).id] for n in range(60)] == [entry(n) for n in range(60)]
    assert all(answered[i] is None for i in ids[60:])
    assert ledger.get(*entry(7).id) == entry(7)  # the one-object path reads the same items
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": "O#b/AWSLogs/k0007.json.gz"}, "sk": {"S": "E#e7"}}
    )["Item"]
    assert item["expires_at"] == {"N": str(T0 + 7 + 14 * 86_400)}


def test_the_same_object_twice_in_a_batch_is_written_once_with_the_later_entry(
    dynamodb: Any,
) -> None:
    ledger = DynamoDbLedger(dynamodb, TABLE)
    later = ProcessedObject("b", entry(1).key, "e1", 9, 9, T0 + 9)
    assert ledger.record_many([entry(1), later]) == 0  # DynamoDB refuses twins in one batch
    assert ledger.get(*entry(1).id) == later


def test_unprocessed_keys_and_items_are_retried(dynamodb: Any) -> None:
    class Throttled(Wrapped):
        def batch_get_item(self, RequestItems: Any) -> Any:
            self.calls.append("get")
            keys = RequestItems[TABLE]["Keys"]
            assert RequestItems[TABLE]["ConsistentRead"] is True
            resp = self._inner.batch_get_item(RequestItems={TABLE: {"Keys": keys[:1]}})
            if keys[1:]:
                resp["UnprocessedKeys"] = {TABLE: {"Keys": keys[1:]}}
            return resp

        def batch_write_item(self, RequestItems: Any) -> Any:
            self.calls.append("write")
            puts = RequestItems[TABLE]
            self._inner.batch_write_item(RequestItems={TABLE: puts[:2]})
            return {"UnprocessedItems": {TABLE: puts[2:]} if puts[2:] else {}}

    sleeps: list[float] = []
    ledger = DynamoDbLedger(Throttled(dynamodb), TABLE, sleep=sleeps.append)
    assert ledger.record_many([entry(n) for n in range(5)]) == 0
    answered = ledger.get_many([entry(n).id for n in range(4)])
    assert [answered[entry(n).id] for n in range(4)] == [entry(n) for n in range(4)]
    assert ledger.client.calls == ["write"] * 3 + ["get"] * 4
    assert len(sleeps) == 2 + 3


def test_what_stays_unprocessed_is_left_unanswered_or_counted_unwritten(dynamodb: Any) -> None:
    class AlwaysThrottled(Wrapped):
        def batch_get_item(self, RequestItems: Any) -> Any:
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}

        def batch_write_item(self, RequestItems: Any) -> Any:
            return {"UnprocessedItems": RequestItems}

    ledger = DynamoDbLedger(
        AlwaysThrottled(dynamodb), TABLE, max_batch_attempts=3, sleep=lambda s: 0
    )
    assert ledger.get_many([entry(1).id, entry(2).id]) == {}  # not "absent": not answered
    assert ledger.record_many([entry(n) for n in range(30)]) == 30
    assert ledger.requests == 3 + 3 * 2


def test_a_failing_chunk_costs_only_its_own_entries(dynamodb: Any) -> None:
    class FailsSecondChunk(Wrapped):
        def batch_write_item(self, RequestItems: Any) -> Any:
            self.calls.append("write")
            if len(self.calls) == 2:
                raise ClientError({"Error": {"Code": "InternalServerError"}}, "BatchWriteItem")
            return self._inner.batch_write_item(RequestItems=RequestItems)

        def batch_get_item(self, RequestItems: Any) -> Any:
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "BatchGetItem")

    ledger = DynamoDbLedger(FailsSecondChunk(dynamodb), TABLE)
    assert ledger.record_many([entry(n) for n in range(60)]) == 25
    assert (ledger.get(*entry(24).id), ledger.get(*entry(25).id)) == (entry(24), None)
    assert ledger.get(*entry(50).id) == entry(50)
    assert ledger.get_many([entry(1).id]) == {}
    assert ledger.errors == 2
