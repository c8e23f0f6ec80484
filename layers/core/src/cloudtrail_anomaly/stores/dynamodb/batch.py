"""BatchGetItem and BatchWriteItem within DynamoDB's limits, with the unprocessed rest retried.

A batch call can succeed and still leave keys or items unprocessed (throttling): they are sent
again with backoff, up to `max_attempts` calls per chunk. What is still unprocessed after that is
returned, never dropped silently; each caller decides what it means (the baseline fails, the
ledger asks again one by one or counts an unwritten entry).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

# DynamoDB's limits per BatchGetItem and BatchWriteItem.
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25

__all__ = ["BATCH_GET_LIMIT", "BATCH_WRITE_LIMIT", "BatchResult", "batch_get", "batch_put"]


def backoff_seconds(attempt: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Exponential backoff with full jitter (attempt 1, 2, ...)."""
    return random.uniform(0, min(cap, base * 2**attempt))


@dataclass(slots=True)
class BatchResult:
    items: list[Item] = field(default_factory=list)  # the items read (BatchGetItem)
    unprocessed: list[Item] = field(default_factory=list)  # keys / put items left over
    calls: int = 0


def batch_get(
    client: DynamoDBClient,
    table: str,
    keys: Sequence[Item],
    *,
    projection: str | None = None,
    consistent: bool = False,
    max_attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    on_call: Callable[[], None] = lambda: None,
) -> BatchResult:
    result = BatchResult()
    request: dict[str, Any] = {"ConsistentRead": consistent}
    if projection:
        request["ProjectionExpression"] = projection
    for i in range(0, len(keys), BATCH_GET_LIMIT):
        pending = list(keys[i : i + BATCH_GET_LIMIT])
        for attempt in range(1, max_attempts + 1):
            on_call()
            result.calls += 1
            wanted: Any = {**request, "Keys": pending}
            resp: Any = client.batch_get_item(RequestItems={table: wanted})
            result.items.extend(resp.get("Responses", {}).get(table, []))
            pending = list((resp.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
            if not pending:
                break
            if attempt < max_attempts:
                sleep(backoff_seconds(attempt))
        result.unprocessed.extend(pending)
    return result


def batch_put(
    client: DynamoDBClient,
    table: str,
    items: Sequence[Item],
    *,
    max_attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    on_call: Callable[[], None] = lambda: None,
) -> BatchResult:
    """Put `items` (no two with the same key in one call: DynamoDB refuses such a batch)."""
    result = BatchResult()
    for i in range(0, len(items), BATCH_WRITE_LIMIT):
        pending: list[Any] = [
            {"PutRequest": {"Item": it}} for it in items[i : i + BATCH_WRITE_LIMIT]
        ]
        for attempt in range(1, max_attempts + 1):
            on_call()
            result.calls += 1
            resp: Any = client.batch_write_item(RequestItems={table: pending})
            pending = list((resp.get("UnprocessedItems") or {}).get(table, []))
            if not pending:
                break
            if attempt < max_attempts:
                sleep(backoff_seconds(attempt))
        result.unprocessed.extend(p["PutRequest"]["Item"] for p in pending)
    return result
