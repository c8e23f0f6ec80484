"""The real-time use case on in-memory fakes: every outcome an object can have."""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import DAY, TupleClaim
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.ports import (
    DeliveryReport,
    ObjectGone,
    ObjectRef,
    OpenedObject,
    PendingAlert,
    ProcessedObject,
)
from cloudtrail_anomaly.stores.memory import MemoryBaseline, MemoryLedger
from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor

from tests.builders import ACCOUNT, T0, record
from tests.fakes import ListSink
from tests.helpers import DeferringBaseline

GET_USER = "iam.amazonaws.com:GetUser"
CREATE_USER = "iam.amazonaws.com:CreateUser"
CREATE_ACCESS_KEY = "iam.amazonaws.com:CreateAccessKey"
DELETE_USER = "iam.amazonaws.com:DeleteUser"
KEY = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/06/01/{ACCOUNT}_CloudTrail_us-east-1_20240601T0005Z_abc.json.gz"


def body(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"Records": records}))


class MemorySource:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.opened = 0
        self.bodies: list[io.BytesIO] = []

    def open(self, bucket: str, key: str) -> OpenedObject:
        self.opened += 1
        if (bucket, key) not in self.objects:
            raise ObjectGone(key)
        etag, data = self.objects[(bucket, key)]
        self.bodies.append(io.BytesIO(data))
        return OpenedObject(f'"{etag}"', self.bodies[-1])


@pytest.fixture
def parts() -> dict[str, Any]:
    baseline, ledger, source, sink = MemoryBaseline(), MemoryLedger(), MemorySource(), ListSink()
    processor = RealtimeProcessor(
        Detector(baseline, AlertPolicy()),
        source,
        ledger,
        sink,
        outbox=baseline.outbox,
        meters=(baseline, ledger),
    )
    # Alice and her account are a month old: her new actions alert.
    history = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/05/01/{ACCOUNT}_CloudTrail_us-east-1_20240501T0005Z_old.json.gz"
    source.objects[("b", history)] = ("h", body([record(GET_USER, T0 - 30 * DAY)]))
    processor.process(ObjectRef("b", history))
    return {"p": processor, "source": source, "ledger": ledger, "sink": sink, "baseline": baseline}


def test_a_log_object_is_detected_alerted_and_recorded(parts: dict[str, Any]) -> None:
    records = [record(CREATE_USER, T0 + 60), record(CREATE_ACCESS_KEY, T0 + 120)]
    parts["source"].objects[("b", KEY)] = ("e1", body(records))
    outcome = parts["p"].process(ObjectRef("b", KEY))
    assert outcome.status == "processed"
    assert outcome.etag == "e1"
    assert outcome.newest_event_time == T0 + 120
    assert outcome.stats["records"] == 2
    assert outcome.requests > 0
    (alert,) = parts["sink"].alerts
    assert alert["source_objects"] == [f"s3://b/{KEY}"]
    assert parts["ledger"].entries[("b", KEY, "e1")] == ProcessedObject(
        "b", KEY, "e1", records=2, alerts=1, processed_at=T0 + 120
    )
    assert all(b.closed for b in parts["source"].bodies)


def test_a_known_etag_costs_one_ledger_read_and_no_download(parts: dict[str, Any]) -> None:
    parts["source"].objects[("b", KEY)] = ("e1", body([record(CREATE_USER, T0)]))
    parts["p"].process(ObjectRef("b", KEY, "e1"))
    opened = parts["source"].opened
    outcome = parts["p"].process(ObjectRef("b", KEY, "e1"))
    assert (outcome.status, outcome.requests) == ("duplicate", 1)
    assert parts["source"].opened == opened


def test_without_an_etag_the_object_is_opened_but_not_read_again(parts: dict[str, Any]) -> None:
    parts["source"].objects[("b", KEY)] = ("e1", body([record(CREATE_USER, T0)]))
    assert parts["p"].process(ObjectRef("b", KEY)).status == "processed"
    outcome = parts["p"].process(ObjectRef("b", KEY))  # CloudTrail's SNS message: no ETag
    assert (outcome.status, outcome.etag) == ("duplicate", "e1")
    assert len(parts["sink"].alerts) == 1


