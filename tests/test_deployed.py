"""The handlers as deployed: the packaged template created on moto (tests/deployed.py), objects
written to the trail bucket, its notifications polled from the stack's queue, alerts checked at
a local Splunk HEC, and every AWS call the functions made checked against their roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.athena_local import LocalAthena, athena_result_rows
from tests.deployed import REGION, DeployedStack, Packaged, Poller, deployed
from tests.hec_server import Faults
from tests.trail import LAYOUT, DiskBucket, twenty_files

SCHEDULED = "2024-06-01T11:00:07Z"  # the window 09:30-10:30 holds the digest of 09:40:31


def scheduled(time: str = SCHEDULED) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": REGION,
        "resources": [],
        "detail": {},
    }


@pytest.fixture
def stack(
    packaged: Packaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DeployedStack]:
    with deployed(packaged, tmp_path, monkeypatch) as s:
        yield s


def put_objects(stack: DeployedStack, disk: DiskBucket, keys: list[str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for key in keys:
        s3.put_object(Bucket=stack.bucket, Key=key, Body=(disk.root / key).read_bytes())


def test_the_real_time_path_alerts_once_at_hec_with_the_deployed_permissions(
    stack: DeployedStack, tmp_path: Path
) -> None:
    disk = DiskBucket(tmp_path / "bucket")
    files = twenty_files(disk)
    realtime = stack.load("realtime")
    poller = Poller(stack, realtime)
    # The history first (SQS does not keep order; the alerts below assume it was read first).
    put_objects(stack, disk, [files[0][0]])
    poller.drain()
    put_objects(stack, disk, [k for k, _, _ in files[1:]])
    assert poller.drain() >= 1
    assert poller.queue_depth() == 0 and poller.queue_depth(stack.dlq_url) == 0
    # One alert per object after the history, each once, at the collector (not in a log).
    assert len(stack.hec.alert_counts()) == 20
    assert stack.hec.duplicates() == 0
    # The processed-object ledger was written (on AWS only if the role allows BatchWriteItem).
    assert stack.denied() == []
    assert "dynamodb:BatchWriteItem" in stack.operations("realtime")
    # A redelivered notification is answered from the ledger: no second GET of the object.
    gets = sum(c.operation == "GetObject" for c in stack.recorder.calls)
    put_objects(stack, disk, [files[5][0]])  # the same object notified again
    assert poller.drain() == 1
    assert sum(c.operation == "GetObject" for c in stack.recorder.calls) == gets
    assert len(stack.hec.alert_counts()) == 20 and stack.hec.duplicates() == 0


def test_the_hourly_run_sends_missed_objects_and_pending_alerts_to_hec(
    stack: DeployedStack, tmp_path: Path
) -> None:
    """Three objects never notified, and the collector down while the others were processed:
    the hourly run delivers every alert to Splunk HEC, none to its log. Over 30 s: the outage
    spends the deployed 30 s retry budget once."""
    disk = DiskBucket(tmp_path / "bucket")
    files = twenty_files(disk)
    missed = {files[4][0], files[11][0], files[17][0]}
    notified = [k for k, _, _ in files if k not in missed]
    realtime = stack.load("realtime")
    put_objects(stack, disk, notified[:1])  # the history first: SQS does not keep order
    Poller(stack, realtime).drain()
    put_objects(stack, disk, notified[1:])
    stack.hec.faults.status_first = 10**6  # down: 503 to everything
    stack.hec.faults.retry_after = None
    Poller(stack, realtime).drain()
    assert stack.hec.alert_counts() == {}
    # The missed objects are in the bucket, with the digest that lists all twenty.
    s3 = boto3.client("s3", region_name=REGION)
    for key in [*missed, *disk.stored_keys()]:
        if key not in notified:
            s3.put_object(Bucket=stack.bucket, Key=key, Body=(disk.root / key).read_bytes())
    Poller(stack, realtime).sqs.purge_queue(QueueUrl=stack.queue_url)  # those notifications lost

    stack.hec.faults.status_first = 0  # the collector is back
    queue_missed_rows(stack, disk, sorted(missed))
    reconcile = stack.load("reconcile")
    result = reconcile.invoke(scheduled())
    assert result["files_missed"] == 3
    assert len(stack.hec.alert_counts()) == 20  # 17 pending + 3 missed, at the collector
    assert stack.hec.duplicates() == 0
    assert stack.denied() == []


def queue_missed_rows(stack: DeployedStack, disk: DiskBucket, missed: list[str]) -> None:
    """What Athena answers the reconciliation: DuckDB runs the query on the same objects."""
    import requests
    from cloudtrail_anomaly.athena.queries import RESULT_COLUMNS, missed_scopes, tuples_sql
    from cloudtrail_anomaly.athena.schema import TableSpec

    spec = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT)
    (scope,) = missed_scopes(LAYOUT, missed)
    rows = list(LocalAthena(disk.root, spec).run(tuples_sql(spec, scope, with_path=True)).rows)
    empty = {"rows": [], "column_info": []}
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={
            "region": REGION,
            "results": [empty, empty, empty, athena_result_rows(rows, list(RESULT_COLUMNS))],
        },
        timeout=5,
    )
    assert response.status_code == 201


_ = Faults


@pytest.fixture(scope="module")
def packaged_security_hub(packaged: Packaged, tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """The same build, packaged with Security Hub as the alert destination instead of Splunk."""
    from tests.conftest import HARNESS_PARAMS
    from tests.deployed import packaged_stack

    params = {k: v for k, v in HARNESS_PARAMS.items() if not k.startswith("splunk")}
    params["securityHub"] = "true"
    return packaged_stack(tmp_path_factory.mktemp("securityhub"), params, build=packaged.build)


def test_security_hub_as_the_destination(
    packaged_security_hub: Packaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """securityHub=true: every alert becomes one finding in the deployment's account, through
    the role's BatchImportFindings on the account's default product, and nothing goes to HEC."""
    with deployed(packaged_security_hub, tmp_path, monkeypatch) as stack:
        disk = DiskBucket(tmp_path / "bucket")
        files = twenty_files(disk)
        poller = Poller(stack)
        put_objects(stack, disk, [files[0][0]])
        poller.drain()
        put_objects(stack, disk, [k for k, _, _ in files[1:]])
        poller.drain()
        hub = boto3.client("securityhub", region_name=REGION)
        findings = hub.get_findings(MaxResults=100)["Findings"]
        assert len({f["Id"] for f in findings}) == 20
        assert stack.hec.alert_counts() == {}
        assert "securityhub:BatchImportFindings" in stack.operations("realtime")
        assert stack.denied() == []
