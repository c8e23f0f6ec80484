"""Conditional writes on DynamoDB: one `TransactWriteItems` sent again until it commits, with
each cancellation reason handed back to its caller, and what a failed condition answers.

The engine sends nothing but the transaction: each try's items are built again from the
caller's in-memory state (`items(pending)`), so a try that did not commit left nothing behind.
What the callbacks do is the caller's: a claim's only take in what the cancellation reasons
returned (no request inside its retries), a refresh's settles its failed tuple alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ...domain.model import TupleClaim
from .batch import backoff_seconds

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

TRANSACT_LIMIT = 100  # DynamoDB's maximum items per TransactWriteItems
CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(exc: ClientError) -> str:
    # By code, not `client.exceptions.X`: works through any client wrapper.
    return str(exc.response.get("Error", {}).get("Code", ""))


def old_item(exc: ClientError) -> Item | None:
    """The stored item a failed condition returned (`ReturnValuesOnConditionCheckFailure`)."""
    item: Any = exc.response.get("Item")
    return item if isinstance(item, dict) and item else None


def transact(
    client: DynamoDBClient,
    pending: list[TupleClaim],
    items: Callable[[list[TupleClaim]], list[Any]],
    condition_failed: Callable[[TupleClaim, Any], None],
    other_failed: Callable[[Any], None] | None = None,
    *,
    max_attempts: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    on_call: Callable[[], None] = lambda: None,
) -> tuple[list[TupleClaim], Exception | None]:
    """One conditional `TransactWriteItems` of `items(pending)`, until it commits. A claim
    whose condition failed goes to `condition_failed` with its cancellation reason (which
    holds the stored item) and the others go again; a failed condition on an item after the
    claims goes to `other_failed`, and everything goes again; a conflict with another
    transaction, or throttling, goes again after a pause. Returns what was committed
    (nothing, when every condition failed) and None, or what was left and the error that
    ended it."""
    failure: Exception = TimeoutError("transaction kept conflicting")
    for attempt in range(1, max_attempts + 1):
        try:
            on_call()
            client.transact_write_items(
                TransactItems=items(pending),
                # botocore's retry of a transaction that committed but timed out must not
                # come back "condition failed"; unique per call, so rivals never share one.
                ClientRequestToken=uuid.uuid4().hex,
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                return pending, exc
            reasons: list[Any] = list(exc.response.get("CancellationReasons") or [])
            failed = [
                (c, r)
                for c, r in zip(pending, reasons, strict=False)
                if r.get("Code") == "ConditionalCheckFailed"
            ]
            others = [
                r for r in reasons[len(pending) :] if r.get("Code") == "ConditionalCheckFailed"
            ]
            for r in others:
                if other_failed is not None:
                    other_failed(r)
            if not failed:
                if not others:  # a conflicting transaction or throttling: after a pause
                    sleep(backoff_seconds(attempt))
                continue
            for c, r in failed:
                condition_failed(c, r)
            done = {c.key for c, _ in failed}
            pending = [c for c in pending if c.key not in done]
            if not pending:
                return [], None
            continue
        except BotoCoreError as exc:
            return pending, exc
        return pending, None
    return pending, failure