def test_a_new_etag_is_a_new_object(parts: dict[str, Any]) -> None:
    parts["source"].objects[("b", KEY)] = ("e1", body([record(CREATE_USER, T0)]))
    parts["p"].process(ObjectRef("b", KEY, "e1"))
    parts["source"].objects[("b", KEY)] = ("e2", body([record(DELETE_USER, T0 + 5)]))
    assert parts["p"].process(ObjectRef("b", KEY, "e2")).status == "processed"
    assert len(parts["sink"].alerts) == 2


@pytest.mark.parametrize(
    ("key", "status", "reason"),
    [
        (KEY.replace("CloudTrail/", "CloudTrail-Digest/"), "skipped", "digest"),
        ("AWSLogs/", "skipped", "folder_marker"),
        ("exports/today.json", "invalid", "invalid_key"),
    ],
)
def test_keys_that_are_not_log_objects(
    parts: dict[str, Any], key: str, status: str, reason: str
) -> None:
    outcome = parts["p"].process(ObjectRef("b", key))
    assert (outcome.status, outcome.reason) == (status, reason)
    if status == "invalid":
        assert "exports/today.json" in outcome.detail
    assert parts["source"].opened == 1  # only the history object


def test_gone_empty_and_broken_objects(parts: dict[str, Any]) -> None:
    assert parts["p"].process(ObjectRef("b", KEY)).reason == "object_gone"
    parts["source"].objects[("b", KEY)] = ("e0", b"")
    assert parts["p"].process(ObjectRef("b", KEY)).reason == "empty_object"
    assert parts["ledger"].entries[("b", KEY, "e0")].outcome == "empty"
    parts["source"].objects[("b", KEY)] = ("e1", gzip.compress(b"{not json"))
    outcome = parts["p"].process(ObjectRef("b", KEY))
    assert (outcome.status, outcome.reason) == ("failed", "invalid_json")
    assert ("b", KEY, "e1") not in parts["ledger"].entries


def test_a_sink_outage_keeps_the_alert_pending_without_failing_the_object(
    parts: dict[str, Any],
) -> None:
    class Down:
        name = "down"

        def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
            return DeliveryReport(pending={a.alert_id: "endpoint timed out" for a in alerts})

    sink = parts["sink"]
    parts["p"].sink = Down()
    parts["source"].objects[("b", KEY)] = ("e1", body([record(CREATE_USER, T0)]))
    outcome = parts["p"].process(ObjectRef("b", KEY))
    # The alert is durable in the outbox: the object is done, its message is not retried.
    assert outcome.status == "processed"
    assert outcome.delivery is not None and outcome.delivery.still_pending == 1
    assert ("b", KEY, "e1") in parts["ledger"].entries
    (pending,) = parts["baseline"].outbox.pending()
    assert pending.attempts == 1
    # The sink is back: the next object sends what was pending, once.
    parts["p"].sink = sink
    later = KEY.replace("_abc", "_abd")
    parts["source"].objects[("b", later)] = ("e2", body([record(GET_USER, T0 + 60)]))
    parts["p"].process(ObjectRef("b", later))
    assert [a["alert_id"] for a in sink.alerts] == [pending.alert_id]
    assert parts["baseline"].outbox.pending() == []


def _key(n: int) -> str:
    return KEY.replace("T0005Z_abc", f"T{n // 60:02d}{n % 60:02d}Z_b{n:03d}")


