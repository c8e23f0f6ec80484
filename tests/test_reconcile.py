"""The hourly reconciliation on fakes: a bucket on disk (digests in AWS's format), the memory
ledger, baseline and outbox, the real-time use case, and Athena's SQL run by DuckDB."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.athena.schema import TableSpec
from cloudtrail_anomaly.athena.table import AthenaTable
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import DAY, TupleKey
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.ports import ObjectRef, PendingAlert
from cloudtrail_anomaly.stores.memory import MemoryBaseline, MemoryLedger
from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor
from cloudtrail_anomaly.usecases.reconcile import (
    Reconciler,
    ReconcileSettings,
    Window,
    reconcile_window,
)

from tests.athena_local import LocalAthena
from tests.builders import user_record
from tests.fakes import ListSink
from tests.helpers import DeferringBaseline
from tests.trail import (
    ACCOUNT,
    BUCKET,
    LAYOUT,
    REGION,
    DiskBucket,
    at,
    digest_document,
    digest_key,
    log_key,
    log_object,
    twenty_files,
)

NOW = at(11, 0, 7)  # the scheduled time: the window is 09:30-10:30, with the digest of 09:40:31
MISSED = (4, 11, 17)
SPEC = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT)


class World:
    def __init__(
        self,
        root: Path,
        settings: ReconcileSettings | None = None,
        baseline: MemoryBaseline | None = None,
        **kw: Any,
    ) -> None:
        self.bucket = DiskBucket(root)
        self.baseline = baseline or MemoryBaseline()
        self.ledger = MemoryLedger()
        self.sink = ListSink()
        self.processor = RealtimeProcessor(
            Detector(self.baseline, AlertPolicy()),
            self.bucket,
            self.ledger,
            self.sink,
            outbox=self.baseline.outbox,
            **kw,
        )
        self.athena = LocalAthena(root, SPEC)
        self.reconciler = Reconciler(
            self.processor,
            self.bucket,
            LAYOUT,
            settings=settings,
            table=AthenaTable(SPEC, self.athena),
        )

    def notify(self, key: str) -> None:
        """What the real-time function does with a notification."""
        assert self.processor.process(ObjectRef(BUCKET, key)).status == "processed"

    def alert_ids(self) -> list[str]:
        return [a["alert_id"] for a in self.sink.alerts]


def delivered_in_window(key: str) -> bool:
    return "20240601T0930Z" <= key.split("_")[-2] < "20240601T1030Z"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_the_window_is_the_hour_ending_lag_minutes_before_the_schedule() -> None:
    assert reconcile_window(at(10, 0, 7)) == Window(at(8, 30), at(9, 30))
    assert reconcile_window(at(10, 0), lag_minutes=15, length_minutes=120) == Window(
        at(7, 45), at(9, 45)
    )
    assert Window(at(8, 30), at(9, 30)).label == "2024-06-01T08:30Z/2024-06-01T09:30Z"


def test_three_of_twenty_never_notified_are_reprocessed_and_alert_once(world: World) -> None:
    files = twenty_files(world.bucket)
    history, logs = files[0], files[1:]
    world.notify(history[0])
    for i, (key, _, _) in enumerate(logs):
        if i not in MISSED:
            world.notify(key)
    assert len(world.sink.alerts) == 17  # one new action a file

    ledger_before = world.ledger.requests
    report = world.reconciler.run(NOW)
    # The digest's 20 objects are looked up in one batch request, the 3 missed ones again
    # before they are reprocessed (the real-time path may have got there), and recorded in one.
    assert world.ledger.requests - ledger_before == 3

    s = report.stats
    assert (
        s["digests_checked"],
        s["files_expected"],
        s["files_missed"],
        s["files_reprocessed"],
    ) == (1, 20, 3, 3)
    assert s["digests_missing"] == 0 and s["pairs_listed"] == 0
    assert sorted(o.ref.key for o in report.outcomes) == sorted(logs[i][0] for i in MISSED)
    assert s["alerts"] == 3 and s["athena_new_tuples"] == 0 and s["athena_alerts"] == 0
    assert len(world.sink.alerts) == 20 and len(set(world.alert_ids())) == 20
    new = world.sink.alerts[17:]
    assert sorted(a["source_objects"][0] for a in new) == sorted(
        f"s3://{BUCKET}/{logs[i][0]}" for i in MISSED
    )
    assert sorted(a["new_actions"][0]["action"] for a in new) == [
        f"iam.amazonaws.com:CreateThing{i:02d}" for i in MISSED
    ]
    # Athena read exactly the three missed objects, once.
    (query,) = world.athena.selects
    assert query.count(f"s3://{BUCKET}/") == 3
    assert s["athena_queries"] == 1 and s["athena_rows"] == 6  # 2 tuples x 3 objects
    assert s["bytes_scanned"] == sum(len(logs[i][1]) for i in MISSED)
    assert report.complete and not report.warnings

    again = world.reconciler.run(NOW)  # running twice is harmless
    assert again.stats["files_missed"] == 0 and again.stats["alerts"] == 0
    assert again.stats["bytes_scanned"] == 0 and len(world.athena.selects) == 1
    late = world.reconciler.run(NOW + 25 * 60)  # and so is running late
    assert late.stats["files_missed"] == 0 and len(world.sink.alerts) == 20


def test_a_complete_hour_scans_nothing(world: World) -> None:
    for key, _, _ in twenty_files(world.bucket):
        world.notify(key)
    report = world.reconciler.run(NOW)
    assert report.stats["files_expected"] == 20 and report.stats["files_missed"] == 0
    assert world.athena.statements == []  # not even the table is touched
    assert report.stats["bytes_scanned"] == 0 and report.stats["athena_queries"] == 0


def test_a_digest_gone_missing_is_reported_and_the_folders_listed(world: World) -> None:
    files = twenty_files(world.bucket)
    (world.bucket.root / digest_key(at(9, 40, 31))).unlink()  # the trail stopped its digests
    for i, (key, _, _) in enumerate(files):
        if i - 1 not in MISSED:
            world.notify(key)
    report = world.reconciler.run(NOW)
    assert report.stats["digests_missing"] == 1 and report.stats["pairs_listed"] == 1
    (warning,) = report.warnings
    assert "no digest file" in warning and "CloudTrail-Digest" in warning
    # The listing covers the objects delivered 09:30-10:30 (their names say when).
    in_window = [k for k, _, _ in files if delivered_in_window(k)]
    assert report.stats["files_expected"] == len(in_window) == 3
    assert {o.ref.key for o in report.outcomes} == {files[18][0]}  # the one missed of them


def test_without_digests_the_window_is_listed(world: World) -> None:
    files = twenty_files(world.bucket)
    for key in world.bucket.stored_keys():
        if "CloudTrail-Digest" in key:
            (world.bucket.root / key).unlink()
    report = world.reconciler.run(NOW)  # nothing was notified at all
    assert report.stats["digests_missing"] == 0 and not report.warnings
    assert report.stats["pairs_listed"] == 1
    expected = [k for k, _, _ in files if delivered_in_window(k)]
    assert report.stats["files_missed"] == report.stats["files_reprocessed"] == len(expected)


def test_digest_entries_are_checked_before_they_are_followed(world: World) -> None:
    good = log_key(at(9, 10), "good1")
    body = log_object([user_record("iam.amazonaws.com:GetUser", at(9, 9))])
    world.bucket.put(good, body)
    absent = log_key(at(9, 12), "absent1")
    records = [user_record("iam.amazonaws.com:GetUser", at(9, 9))]
    foreign = [
        (good.replace("123456789012", "210987654321"), body, records),  # another account's
        (good.replace("good1", "x';DROP TABLE t;--"), body, records),
        ("AWSLogs/elsewhere.json.gz", body, records),
    ]
    digest = digest_document(
        at(9, 40, 31), [(good, body, records), (absent, body, records), *foreign]
    )
    world.bucket.put(digest_key(at(9, 40, 31)), digest)
    report = world.reconciler.run(NOW)
    assert report.stats["digest_entries_invalid"] == 3
    assert report.stats["files_absent"] == 1 and report.stats["files_reprocessed"] == 1
    assert any("not in the bucket" in w for w in report.warnings)
    assert all("DROP" not in sql for sql in world.athena.statements)


def test_pending_alerts_are_redelivered(world: World) -> None:
    world.baseline.outbox.stage([PendingAlert("a" * 32, at(8, 0), "high", b'{"alert_id": "aaa"}')])
    report = world.reconciler.run(NOW)
    assert report.stats["pending_alerts_redelivered"] == 1 and world.sink.alerts == [
        {"alert_id": "aaa"}
    ]
    assert world.reconciler.run(NOW).stats["pending_alerts_redelivered"] == 0


def test_athena_detects_an_object_the_function_cannot_read(tmp_path: Path) -> None:
    world = World(tmp_path, max_bytes=50_000)
    files = twenty_files(world.bucket)
    big = log_key(at(9, 20), "big1")
    records = [
        user_record("iam.amazonaws.com:GetUser", at(9, 19) - 5 * i, "u05") for i in range(300)
    ]
    records.append(user_record("iam.amazonaws.com:DeleteTrail", at(9, 19, 30), "u05"))
    world.bucket.put(big, log_object(records))
    digest = digest_document(at(9, 40, 31), [*files[1:], (big, log_object(records), records)])
    world.bucket.put(digest_key(at(9, 40, 31)), digest)
    for key, _, _ in files:
        world.notify(key)
    report = world.reconciler.run(NOW)
    assert report.stats["files_missed"] == 1 and report.stats["files_failed.too_large"] == 1
    assert report.stats["athena_new_tuples"] == 1 and report.stats["athena_alerts"] == 1
    assert report.stats["files_detected_by_athena"] == 1 and report.complete
    alert = world.sink.alerts[-1]
    assert alert["new_actions"][0]["action"] == "iam.amazonaws.com:DeleteTrail"
    assert alert["source_objects"] == [f"s3://{BUCKET}/{big}"]
    assert alert["new_actions"][0]["event_id"] == f"evt-DeleteTrail-{at(9, 19, 30)}"
    entry = world.ledger.entries[(BUCKET, big, world.bucket.etag(big))]
    assert entry.outcome == "athena"
    assert world.reconciler.run(NOW).stats["files_missed"] == 0


def test_refreshes_from_athena_rows_are_written_by_the_end_of_the_run(tmp_path: Path) -> None:
    baseline = DeferringBaseline()  # as DynamoDB's: holds refreshes only inside a batch
    world = World(tmp_path, baseline=baseline, max_bytes=50_000)
    old = log_key(at(9, 0) - 30 * DAY, "old")
    world.bucket.put(
        old, log_object([user_record("iam.amazonaws.com:GetUser", at(9, 0) - 30 * DAY)])
    )
    world.notify(old)
    # An object too large for the function, of a tuple last seen a month ago: Athena reads it.
    big = log_key(at(9, 20), "big1")
    records = [user_record("iam.amazonaws.com:GetUser", at(9, 19) - 5 * i) for i in range(300)]
    world.bucket.put(big, log_object(records))
    world.bucket.put(
        digest_key(at(9, 40, 31)),
        digest_document(at(9, 40, 31), [(big, log_object(records), records)]),
    )
    report = world.reconciler.run(NOW)
    assert report.stats["files_detected_by_athena"] == 1 and report.complete
    key = TupleKey(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", "iam.amazonaws.com:GetUser")
    assert baseline.held == []
    assert baseline.tuples[key].last_seen == at(9, 19)


def test_full_mode_reads_every_object_of_the_window(tmp_path: Path) -> None:
    world = World(tmp_path, ReconcileSettings(athena="full"))
    files = twenty_files(world.bucket)
    for key, _, _ in files:
        world.notify(key)
    report = world.reconciler.run(NOW)
    assert report.stats["files_missed"] == 0 and report.stats["athena_queries"] == 1
    in_window = [(k, b) for k, b, _ in files if delivered_in_window(k)]
    assert report.stats["bytes_scanned"] == sum(len(b) for _, b in in_window) > 0
    assert report.stats["athena_rows"] == 2 * len(in_window)
    assert report.stats["athena_new_tuples"] == 0 and report.stats["alerts"] == 0


def test_athena_failing_does_not_undo_the_reprocessing(world: World) -> None:
    class Broken:
        def run(self, sql: str) -> Any:
            from cloudtrail_anomaly.ports import QueryFailed

            raise QueryFailed("query q-1 FAILED (USER): HIVE_BAD_DATA")

    world.reconciler.table = AthenaTable(SPEC, Broken())
    files = twenty_files(world.bucket)
    world.notify(files[0][0])
    report = world.reconciler.run(NOW)
    assert report.stats["files_reprocessed"] == 20 and report.stats["athena_failed"] == 1
    assert "HIVE_BAD_DATA" in report.athena_error and report.complete


def test_accounts_and_regions_are_discovered_from_the_bucket(world: World) -> None:
    twenty_files(world.bucket)
    world.bucket.put(f"{LAYOUT.root}not-an-account/CloudTrail/x", b"")
    world.bucket.put(f"{LAYOUT.root}{ACCOUNT}/CloudTrail/US-EAST-1;x/x", b"")
    other = log_key(at(9, 45), "eu1", region="eu-west-1")
    world.bucket.put(other, log_object([user_record("s3.amazonaws.com:ListBuckets", at(9, 44))]))
    report = world.reconciler.run(NOW)
    assert report.stats["pairs"] == 2 and report.stats["folders_ignored"] == 2
    assert other in {o.ref.key for o in report.outcomes}  # eu-west-1 has no digests: listed
    assert REGION in {o.ref.key.split("/")[4] for o in report.outcomes}


def test_configured_accounts_and_regions_are_not_listed(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.reconciler = replace_reconciler(world, accounts=(ACCOUNT,), regions=(REGION,))
    twenty_files(world.bucket)
    report = world.reconciler.run(NOW)
    assert report.stats["pairs"] == 1 and report.stats["files_missed"] == 20


def replace_reconciler(world: World, **kw: Any) -> Reconciler:
    r = world.reconciler
    return Reconciler(
        r.processor, r.lister, r.layout, settings=replace(r.settings), table=r.table, **kw
    )


def test_explicit_partitions_for_today_and_tomorrow_every_run(tmp_path: Path) -> None:
    world = World(tmp_path)
    spec = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT, partitioning="explicit")
    world.athena = LocalAthena(tmp_path, spec)
    world.reconciler.table = AthenaTable(spec, world.athena)
    for key, _, _ in twenty_files(world.bucket):
        world.notify(key)
    report = world.reconciler.run(NOW)
    assert report.stats["files_missed"] == 0 and report.stats["bytes_scanned"] == 0
    assert world.athena.selects == []  # nothing read
    (add,) = [s for s in world.athena.statements if "ADD IF NOT EXISTS" in s]
    assert add.count("PARTITION (") == 2
    assert "`day`='2024/06/01'" in add and "`day`='2024/06/02'" in add
    world.reconciler.run(NOW + 3600)
    assert len(world.athena.statements) == 4  # DDL once a container; partitions every run
