"""The real-time use case: one notified S3 object → classify → ledger → read → detect → alerts.

Safe under at-least-once delivery. An object already in the ledger costs one ledger read; in a
batch (`begin_batch` … `end_batch`, one SQS batch), the whole batch's objects are looked up in
one read and recorded in one write per 25 objects. Two
deliveries racing each other both detect, but the baseline's claims are atomic, so only one of
them alerts. An object that cannot be read, or whose claims failed after all retries, comes back
as a failed outcome (or raises, for store errors), so that its message is retried; nothing is
written to the ledger for it. Alerts are staged in the outbox with their claims, then delivered
from it: a sink outage leaves them pending (the next invocation, or the hourly reconciliation,
sends them) and does not fail the object, since nothing is lost. Detection does not wait on
delivery: once a delivery round has failed, the deliverer's circuit stays open for the rest of
the batch (one SQS batch is one invocation) and the next objects are only detected and staged;
`begin_batch` closes it, so each invocation tries once. No wall clock here: times are CloudTrail
event times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ..domain.alerts import Alert
from ..domain.detector import Detector
from ..domain.extract import Extraction
from ..ports import (
    AlertSink,
    BatchingBaseline,
    ClaimFailures,
    Metered,
    ObjectGone,
    ObjectId,
    ObjectLedger,
    ObjectRef,
    ObjectSource,
    Outbox,
    ProcessedObject,
)
from ..trail.keys import KeyKind, classify_key
from ..trail.reader import DEFAULT_MAX_BYTES, EmptyObject, ObjectError, consume_compact
from .deliver import Deliverer, DeliverySummary


class ObjectStatus(StrEnum):
    """What became of one notified object."""

    PROCESSED = "processed"  # read and detected (its alerts staged), recorded in the ledger
    DUPLICATE = "duplicate"  # already in the ledger: not read again
    SKIPPED = "skipped"  # not a log object (digest, insight…), empty, or gone: `reason` says
    INVALID = "invalid"  # a key that is not a CloudTrail log key
    FAILED = "failed"  # unreadable, or claims failed after all retries: retry the message


@dataclass(slots=True)
class ObjectOutcome:
    """What became of one notified object; `stats` holds the counters the handler publishes."""

    ref: ObjectRef
    status: ObjectStatus
    reason: str = ""  # skip reason or failure reason (a metric label)
    detail: str = ""  # the human message for invalid keys and failures
    etag: str = ""
    alerts: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    newest_event_time: int | None = None
    requests: int = 0  # store requests (baseline and ledger) this object cost
    delivery: DeliverySummary | None = None  # when alerts were delivered after this object
    # Why delivery was not even tried after this object ("" = it was, or nothing was due): the
    # circuit opened by an earlier failed round of this batch.
    delivery_held: str = ""

    @property
    def failed(self) -> bool:
        return self.status is ObjectStatus.FAILED


def _etag(value: str) -> str:
    return value.strip('"')


@dataclass(slots=True)
class _LedgerBatch:
    answered: dict[ObjectId, ProcessedObject | None]
    looked_up: int = 0
    requests: int = 0  # the lookup's and the last write's (the others count in their object's)
    pending: list[ProcessedObject] = field(default_factory=list)
    written: int = 0
    unwritten: int = 0


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What a batch's ledger requests did: `unwritten` entries are only missing from the ledger
    (the objects were processed; a redelivery or the reconciliation would process them again)."""

    looked_up: int = 0
    written: int = 0
    unwritten: int = 0
    requests: int = 0


