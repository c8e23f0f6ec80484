"""The `Outbox` on the baseline's DynamoDB table.

    pk = "OUTBOX"   sk = "P#<alert_id>"   pending: first_event_time, severity, document, attempts, last_error
    pk = "OUTBOX"   sk = "D#<alert_id>"   delivered marker (expires_at = 30 days after staging, wall clock)
    pk = "OUTBOX"   sk = "X#<alert_id>"   dead-lettered: document and the reason

Pending items are written by `DynamoDbBaseline.claim` in the same `TransactWriteItems` as the
tuples they alert on (`pending_put`). Alert volume is a handful a minute, so one partition is
plenty; `pending` reads it with a paginated Query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ...ports import PendingAlert
from .transact import CONDITION_FAILED, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

OUTBOX_PK = "OUTBOX"
DELIVERED_TTL_S = 30 * 86_400


def pending_put(table: str, alert: PendingAlert) -> Any:
    """The `Put` of a pending alert, for a transaction."""
    return {
        "TableName": table,
        "Item": {
            "pk": {"S": OUTBOX_PK},
            "sk": {"S": f"P#{alert.alert_id}"},
            "alert_id": {"S": alert.alert_id},
            "first_event_time": {"N": str(alert.first_event_time)},
            "severity": {"S": alert.severity},
            "document": {"B": alert.document},
            "attempts": {"N": str(alert.attempts)},
            "last_error": {"S": alert.last_error},
        },
    }


def _pending(item: dict[str, Any]) -> PendingAlert:
    return PendingAlert(
        item["alert_id"]["S"],
        int(item["first_event_time"]["N"]),
        item["severity"]["S"],
        bytes(item["document"]["B"]),
        int(item.get("attempts", {"N": "0"})["N"]),
        item.get("last_error", {"S": ""})["S"],
    )


class DynamoDbOutbox:
    def __init__(
        self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.table = table
        self._clock = clock  # only for the delivered markers' TTL: housekeeping, not detection

    def _key(self, prefix: str, alert_id: str) -> dict[str, Any]:
        return {"pk": {"S": OUTBOX_PK}, "sk": {"S": f"{prefix}#{alert_id}"}}

    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        for alert in alerts:
            put = pending_put(self.table, alert)
            put["ConditionExpression"] = "attribute_not_exists(pk)"
            items: list[Any] = [
                # Never re-open an alert that was delivered or dead-lettered.
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self._key("D", alert.alert_id),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self._key("X", alert.alert_id),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": put},
            ]
            try:
                self.client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                continue  # already pending, delivered or dead: nothing to do

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": OUTBOX_PK}, ":p": {"S": "P#"}},
        }
        while True:
            resp = self.client.query(**kwargs)
            items.extend(resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        alerts = sorted(
            (_pending(i) for i in items), key=lambda a: (a.first_event_time, a.alert_id)
        )
        return alerts[:limit]

    def _move(self, alert_id: str, prefix: str, extra: dict[str, Any]) -> None:
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table, "Key": self._key("P", alert_id)}},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            **self._key(prefix, alert_id),
                            "alert_id": {"S": alert_id},
                            **extra,
                        },
                    }
                },
            ]
        )

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        taken: list[str] = []
        for alert_id in alert_ids:
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=self._key("P", alert_id),
                    UpdateExpression="SET lease_until = :until",
                    ConditionExpression=(
                        "attribute_exists(pk) AND "
                        "(attribute_not_exists(lease_until) OR lease_until <= :now)"
                    ),
                    ExpressionAttributeValues={
                        ":until": {"N": repr(float(until))},
                        ":now": {"N": repr(float(now))},
                    },
                )
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise
                continue  # delivered meanwhile, or another sender holds it
            taken.append(alert_id)
        return taken

    def mark_delivered(self, alert_ids: Sequence[str]) -> None:
        expires = str(int(self._clock()) + DELIVERED_TTL_S)
        for alert_id in alert_ids:
            self._move(alert_id, "D", {"expires_at": {"N": expires}})

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        for alert_id in alert_ids:
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=self._key("P", alert_id),
                    UpdateExpression="SET attempts = attempts + :one, last_error = :e REMOVE lease_until",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":one": {"N": "1"}, ":e": {"S": reason[:500]}},
                )
            except ClientError as exc:
                if error_code(exc) != CONDITION_FAILED:
                    raise
                continue

    def dead_letter(self, alert_id: str, reason: str) -> None:
        resp = self.client.get_item(TableName=self.table, Key=self._key("P", alert_id))
        item = resp.get("Item")
        if item is None:
            return
        self._move(
            alert_id,
            "X",
            {
                "document": item["document"],
                "reason": {"S": reason[:1000]},
                "first_event_time": item["first_event_time"],
            },
        )

    def dead_letters(self) -> list[tuple[PendingAlert, str]]:
        resp = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={":pk": {"S": OUTBOX_PK}, ":p": {"S": "X#"}},
        )
        out = []
        for item in resp.get("Items", []):
            alert = PendingAlert(
                item["alert_id"]["S"],
                int(item["first_event_time"]["N"]),
                "",
                bytes(item["document"]["B"]),
            )
            out.append((alert, item["reason"]["S"]))
        return out
