"""Backfill on fakes: history through Athena's SQL (run by DuckDB) into a memory baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloudtrail_anomaly.athena.schema import TableSpec
from cloudtrail_anomaly.athena.table import AthenaTable
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.extract import REGION_PREFIX
from cloudtrail_anomaly.domain.model import DAY, PrincipalKey, TupleKey
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.usecases.backfill import backfill

from tests.athena_local import LocalAthena
from tests.builders import user_record
from tests.helpers import DeferringBaseline
from tests.trail import ACCOUNT, LAYOUT, REGION, DiskBucket, at, log_key, log_object

SPEC = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT, partitioning="explicit")


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def test_history_becomes_the_baseline_first_sightings_included(tmp_path: Path) -> None:
    bucket = DiskBucket(tmp_path)
    for day in range(0, 100, 5):  # an object every 5 days, 100 days back
        t = at(9, 0) - day * DAY
        records = [
            user_record("s3.amazonaws.com:ListBuckets", t - 10 - i, f"u{i}") for i in range(6)
        ]
        if day % 10 == 0:
            records.append(user_record("iam.amazonaws.com:ListUsers", t - 5, "u0"))
        bucket.put(log_key(t, f"d{day}"), log_object(records))
    baseline = MemoryBaseline()
    athena = LocalAthena(tmp_path, SPEC)
    learner = Detector(baseline, AlertPolicy(), alerting=False)
    report = backfill(
        AthenaTable(SPEC, athena), learner, [(ACCOUNT, REGION)], at(10, 0), 90, chunk_rows=3
    )
    assert report.stats["rows"] == 7 and report.stats["new_tuples"] == 7
    assert len(report.principals) == 6 and baseline.outbox.pending() == []
    # Explicit partitions for the 90 days were added before the query.
    adds = [s for s in athena.statements if "ADD IF NOT EXISTS" in s]
    assert sum(s.count("PARTITION (") for s in adds) == 91
    # The objects of days 0..85 are in the 90 days; the records of day 90 are just before them.
    first = at(9, 0) - 85 * DAY
    u0 = TupleKey(ACCOUNT, user("u0"), "s3.amazonaws.com:ListBuckets")
    assert baseline.tuples[u0].first_seen == first - 10
    assert baseline.tuples[u0].last_seen == at(9, 0) - 10
    assert baseline.tuples[u0].expires_at == at(9, 0) - 10 + 90 * DAY
    listed = TupleKey(ACCOUNT, user("u0"), "iam.amazonaws.com:ListUsers")
    assert baseline.tuples[listed].first_seen == at(9, 0) - 80 * DAY - 5
    region = TupleKey(ACCOUNT, user("u0"), REGION_PREFIX + REGION)
    assert baseline.tuples[region].first_seen == first - 10  # chunks cut between principals
    assert baseline.principals[PrincipalKey(ACCOUNT, user("u5"))] == first - 15
    again = backfill(AthenaTable(SPEC, athena), learner, [(ACCOUNT, REGION)], at(10, 0), 90)
    assert again.stats["new_tuples"] == 0  # a second run changes nothing


def test_backfill_never_alerts(tmp_path: Path) -> None:
    table = AthenaTable(SPEC, LocalAthena(tmp_path, SPEC))
    with pytest.raises(ValueError, match="alerting=False"):
        backfill(table, Detector(MemoryBaseline(), AlertPolicy()), [(ACCOUNT, REGION)], at(10, 0))
    learner = Detector(MemoryBaseline(), AlertPolicy(), alerting=False)
    with pytest.raises(ValueError, match="days"):
        backfill(table, learner, [(ACCOUNT, REGION)], at(10, 0), 0)
    assert backfill(table, learner, [], at(10, 0)).stats["rows"] == 0


def test_refreshes_the_baseline_holds_back_are_written_by_the_end(tmp_path: Path) -> None:
    bucket = DiskBucket(tmp_path)
    for day in range(0, 60, 5):
        t = at(9, 0) - day * DAY
        bucket.put(
            log_key(t, f"d{day}"), log_object([user_record("s3.amazonaws.com:ListBuckets", t)])
        )
    table = AthenaTable(SPEC, LocalAthena(tmp_path, SPEC))
    baseline = DeferringBaseline()  # as DynamoDB's: holds refreshes only inside a batch
    learner = Detector(baseline, AlertPolicy(), alerting=False)
    backfill(table, learner, [(ACCOUNT, REGION)], at(10, 0) - 30 * DAY, 30)
    key = TupleKey(ACCOUNT, user("alice"), "s3.amazonaws.com:ListBuckets")
    assert baseline.tuples[key].last_seen == at(9, 0) - 30 * DAY
    # The next 30 days: a month later than what is known, so the tuple is refreshed.
    report = backfill(table, learner, [(ACCOUNT, REGION)], at(10, 0), 30)
    assert report.stats["tuples_refreshed"] > 0
    assert baseline.held == []
    assert baseline.tuples[key].last_seen == at(9, 0)