class RealtimeProcessor:
    def __init__(
        self,
        detector: Detector,
        source: ObjectSource,
        ledger: ObjectLedger,
        sink: AlertSink,
        *,
        outbox: Outbox,
        max_bytes: int = DEFAULT_MAX_BYTES,
        meters: Sequence[Metered] = (),
        claim_failures: ClaimFailures | None = None,
    ) -> None:
        self.detector = detector
        self.source = source
        self.ledger = ledger
        self.outbox = outbox
        self.sink = sink
        self.max_bytes = max_bytes
        self.meters = meters
        self.claim_failures = claim_failures
        # A store that can hold a batch's refreshes back (DynamoDB) is asked to.
        baseline = detector.baseline
        self.batching = baseline if isinstance(baseline, BatchingBaseline) else None
        self._undelivered = True  # a new container does not know: look once
        self._batch: _LedgerBatch | None = None

    @property
    def sink(self) -> AlertSink:
        return self.deliverer.sink

    @sink.setter
    def sink(self, sink: AlertSink) -> None:
        self.deliverer = Deliverer(self.outbox, sink)

    def _requests(self) -> int:
        return sum(m.requests for m in self.meters)

    def begin_batch(self, refs: Iterable[ObjectRef]) -> None:
        """Ask the ledger about every object of a batch whose notification gives its ETag, in
        one request per 100; until `end_batch`, processed objects are recorded 25 a request, and the
        baseline may hold the batch's refreshes until `end_batch` (`hold_refreshes`), objects
        then waiting to be recorded until the refreshes held are written."""
        ids: list[ObjectId] = [
            (r.bucket, r.key, _etag(r.etag))
            for r in refs
            if r.etag and classify_key(r.key).kind is KeyKind.LOG
        ]
        self.end_batch()  # a batch left open (an invocation that died) is written first
        self.deliverer.reset()  # a new invocation tries the sink once again
        if self.batching is not None:
            self.batching.hold_refreshes()
        before = self._requests()
        answered = self.ledger.get_many(ids) if ids else {}
        self._batch = _LedgerBatch(answered, len(answered), self._requests() - before)

    def end_batch(self) -> BatchReport:
        """Write what the batch processed and has not written yet; close the batch."""
        batch, self._batch = self._batch, None
        if batch is None:
            return BatchReport()
        before = self._requests()
        try:
            if self.batching is not None:
                self.batching.flush()  # the batch's refreshes, before its ledger entries
        finally:
            self._flush(batch)
        requests = batch.requests + self._requests() - before
        return BatchReport(batch.looked_up, batch.written, batch.unwritten, requests)

    def _flush(self, batch: _LedgerBatch, *, whole_requests: bool = False) -> None:
        """Record the pending objects; with `whole_requests`, only full requests' worth (the
        rest wait for the next one, or the end of the batch)."""
        pending = batch.pending
        if whole_requests:
            pending = pending[: len(pending) - len(pending) % self.ledger.write_batch_size]
        if pending:
            unwritten = self.ledger.record_many(pending)
            batch.written += len(pending) - unwritten
            batch.unwritten += unwritten
            batch.pending = batch.pending[len(pending) :]

    def _known(self, bucket: str, key: str, etag: str) -> bool:
        if self._batch is not None and (bucket, key, etag) in self._batch.answered:
            return self._batch.answered[(bucket, key, etag)] is not None
        return self.ledger.get(bucket, key, etag) is not None

    def _remember(self, entry: ProcessedObject) -> None:
        batch = self._batch
        if batch is None:
            self.ledger.record(entry)
            return
        batch.answered[entry.id] = entry  # the same object twice in one batch: a duplicate
        batch.pending.append(entry)
        # Recorded once a request's worth is pending, and only when no refresh is held (they
        # may be the refreshes of these very objects: see BatchingBaseline.deferred).
        if len(batch.pending) >= self.ledger.write_batch_size and not (
            self.batching is not None and self.batching.deferred
        ):
            self._flush(batch, whole_requests=True)

    def process(self, ref: ObjectRef) -> ObjectOutcome:
        before = self._requests()
        outcome = self._process(ref)
        outcome.requests = self._requests() - before
        return outcome

    def _process(self, ref: ObjectRef) -> ObjectOutcome:
        classified = classify_key(ref.key)
        if classified.kind is KeyKind.SKIP:
            return ObjectOutcome(ref, ObjectStatus.SKIPPED, classified.reason)
        if classified.kind is KeyKind.INVALID or classified.log_key is None:
            return ObjectOutcome(ref, ObjectStatus.INVALID, "invalid_key", classified.reason)
        log_key = classified.log_key
        etag = _etag(ref.etag)
        if etag and self._known(ref.bucket, ref.key, etag):
            return ObjectOutcome(ref, ObjectStatus.DUPLICATE, etag=etag)
        try:
            opened = self.source.open(ref.bucket, ref.key)
        except ObjectGone:
            return ObjectOutcome(ref, ObjectStatus.SKIPPED, "object_gone")
        try:
            if not etag:
                # The notification did not say (CloudTrail's own SNS message): ask the ledger
                # now, before reading the body.
                etag = _etag(opened.etag)
                if self._known(ref.bucket, ref.key, etag):
                    return ObjectOutcome(ref, ObjectStatus.DUPLICATE, etag=etag)
            # Extracted as it is decoded, a part at a time: its records are never all held.
            extraction: Extraction | None = consume_compact(
                opened.body,
                lambda records: self.detector.extract(records, log_key.account_id, log_key.region),
                self.max_bytes,
            )
        except EmptyObject:
            extraction = None
        except ObjectError as exc:
            return ObjectOutcome(ref, ObjectStatus.FAILED, exc.reason, str(exc), etag=etag)
        finally:
            opened.body.close()

        delivered_at = int(datetime.timestamp(log_key.delivered_at))
        records = extraction.stats["records"] if extraction is not None else 0
        if extraction is None or not records:
            self._remember(ProcessedObject(ref.bucket, ref.key, etag, 0, 0, delivered_at, "empty"))
            return ObjectOutcome(ref, ObjectStatus.SKIPPED, "empty_object", etag=etag)
        result = self.detector.process_extracted(extraction, f"s3://{ref.bucket}/{ref.key}")
        newest = result.newest_event_time
        outcome = ObjectOutcome(
            ref,
            ObjectStatus.PROCESSED,
            etag=etag,
            alerts=result.alerts,
            stats=result.stats,
            newest_event_time=newest,
        )
        if result.alerts or self._undelivered:
            if self.deliverer.circuit_open:
                # The sink failed earlier in this batch: the alerts are safe in the outbox, and
                # another round would only spend another retry budget of this invocation.
                outcome.delivery_held = self.deliverer.circuit_open
                self._undelivered = True
            else:
                outcome.delivery = self.deliverer.deliver_pending()
                self._undelivered = bool(outcome.delivery.still_pending)
        failed = self.claim_failures.take_failed_claims() if self.claim_failures else 0
        if failed:
            # The alerts of the claims that did succeed are out; a retry claims and alerts the
            # rest, and the claimed ones do not alert again.
            outcome.status, outcome.reason = ObjectStatus.FAILED, "claims_failed"
            outcome.detail = f"{failed} new tuple(s) could not be claimed after all retries"
            return outcome
        self._remember(
            ProcessedObject(
                ref.bucket,
                ref.key,
                etag,
                records=records,
                alerts=len(result.alerts),
                processed_at=newest if newest is not None else delivered_at,
            )
        )
        return outcome
