"""What starts the real-time Lambda: its settings, and the notifications that name log objects.

A new CloudTrail object can be announced in six shapes, recognized per record, never per event:
an S3 event notification (invoking the function directly, or as the body of an SQS message),
the same inside an SNS envelope (SNS → Lambda, or SNS → SQS without raw delivery), an
EventBridge "Object Created" event (directly or through SQS), and CloudTrail's own SNS
notification `{"s3Bucket": ..., "s3ObjectKey": [...]}`. S3's `s3:TestEvent` and events other
than object creation are skipped with a reason. Anything else is an `UnrecognizedNotification`:
its message fails and lands in the dead-letter queue, where a person sees it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson
from aws_lambda_powertools.utilities.data_classes import (
    S3EventBridgeNotificationEvent,
    SNSEvent,
    SQSRecord,
)
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventRecord

from ..app.settings import CONFIG_ENV, load_config
from ..ports import ObjectRef
from ..stores.dynamodb.ledger import DEFAULT_TTL_DAYS
from ..trail.reader import DEFAULT_MAX_BYTES

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}\Z")  # \Z: `$` takes a trailing newline


# In Lambda the reader's cap follows the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE):
# the CLI's 1 GiB default would not fit in the deployed 1,024 MB. A gzip bomb stopped at the cap
# holds the cap and a piece; an object just under it, its records too: about 1.7 times its
# inflated size at peak (docs/benchmarks.md), beside the runtime and the baseline cache.
CAP_MEMORY_DIVISOR = 4  # the default cap: a quarter of the memory (256 MiB at 1,024 MB)
# A cap set above a third of the memory fails the cold start: the reader lets resident memory
# grow by up to 1.75 times the cap while it decodes one object (trail/reader.py), beside the
# runtime and the baseline cache.
MAX_CAP_MEMORY_DIVISOR = 3


class SettingsError(ValueError):
    """A missing or bad environment variable; the message names it."""


class UnrecognizedNotification(ValueError):
    """A message in none of the known shapes."""


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    """The real-time function's settings, from its environment (see README, "Real-time path")."""

    baseline_table: str
    ledger_table: str
    ledger_ttl_days: float = DEFAULT_TTL_DAYS
    config_path: str = ""  # the TOML config (detection, policy, reader); "" = the defaults
    cache_size: int = 200_000
    write_concurrency: int = 8
    # Overrides [reader] max_object_bytes of the config. In Lambda: MAX_OBJECT_BYTES, else the
    # config's value when set, else a quarter of the memory (see `object_cap`).
    max_object_bytes: int | None = None
    # An SQS message is not started with less time than this left in the invocation: it is
    # handed back for a retry instead of being cut off by the timeout with the whole batch.
    min_remaining_seconds: float = 30.0
    metrics_namespace: str = "CloudTrailAnomaly"
    service_name: str = "cloudtrail-anomaly-realtime"  # powertools' service (logs, metrics)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RealtimeSettings:
        baseline = _table(env, "BASELINE_TABLE", required=True)
        config_path = env.get(CONFIG_ENV, "").strip()
        if config_path and not Path(config_path).is_file():
            raise SettingsError(f"{CONFIG_ENV}={config_path!r}: no such file in the function")
        max_object_bytes = _int(env, "MAX_OBJECT_BYTES", 0, minimum=1) or None
        memory_mb = _int(env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, minimum=1)
        if memory_mb:
            max_object_bytes = object_cap(memory_mb, max_object_bytes, config_path)
        return cls(
            baseline_table=baseline,
            ledger_table=_table(env, "LEDGER_TABLE") or baseline,
            ledger_ttl_days=_float(env, "LEDGER_TTL_DAYS", DEFAULT_TTL_DAYS, minimum=1),
            config_path=config_path,
            cache_size=_int(env, "BASELINE_CACHE_SIZE", 200_000, minimum=0),
            write_concurrency=_int(env, "DYNAMODB_WRITE_CONCURRENCY", 8, minimum=1),
            max_object_bytes=max_object_bytes,
            min_remaining_seconds=_float(env, "MIN_REMAINING_SECONDS", 30.0, minimum=0),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "").strip()
            or "CloudTrailAnomaly",
            service_name=env.get("POWERTOOLS_SERVICE_NAME", "").strip()
            or "cloudtrail-anomaly-realtime",
        )


def object_cap(memory_mb: int, explicit: int | None, config_path: str = "") -> int:
    """The reader's cap in a function of `memory_mb` MB: `explicit` (MAX_OBJECT_BYTES), else
    the config's [reader] max_object_bytes when it is set, else a quarter of the memory. A cap
    that cannot fit (more than a third of the memory) is a `SettingsError` naming its origin."""
    memory = memory_mb << 20
    limit = memory // MAX_CAP_MEMORY_DIVISOR
    default = memory // CAP_MEMORY_DIVISOR
    name = "MAX_OBJECT_BYTES"
    if explicit is None:
        explicit = load_config(config_path or None).reader.max_object_bytes
        if explicit == DEFAULT_MAX_BYTES:  # the CLI's default, not a choice made for Lambda
            return default
        name = f"{config_path}: reader.max_object_bytes"
    if explicit > limit:
        raise SettingsError(
            f"{name} = {explicit:,} bytes cannot fit in the function's {memory_mb:,} MB "
            "(AWS_LAMBDA_FUNCTION_MEMORY_SIZE): reading an object near the cap may take 1.75 "
            f"times the cap, so it may be at most a third of the memory, {limit:,} bytes. Lower "
            f"it, leave it out for a quarter of the memory ({default:,} bytes), or give the "
            "function more memory"
        )
    return explicit


def _table(env: Mapping[str, str], name: str, required: bool = False) -> str:
    value = env.get(name, "").strip()
    if not value:
        if required:
            raise SettingsError(f"{name} is not set: it must name the DynamoDB table")
        return ""
    if not _TABLE_NAME.match(value):
        raise SettingsError(
            f"{name}={value!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)"
        )
    return value


def _parse(env: Mapping[str, str], name: str, kind: type[float], minimum: float) -> float | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        if not raw.isascii():  # int() and float() take Arabic-Indic and other digits
            raise ValueError(raw)
        value = kind(raw)
    except ValueError:
        article = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {article}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    value = _parse(env, name, int, minimum)
    return default if value is None else int(value)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    value = _parse(env, name, float, minimum)
    return default if value is None else value


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
