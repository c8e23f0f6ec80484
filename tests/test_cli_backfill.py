"""`cloudtrail-anomaly backfill` on moto: the trail in S3, Athena's rows queued through moto's API
(computed by DuckDB running the query the command sends), the baseline in a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import orjson
import pytest
import requests
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.athena.queries import RESULT_COLUMNS, history_scope, tuples_sql
from cloudtrail_anomaly.athena.schema import TableSpec
from cloudtrail_anomaly.domain.model import DAY
from moto import mock_aws

from tests.athena_local import LocalAthena, athena_result_rows
from tests.trail import ACCOUNT, BUCKET, LAYOUT, ORG, REGION, DiskBucket, at, twenty_files

UNTIL = "2024-06-01T11:00:00Z"
SPEC = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT)


@pytest.fixture
def trail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DiskBucket]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket="athena-results")
        disk = DiskBucket(tmp_path / "bucket")
        twenty_files(disk)
        for key in disk.stored_keys():
            s3.put_object(Bucket=BUCKET, Key=key, Body=(disk.root / key).read_bytes())
        yield disk


def test_backfill_learns_the_history_into_a_state_file(
    trail: DiskBucket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = at(11, 0)
    query = tuples_sql(
        SPEC, history_scope([(ACCOUNT, REGION)], until - 90 * DAY, until), with_path=False
    )
    rows = list(LocalAthena(trail.root, SPEC).run(query).rows)
    empty = {"rows": [], "column_info": []}
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={"results": [empty, empty, empty, athena_result_rows(rows, list(RESULT_COLUMNS[1:]))]},
        timeout=5,
    )
    assert response.status_code == 201
    state = tmp_path / "state.sqlite"
    code = main(
        [
            "backfill", "--days", "90", "--until", UNTIL, "--bucket", BUCKET, "--org-id", ORG,
            "--output-location", "s3://athena-results/backfill/", "--state", str(state),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "1 account-region pair(s), 40 distinct tuple row(s), 40 new tuple(s), 20 principal(s)"
        in err
    )
    athena = boto3.client("athena")
    ids = athena.list_query_executions()["QueryExecutionIds"]
    sent = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]
    assert sent[3] == query

    assert main(["explain", "*:user/u07", "--state", str(state), "--json"]) == 0
    (doc,) = orjson.loads(capsys.readouterr().out)
    assert doc["first_seen"] == "2024-05-02T08:30:07Z"  # its first sighting: a month before
    assert {a["action"] for a in doc["actions"]} == {
        "iam.amazonaws.com:GetUser",
        "iam.amazonaws.com:CreateThing07",
    }
    assert doc["regions"] == [REGION]


@pytest.mark.parametrize(
    "argv",
    [
        ["--bucket", "Bad_Bucket", "--state", "x"],
        ["--bucket", BUCKET, "--org-id", "o-'x", "--state", "x"],
        ["--bucket", BUCKET, "--days", "0", "--state", "x"],
        ["--bucket", BUCKET, "--until", "2024-06-01", "--state", "x"],
        ["--bucket", BUCKET, "--account-projection", "enum", "--state", "x"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backfill", *argv]) == 2
    assert "error:" in capsys.readouterr().err


def test_backfill_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["backfill", "--bucket", BUCKET])
    assert "--state" in capsys.readouterr().err
