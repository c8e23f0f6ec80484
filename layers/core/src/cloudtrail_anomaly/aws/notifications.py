"""The notifications that start the real-time Lambda: each names new CloudTrail log objects.

A new CloudTrail object can be announced in six shapes, recognized per record, never per event:
an S3 event notification (invoking the function directly, or as the body of an SQS message),
the same inside an SNS envelope (SNS → Lambda, or SNS → SQS without raw delivery), an
EventBridge "Object Created" event (directly or through SQS), and CloudTrail's own SNS
notification `{"s3Bucket": ..., "s3ObjectKey": [...]}`. S3's `s3:TestEvent` and events other
than object creation are skipped with a reason. Anything else is an `UnrecognizedNotification`:
its message fails and lands in the dead-letter queue, where a person sees it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import orjson
from aws_lambda_powertools.utilities.data_classes import (
    S3EventBridgeNotificationEvent,
    SNSEvent,
    SQSRecord,
)
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from ..ports import ObjectRef


class UnrecognizedNotification(ValueError):
    """A message in none of the known shapes."""


@dataclass(slots=True)
class Notification:
    """The objects a notification names, and what it announced that is not for us."""

    objects: list[ObjectRef] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def extend(self, other: Notification) -> None:
        self.objects.extend(other.objects)
        self.skipped.update(other.skipped)


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def parse_sqs_record(record: SQSRecord) -> Notification:
    """The objects named by one SQS message's body."""
    try:
        doc = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        raise UnrecognizedNotification("SQS message body is not JSON") from None
    return parse_message(doc)


def parse_event(event: Mapping[str, Any]) -> Notification:
    """The objects named by a direct invocation (S3, SNS or EventBridge; not SQS)."""
    if "Records" not in event:
        return parse_message(event)
    records = event["Records"]
    if not isinstance(records, list):
        raise UnrecognizedNotification("'Records' is not a list")
    out = Notification()
    for raw in records:
        if isinstance(raw, dict) and raw.get("EventSource") == "aws:sns":
            message = SNSEvent({"Records": [raw]}).sns_message
            out.extend(_parse_text(message, "SNS message"))
        else:
            out.extend(_s3_records([raw]))
    return out


def parse_message(doc: Any) -> Notification:
    """The objects named by one message, whatever its shape (see the module docstring)."""
    if not isinstance(doc, dict):
        raise UnrecognizedNotification(f"message is a JSON {type(doc).__name__}, not an object")
    if doc.get("Event") == "s3:TestEvent":
        return Notification(skipped=Counter({"s3_test_event": 1}))
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return _parse_text(doc["Message"], "SNS message")  # SNS → SQS without raw delivery
    if "Records" in doc:
        records = doc["Records"]
        if not isinstance(records, list):
            raise UnrecognizedNotification("'Records' is not a list")
        return _s3_records(records)
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return _eventbridge(doc)
    if "s3Bucket" in doc and "s3ObjectKey" in doc:
        return _cloudtrail(doc)
    keys = ", ".join(sorted(str(k) for k in doc)[:8])
    raise UnrecognizedNotification(f"unknown notification shape (top-level keys: {keys})")


def _parse_text(text: str, what: str) -> Notification:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise UnrecognizedNotification(f"{what} is not JSON") from None
    return parse_message(doc)


def _key(raw: Any) -> str:
    # S3 notifications URL-encode keys ("a b" → "a+b"); CloudTrail's own keys hold neither "+"
    # nor "%", so decoding every shape alike is safe for them.
    if not isinstance(raw, str) or not raw:
        raise UnrecognizedNotification("notification names no object key")
    return unquote_plus(raw)


def _bucket(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise UnrecognizedNotification("notification names no bucket")
    return raw


def _s3_records(records: list[Any]) -> Notification:
    out = Notification()
    for raw in records:
        if not isinstance(raw, dict) or raw.get("eventSource") != "aws:s3" or "s3" not in raw:
            raise UnrecognizedNotification("a record in 'Records' is not an S3 event record")
        record = S3EventRecord(raw)
        if not record.event_name.startswith("ObjectCreated:"):
            out.skipped["not_object_created"] += 1
            continue
        try:
            obj = record.s3.get_object
            out.objects.append(
                ObjectRef(_bucket(record.s3.bucket.name), _key(obj.key), obj.get("eTag") or "")
            )
        except (KeyError, TypeError):
            raise UnrecognizedNotification("S3 event record without bucket or object") from None
    return out


def _eventbridge(doc: dict[str, Any]) -> Notification:
    event = S3EventBridgeNotificationEvent(doc)
    if event.detail_type != "Object Created":
        return Notification(skipped=Counter({"not_object_created": 1}))
    try:
        detail = event.detail
        ref = ObjectRef(
            _bucket(detail.bucket.name), _key(detail.object.key), detail.object.get("etag") or ""
        )
    except (KeyError, TypeError):
        raise UnrecognizedNotification("EventBridge S3 event without bucket or object") from None
    return Notification(objects=[ref])


def _cloudtrail(doc: dict[str, Any]) -> Notification:
    bucket = _bucket(doc.get("s3Bucket"))
    keys = doc.get("s3ObjectKey")
    if not isinstance(keys, list):
        raise UnrecognizedNotification("CloudTrail notification: 's3ObjectKey' is not a list")
    return Notification(objects=[ObjectRef(bucket, _key(k)) for k in keys])