def test_a_batch_asks_the_ledger_once_and_records_its_objects_together(
    parts: dict[str, Any],
) -> None:
    p, ledger, source = parts["p"], parts["ledger"], parts["source"]
    refs = []
    for n in range(10):
        source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, T0 + n)]))
        refs.append(ObjectRef("b", _key(n), f"e{n}"))
    before = ledger.requests
    p.begin_batch(refs)
    outcomes = [p.process(ref) for ref in refs]
    assert [o.status for o in outcomes] == ["processed"] * 10
    assert len(ledger.entries) == 1  # nothing written yet but the fixture's history
    report = p.end_batch()
    assert (report.looked_up, report.written, report.unwritten) == (10, 10, 0)
    assert ledger.requests - before == 2  # one lookup, one write, for ten objects
    assert {("b", _key(n), f"e{n}") for n in range(10)} <= set(ledger.entries)

    # The same batch redelivered: all duplicates, nothing downloaded, one request in all.
    opened, before = source.opened, ledger.requests
    p.begin_batch(refs)
    assert {p.process(ref).status for ref in refs} == {"duplicate"}
    assert p.end_batch().written == 0
    assert (source.opened, ledger.requests - before) == (opened, 1)


def test_an_object_twice_in_one_batch_is_processed_once(parts: dict[str, Any]) -> None:
    p, source = parts["p"], parts["source"]
    source.objects[("b", KEY)] = ("e1", body([record(CREATE_USER, T0)]))
    with_etag, without = ObjectRef("b", KEY, "e1"), ObjectRef("b", KEY)  # S3 and SNS
    p.begin_batch([with_etag, without])
    assert p.process(with_etag).status == "processed"
    assert p.process(without).status == "duplicate"  # answered by the batch, not the store
    assert p.process(with_etag).status == "duplicate"
    p.end_batch()
    assert len(parts["sink"].alerts) == 1


def test_a_long_batch_is_written_25_objects_a_request_as_it_goes(parts: dict[str, Any]) -> None:
    p, ledger, source = parts["p"], parts["ledger"], parts["source"]
    refs = []
    for n in range(60):
        source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, T0 + n)]))
        refs.append(ObjectRef("b", _key(n), f"e{n}"))
    p.begin_batch(refs)
    for ref in refs[:30]:
        p.process(ref)
    assert len(ledger.entries) == 1 + 25  # the first 25 are safe before the batch ends
    for ref in refs[30:]:
        p.process(ref)
    assert p.end_batch().written == 60
    assert len(ledger.entries) == 61


class ForgetfulLedger(MemoryLedger):
    """A store that answers none of a batch lookup and refuses every batch write."""

    def get_many(self, ids: Any) -> dict[Any, ProcessedObject | None]:
        self.requests += 1
        return {}

    def record_many(self, entries: Sequence[ProcessedObject]) -> int:
        self.requests += 1
        return len(entries)


def test_unanswered_lookups_are_asked_one_by_one_and_unwritten_entries_are_reported() -> None:
    baseline, ledger, source = MemoryBaseline(), ForgetfulLedger(), MemorySource()
    p = RealtimeProcessor(
        Detector(baseline, AlertPolicy()),
        source,
        ledger,
        ListSink(),
        outbox=baseline.outbox,
        meters=(baseline, ledger),
    )
    ledger.entries[("b", _key(1), "e1")] = ProcessedObject("b", _key(1), "e1", 1, 0, T0)
    refs = [ObjectRef("b", _key(n), f"e{n}") for n in range(3)]
    for n in range(3):
        source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, T0 + n)]))
    p.begin_batch(refs)
    assert [p.process(r).status for r in refs] == ["processed", "duplicate", "processed"]
    report = p.end_batch()
    assert (report.looked_up, report.written, report.unwritten) == (0, 0, 2)


