"""The reconciliation Lambda end to end on moto: S3 (the trail's objects and AWS-format digests),
DynamoDB (baseline, outbox, ledger), Athena (results queued through moto's API: the rows DuckDB
computes by running the very query the function sends, on the same objects).

The scenario: 20 objects delivered in an hour, 3 of them never notified. The real-time
function processes the 17 it hears of; the hourly run finds exactly the other 3 missing from
the ledger, reprocesses them, alerts on them once, and re-alerts nothing else.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import boto3
import orjson
import pytest
import requests
from aws_lambda_powertools import Logger, Metrics
from cloudtrail_anomaly.app.reconcile_function import (
    CORE_METRICS,
    ReconcileFunction,
    ReconcileIncomplete,
)
from cloudtrail_anomaly.app.settings import ReconcileFunctionSettings, SettingsError
from cloudtrail_anomaly.athena.queries import (
    RESULT_COLUMNS,
    history_scope,
    missed_scopes,
    tuples_sql,
)
from cloudtrail_anomaly.athena.schema import TableSpec
from cloudtrail_anomaly.domain.model import DAY
from cloudtrail_anomaly.usecases.deliver import DeliverySummary
from cloudtrail_anomaly.usecases.reconcile import ReconcileReport, Window

from tests.athena_local import LocalAthena, athena_result_rows
from tests.dynamo_tables import BASELINE_TABLE, LEDGER_TABLE
from tests.fakes import ListSink
from tests.trail import BUCKET, LAYOUT, ORG, DiskBucket, at, twenty_files

ROOT = Path(__file__).parents[1] / "functions"
REGION = "us-east-1"
TABLE, LEDGER = BASELINE_TABLE, LEDGER_TABLE
MISSED = (4, 11, 17)
SCHEDULED = "2024-06-01T11:00:07Z"  # the window: 09:30-10:30, the digest of 09:40:31 in it
SPEC = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT)
_modules = itertools.count()


@dataclass
class FakeContext:
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_name: str = "cloudtrail-anomaly-reconcile"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:reconcile"
    log_group_name: str = "/aws/lambda/cloudtrail-anomaly-reconcile"
    log_stream_name: str = "2024/06/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 600_000


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ListSink]:
    """A cold start of functions/<name>/handler.py, its sink replaced by a list."""
    n = next(_modules)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"{name}-test-{n}")
    spec = importlib.util.spec_from_file_location(f"{name}_handler_{n}", ROOT / name / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sink = ListSink()
    processor = (
        module.function.processor if name == "realtime" else module.function.reconciler.processor
    )
    processor.sink = sink
    return module, sink


def scheduled(time: str = SCHEDULED) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": REGION,
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cloudtrail-anomaly-hourly"],
        "detail": {},
    }


def s3_event(key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
            }
        ]
    }


def queue_athena(*results: dict[str, Any]) -> None:
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={"region": REGION, "results": list(results)},
        timeout=5,
    )
    assert response.status_code == 201


EMPTY = {"rows": [], "column_info": []}  # what a DDL statement returns


def emf(out: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = orjson.loads(line)
            for spec in doc["_aws"]["CloudWatchMetrics"]:
                for metric in spec["Metrics"]:
                    value = doc[metric["Name"]]
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                        value if isinstance(value, list) else [value]
                    )
    return totals


@pytest.fixture
def cloud(dynamodb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The function's world on moto (conftest's `aws`): its tables, the trail's objects in their
    bucket, Athena's results bucket, and its environment."""
    for name, value in {
        "BASELINE_TABLE": TABLE,
        "LEDGER_TABLE": LEDGER,
        "DYNAMODB_WRITE_CONCURRENCY": "1",  # moto is not thread-safe; DynamoDB is
        "TRAIL_BUCKET": BUCKET,
        "TRAIL_ORG_ID": ORG,
        "ATHENA_OUTPUT_LOCATION": "s3://athena-results/reconcile/",
        "POWERTOOLS_METRICS_NAMESPACE": "CloudTrailAnomalyTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="athena-results")
    disk = DiskBucket(tmp_path / "bucket")
    files = twenty_files(disk)
    for key in disk.stored_keys():
        s3.put_object(Bucket=BUCKET, Key=key, Body=(disk.root / key).read_bytes())
    return {
        "s3": s3,
        "ddb": dynamodb,
        "athena": boto3.client("athena", region_name=REGION),
        "disk": disk,
        "files": files,
    }


def athena_queries(cloud: dict[str, Any]) -> list[str]:
    client = cloud["athena"]
    ids = client.list_query_executions()["QueryExecutionIds"]
    return [client.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]


def test_three_of_twenty_never_notified(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    history, logs = cloud["files"][0], cloud["files"][1:]
    realtime, realtime_sink = load("realtime", monkeypatch)
    realtime.handler(s3_event(history[0]), FakeContext())
    for i, (key, _, _) in enumerate(logs):
        if i not in MISSED:
            assert realtime.handler(s3_event(key), FakeContext()) == {"batchItemFailures": []}
    assert len(realtime_sink.alerts) == 17

    missed = [logs[i][0] for i in MISSED]
    (scope,) = missed_scopes(LAYOUT, missed)
    query = tuples_sql(SPEC, scope, with_path=True)
    rows = list(LocalAthena(cloud["disk"].root, SPEC).run(query).rows)
    assert len(rows) == 6
    queue_athena(EMPTY, EMPTY, EMPTY, athena_result_rows(rows, list(RESULT_COLUMNS)))

    reconcile, sink = load("reconcile", monkeypatch)
    capsys.readouterr()
    result = reconcile.handler(scheduled(), FakeContext())

    assert result == {
        "window": "2024-06-01T09:30Z/2024-06-01T10:30Z",
        "digests_checked": 1,
        "files_expected": 20,
        "files_missed": 3,
        "files_reprocessed": 3,
        "pending_alerts_redelivered": 0,
    }
    metrics = emf(capsys.readouterr().out)
    assert metrics["files_missed"] == 3 and metrics["files_reprocessed"] == 3
    assert metrics["alerts"] == 3 and metrics["athena_queries"] == 1
    assert metrics["athena_rows"] == 6  # moto's queued rows, read back through the runner
    assert metrics["bytes_scanned"] == 0  # what moto reports: the estimate is in the README
    assert "athena_new_tuples" not in metrics  # zero: every tuple was known after reprocessing
    # Each missed object alerted once, by the reconciliation; nothing else alerted again.
    assert sorted(a["source_objects"][0] for a in sink.alerts) == sorted(
        f"s3://{BUCKET}/{k}" for k in missed
    )
    ids = [a["alert_id"] for a in realtime_sink.alerts + sink.alerts]
    assert len(ids) == len(set(ids)) == 20
    # The function sent the table's DDL, then exactly the query DuckDB ran.
    queries = athena_queries(cloud)
    assert queries[0].startswith("CREATE DATABASE IF NOT EXISTS")
    assert queries[1].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS")
    assert queries[3] == query
    ledger = cloud["ddb"].scan(TableName=LEDGER)["Items"]
    assert len(ledger) == 21  # the history object and the 20

    capsys.readouterr()
    again = reconcile.handler(scheduled(), FakeContext())  # the scheduler's retry, say
    assert again["files_missed"] == 0 and len(sink.alerts) == 3
    assert len(athena_queries(cloud)) == 4  # a complete hour queries nothing
    metrics = emf(capsys.readouterr().out)
    assert metrics["bytes_scanned"] == 0 and metrics["files_missed"] == 0


def test_an_unprocessable_object_fails_the_run_for_a_retry(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_OBJECT_BYTES", "1000")  # every object is now too large
    monkeypatch.setenv("RECONCILE_ATHENA", "off")
    reconcile, _ = load("reconcile", monkeypatch)
    with pytest.raises(ReconcileIncomplete, match="too_large"):
        reconcile.handler(scheduled(), FakeContext())


def test_a_one_off_invocation_backfills_the_baseline(
    cloud: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = at(11, 0, 7)
    pairs = [("123456789012", REGION)]
    query = tuples_sql(SPEC, history_scope(pairs, now - 90 * DAY, now), with_path=False)
    rows = list(LocalAthena(cloud["disk"].root, SPEC).run(query).rows)
    queue_athena(EMPTY, EMPTY, EMPTY, athena_result_rows(rows, list(RESULT_COLUMNS[1:])))
    reconcile, sink = load("reconcile", monkeypatch)
    result = reconcile.handler({"backfill_days": 90, "time": SCHEDULED}, FakeContext())
    assert result["rows"] == len(rows) == 40 and result["principals"] == 20
    assert result["new_tuples"] == 40 and sink.alerts == []
    assert athena_queries(cloud)[3] == query
    items = cloud["ddb"].scan(TableName=TABLE)["Items"]
    get_user = [i for i in items if i["sk"]["S"] == "A#iam.amazonaws.com:GetUser"]
    assert len(get_user) == 20
    u00 = next(i for i in get_user if i["pk"]["S"].endswith("user/u00"))
    # first sighting: the history a month before; last: its object in the hour
    assert int(u00["first_seen"]["N"]) == at(8, 30) - 30 * DAY
    assert int(u00["last_seen"]["N"]) == at(8, 41) - 60
    # The objects are now known tuples: the hourly run alerts nothing on them.
    result = reconcile.handler(scheduled(), FakeContext())
    assert result["files_missed"] == 20 and sink.alerts == []


def test_settings_are_validated_at_cold_start() -> None:
    base = {"BASELINE_TABLE": TABLE, "TRAIL_BUCKET": BUCKET}
    assert (
        ReconcileFunctionSettings.from_env(base).realtime.service_name
        == "cloudtrail-anomaly-reconcile"
    )
    for env, named in [
        ({"BASELINE_TABLE": TABLE}, "TRAIL_BUCKET"),
        ({**base, "TRAIL_ORG_ID": "o-x'"}, "TRAIL_ORG_ID"),
        ({**base, "ATHENA_DATABASE": "cloudtrail-anomaly"}, "ATHENA_"),
        ({**base, "ATHENA_PARTITIONS": "crawler"}, "ATHENA_PARTITIONS"),
        ({**base, "RECONCILE_ATHENA": "sometimes"}, "RECONCILE_ATHENA"),
        ({**base, "RECONCILE_LAG_MINUTES": "soon"}, "RECONCILE_LAG_MINUTES"),
        ({**base, "ATHENA_ACCOUNT_PROJECTION": "enum"}, "ATHENA_"),  # enum needs TRAIL_ACCOUNTS
    ]:
        with pytest.raises(SettingsError, match=named):
            ReconcileFunctionSettings.from_env(env)
    ok = ReconcileFunctionSettings.from_env(
        {
            **base,
            "ATHENA_ACCOUNT_PROJECTION": "enum",
            "TRAIL_ACCOUNTS": "111122223333, 444455556666",
        }
    )
    assert ok.accounts == ("111122223333", "444455556666")


def test_a_failed_hourly_redelivery_says_so_as_the_real_time_function_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The hourly run's delivery round fails (HEC down): `delivery_circuit_open` is published
    and logged with the reason, so the outage shows in the hourly run's metrics too."""
    metrics = Metrics(namespace="CloudTrailAnomalyTest", service="reconcile-test")
    function = ReconcileFunction(cast(Any, None), cast(Any, None), Logger("t"), metrics)
    stats: Counter[str] = Counter({name: 0 for name in (*CORE_METRICS, "bytes_scanned")})
    failed = DeliverySummary(still_pending=3, circuit_open="HTTP 503 from Splunk HEC")
    function._publish(ReconcileReport(Window(0, 3600), stats, delivery=failed))
    metrics.flush_metrics()
    out = capsys.readouterr().out
    assert emf(out)["delivery_circuit_open"] == 1
    assert "HTTP 503 from Splunk HEC" in out

    # A round that was skipped (the circuit already open) or succeeded publishes nothing.
    for summary in (DeliverySummary(circuit_open="x", skipped=True), DeliverySummary()):
        function._publish(ReconcileReport(Window(0, 3600), stats, delivery=summary))
        metrics.flush_metrics()
        assert "delivery_circuit_open" not in emf(capsys.readouterr().out)
