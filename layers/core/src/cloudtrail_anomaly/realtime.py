"""The real-time use case: one notified S3 object → classify → ledger → read → detect → alerts.

Safe under at-least-once delivery. An object already in the ledger costs one ledger read. Two
deliveries racing each other both detect, but the baseline's claims are atomic, so only one of
them alerts. An object that cannot be read, or whose claims failed after all retries, comes back
as a failed outcome (or raises, for store errors), so that its message is retried; nothing is
written to the ledger for it. When the alerts cannot be delivered, the tuples they claimed are
released first (where the baseline can), so that the retry alerts them again. No wall clock here: times are CloudTrail event times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TextIO

import orjson

from .alerts import Alert
from .detector import Detector
from .events import parse_event_time
from .keys import KeyKind, classify_key
from .ledger import ObjectLedger, ProcessedObject
from .model import TupleKey
from .reader import DEFAULT_MAX_BYTES, EmptyObject, ObjectError, read_records


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object named by a notification. `etag` is empty when the notification does not say."""

    bucket: str
    key: str
    etag: str = ""


class LogObjectBody(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OpenedObject:
    etag: str
    body: LogObjectBody


class ObjectGone(Exception):
    """The notified object no longer exists (deleted, or expired by a lifecycle rule)."""


class ObjectSource(Protocol):
    def open(self, bucket: str, key: str) -> OpenedObject:
        """Start reading an object; raises `ObjectGone` when it does not exist."""
        ...


class AlertSink(Protocol):
    def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver alerts; raises when they could not be delivered."""
        ...


class JsonLinesSink:
    """Alerts as JSON lines on a text stream. In Lambda, stdout is the function's log group, so
    this is the structured-log sink until a real one is configured."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self.stream.write(orjson.dumps(alert.to_dict()).decode() + "\n")
        self.stream.flush()


class Metered(Protocol):
    @property
    def requests(self) -> int: ...


class ClaimFailures(Protocol):
    def take_failed_claims(self) -> int: ...


class ClaimRelease(Protocol):
    def release(self, claimed: Mapping[TupleKey, int]) -> None: ...


def alerted_claims(alerts: Iterable[Alert]) -> dict[TupleKey, int]:
    """The tuples this object's new-action alerts claimed, with the `first_seen` of each claim
    (the time of the tuple's first event in the object). Burst alerts are left out: their
    entries were claimed, and alerted, by earlier objects."""
    return {
        TupleKey(a.account_id, a.principal.key, e.action): e.event_time
        for a in alerts
        if a.detector == "new_action"
        for e in a.new_actions
    }


@dataclass(slots=True)
class ObjectOutcome:
    """What became of one notified object; `stats` holds the counters the handler publishes."""

    ref: ObjectRef
    status: str  # processed | duplicate | skipped | invalid | failed
    reason: str = ""  # skip reason or failure reason (a metric label)
    detail: str = ""  # the human message for invalid keys and failures
    etag: str = ""
    alerts: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    newest_event_time: int | None = None
    requests: int = 0  # store requests (baseline and ledger) this object cost

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def newest_event_time(records: Iterable[Any]) -> int | None:
    newest: int | None = None
    for record in records:
        if isinstance(record, dict):
            t = parse_event_time(record.get("eventTime"))
            if t is not None and (newest is None or t > newest):
                newest = t
    return newest


def _etag(value: str) -> str:
    return value.strip('"')


class RealtimeProcessor:
    def __init__(
        self,
        detector: Detector,
        source: ObjectSource,
        ledger: ObjectLedger,
        sink: AlertSink,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        meters: Sequence[Metered] = (),
        claim_failures: ClaimFailures | None = None,
        claim_release: ClaimRelease | None = None,
    ) -> None:
        self.detector = detector
        self.source = source
        self.ledger = ledger
        self.sink = sink
        self.max_bytes = max_bytes
        self.meters = meters
        self.claim_failures = claim_failures
        self.claim_release = claim_release

    def _requests(self) -> int:
        return sum(m.requests for m in self.meters)

    def process(self, ref: ObjectRef) -> ObjectOutcome:
        before = self._requests()
        outcome = self._process(ref)
        outcome.requests = self._requests() - before
        return outcome

    def _process(self, ref: ObjectRef) -> ObjectOutcome:
        classified = classify_key(ref.key)
        if classified.kind is KeyKind.SKIP:
            return ObjectOutcome(ref, "skipped", classified.reason)
        if classified.kind is KeyKind.INVALID or classified.log_key is None:
            return ObjectOutcome(ref, "invalid", "invalid_key", classified.reason)
        log_key = classified.log_key
        etag = _etag(ref.etag)
        if etag and self.ledger.get(ref.bucket, ref.key, etag) is not None:
            return ObjectOutcome(ref, "duplicate", etag=etag)
        try:
            opened = self.source.open(ref.bucket, ref.key)
        except ObjectGone:
            return ObjectOutcome(ref, "skipped", "object_gone")
        try:
            if not etag:
                # The notification did not say (CloudTrail's own SNS message): ask the ledger
                # now, before reading the body.
                etag = _etag(opened.etag)
                if self.ledger.get(ref.bucket, ref.key, etag) is not None:
                    return ObjectOutcome(ref, "duplicate", etag=etag)
            records = read_records(opened.body, self.max_bytes)
        except EmptyObject:
            records = []
        except ObjectError as exc:
            return ObjectOutcome(ref, "failed", exc.reason, str(exc), etag=etag)
        finally:
            opened.body.close()

        delivered_at = int(datetime.timestamp(log_key.delivered_at))
        if not records:
            self.ledger.record(
                ProcessedObject(ref.bucket, ref.key, etag, 0, 0, delivered_at, "empty")
            )
            return ObjectOutcome(ref, "skipped", "empty_object", etag=etag)
        newest = newest_event_time(records)
        result = self.detector.process(
            records, f"s3://{ref.bucket}/{ref.key}", log_key.account_id, log_key.region
        )
        outcome = ObjectOutcome(
            ref,
            "processed",
            etag=etag,
            alerts=result.alerts,
            stats=result.stats,
            newest_event_time=newest,
        )
        if result.alerts:
            try:
                self.sink.send(result.alerts)
            except Exception as exc:
                # Without this, the retry would find the tuples claimed and alert nothing.
                if self.claim_release is not None:
                    self.claim_release.release(alerted_claims(result.alerts))
                outcome.status, outcome.reason = "failed", "sink_error"
                outcome.detail = f"alert delivery failed: {type(exc).__name__}: {exc}"
                return outcome
        failed = self.claim_failures.take_failed_claims() if self.claim_failures else 0
        if failed:
            # The alerts of the claims that did succeed are out; a retry claims and alerts the
            # rest, and the claimed ones do not alert again.
            outcome.status, outcome.reason = "failed", "claims_failed"
            outcome.detail = f"{failed} new tuple(s) could not be claimed after all retries"
            return outcome
        self.ledger.record(
            ProcessedObject(
                ref.bucket,
                ref.key,
                etag,
                records=len(records),
                alerts=len(result.alerts),
                processed_at=newest if newest is not None else delivered_at,
            )
        )
        return outcome