def test_held_refreshes_are_written_at_the_end_of_the_batch_or_of_a_lone_object() -> None:
    baseline, ledger, source = DeferringBaseline(), MemoryLedger(), MemorySource()
    p = RealtimeProcessor(
        Detector(baseline, AlertPolicy()), source, ledger, ListSink(), outbox=baseline.outbox
    )
    source.objects[("b", _key(0))] = ("e0", body([record(GET_USER, T0)]))
    p.process(ObjectRef("b", _key(0), "e0"))  # claimed: nothing to refresh
    gu = next(iter(baseline.tuples))
    # Eight days on (past the 7.5 days of the default refresh), in a batch of three objects.
    refs = []
    for n in range(1, 4):
        source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, T0 + 8 * DAY + n)]))
        refs.append(ObjectRef("b", _key(n), f"e{n}"))
    p.begin_batch(refs)
    flushes = baseline.flushes
    for ref in refs:
        assert p.process(ref).stats["tuples_refreshed"] > 0  # the action's and the region's
    assert baseline.flushes == flushes  # held for the end of the batch
    assert baseline.held and baseline.tuples[gu].last_seen == T0
    p.end_batch()
    assert baseline.flushes == flushes + 1
    assert baseline.tuples[gu].last_seen == T0 + 8 * DAY + 3
    # Outside a batch, each object writes its own.
    source.objects[("b", _key(9))] = ("e9", body([record(GET_USER, T0 + 16 * DAY)]))
    p.process(ObjectRef("b", _key(9), "e9"))
    assert baseline.tuples[gu].last_seen == T0 + 16 * DAY


def test_objects_are_recorded_only_once_the_refreshes_they_held_are_written() -> None:
    # Recorded first, a crash would lose the refreshes: the retry skips recorded objects.
    baseline, ledger, source = DeferringBaseline(), MemoryLedger(), MemorySource()
    p = RealtimeProcessor(
        Detector(baseline, AlertPolicy()), source, ledger, ListSink(), outbox=baseline.outbox
    )

    def batch(first: int, count: int, at: int) -> list[ObjectRef]:
        refs = []
        for n in range(first, first + count):
            source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, at + n)]))
            refs.append(ObjectRef("b", _key(n), f"e{n}"))
        p.begin_batch(refs)
        return refs

    many = 2 * ledger.write_batch_size + 1
    for ref in batch(0, many, T0):  # all claimed (the first) or known: nothing held
        p.process(ref)
    assert len(ledger.entries) == 2 * ledger.write_batch_size  # 25 a request as they go
    p.end_batch()
    assert len(ledger.entries) == many
    # Eight days on, every object holds the refresh of the tuple it saw.
    for ref in batch(many, many, T0 + 8 * DAY):
        p.process(ref)
        assert baseline.held
    assert len(ledger.entries) == many  # none recorded while their refreshes are held
    p.end_batch()
    assert not baseline.held and len(ledger.entries) == 2 * many


class _WritesEverySeven(DeferringBaseline):
    """Writes what it holds every 7 objects (14 refreshes: each object's action and region),
    as the DynamoDB store does at 100."""

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        super().refresh(updates)
        if len(self.held) >= 14:
            held, self.held = self.held, []
            MemoryBaseline.refresh(self, held)


def test_objects_are_recorded_in_full_requests_during_a_batch() -> None:
    baseline, ledger, source = _WritesEverySeven(), MemoryLedger(), MemorySource()
    p = RealtimeProcessor(
        Detector(baseline, AlertPolicy()), source, ledger, ListSink(), outbox=baseline.outbox
    )
    source.objects[("b", _key(0))] = ("e0", body([record(GET_USER, T0)]))
    p.process(ObjectRef("b", _key(0), "e0"))
    refs = []
    for n in range(1, 31):  # each object holds a refresh, written 7 at a time
        source.objects[("b", _key(n))] = (f"e{n}", body([record(GET_USER, T0 + n * 8 * DAY)]))
        refs.append(ObjectRef("b", _key(n), f"e{n}"))
    p.begin_batch(refs)
    before = ledger.requests
    for ref in refs:
        p.process(ref)
    # When the 28th object's refreshes are written, 28 objects wait: 25 are recorded in one
    # request, 3 wait for the next (not two requests, one of 3).
    assert ledger.requests == before + 1 and len(ledger.entries) == 1 + 25
    p.end_batch()
    assert ledger.requests == before + 2 and len(ledger.entries) == 31
