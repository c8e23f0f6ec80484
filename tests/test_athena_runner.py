"""The Athena query runner: on moto (results queued through moto's API, executions walked
through QUEUED and RUNNING by moto's state manager), and on a fake client for what moto does
not do (failures with reasons, throttling, pages, a query that never ends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from cloudtrail_anomaly.athena.runner import AthenaQueryRunner
from cloudtrail_anomaly.ports import QueryFailed
from cloudtrail_anomaly.trail.layout import SqlInputError
from moto.moto_api import state_manager

from tests.athena_local import athena_result_rows

REGION = "us-east-1"


@pytest.fixture
def athena(aws: None) -> Iterator[Any]:
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="athena-results")
    yield boto3.client("athena", region_name=REGION)
    state_manager.unset_transition("athena::execution")


def queue_results(*results: dict[str, Any]) -> None:
    """Queue query results in moto (its documented API): each execution takes the next."""
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
        json={"region": REGION, "results": list(results)},
        timeout=5,
    )
    assert response.status_code == 201


def test_a_query_is_waited_for_through_queued_and_running(athena: Any) -> None:
    # moto moves an execution one state on every second GetQueryExecution.
    state_manager.set_transition("athena::execution", {"progression": "manual", "times": 2})
    seen: list[str] = []
    get = athena.get_query_execution

    def spy(**kw: Any) -> Any:
        out = get(**kw)
        seen.append(out["QueryExecution"]["Status"]["State"])
        return out

    athena.get_query_execution = spy
    rows = [{"a": "1", "b": None}, {"a": "2", "b": "x"}]
    queue_results(athena_result_rows(rows, ["a", "b"]))
    pauses: list[float] = []
    runner = AthenaQueryRunner(
        athena,
        workgroup="primary",
        output_location="s3://athena-results/reconcile/",
        sleep=pauses.append,
    )
    result = runner.run("SELECT a, b FROM t")
    assert list(result.rows) == rows  # the header row is not a row; NULL is None
    assert seen == ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert pauses == [0.2, 0.4, 0.8]  # a growing pause while it is queued or running
    execution = get(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["Query"] == "SELECT a, b FROM t"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(
        "s3://athena-results/reconcile/"
    )
    assert result.bytes_scanned == 0  # what moto reports


def test_settings_are_checked(athena: Any) -> None:
    with pytest.raises(SqlInputError):
        AthenaQueryRunner(athena, workgroup="bad group")
    with pytest.raises(SqlInputError):
        AthenaQueryRunner(athena, output_location="https://example.com/x")


class FakeAthena:
    """Answers as Athena does, from a script: a list of states, then pages of rows."""

    def __init__(
        self, states: list[dict[str, Any]], pages: list[dict[str, Any]] | None = None
    ) -> None:
        self.states = states
        self.pages = pages or []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.throttle_starts = 0

    def start_query_execution(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("start", kw))
        if self.throttle_starts:
            self.throttle_starts -= 1
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
                "StartQueryExecution",
            )
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("get", kw))
        status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"QueryExecution": {"QueryExecutionId": "q-1", **status}}

    def get_query_results(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("results", kw))
        token = kw.get("NextToken", "")
        return self.pages[int(token or 0)]

    def stop_query_execution(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("stop", kw))
        return {}


def state(name: str, **extra: Any) -> dict[str, Any]:
    return {"Status": {"State": name, **extra}, "Statistics": {"DataScannedInBytes": 12_345}}


def page(values: list[list[str | None]], token: str = "", header: bool = False) -> dict[str, Any]:
    rows = [{"Data": [{"VarCharValue": v} if v is not None else {} for v in r]} for r in values]
    if header:
        rows.insert(0, {"Data": [{"VarCharValue": "k"}, {"VarCharValue": "v"}]})
    out: dict[str, Any] = {
        "ResultSet": {
            "Rows": rows,
            "ResultSetMetadata": {"ColumnInfo": [{"Name": "k"}, {"Name": "v"}]},
        }
    }
    if token:
        out["NextToken"] = token
    return out


def test_rows_are_read_page_by_page_and_bytes_scanned_reported() -> None:
    fake = FakeAthena(
        [state("RUNNING"), state("SUCCEEDED")],
        [
            page([["a", "1"]], token="1", header=True),
            page([["b", None]], token="2"),
            page([["c", "3"]]),
        ],
    )
    result = AthenaQueryRunner(fake, sleep=lambda s: None).run("SELECT k, v FROM t")  # type: ignore[arg-type]
    assert result.bytes_scanned == 12_345
    assert list(result.rows) == [{"k": "a", "v": "1"}, {"k": "b", "v": None}, {"k": "c", "v": "3"}]
    tokens = [kw.get("NextToken") for name, kw in fake.calls if name == "results"]
    assert tokens == [None, "1", "2"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            state(
                "FAILED",
                StateChangeReason="HIVE_BAD_DATA: malformed JSON",
                AthenaError={"ErrorType": 1002},
            ),
            "FAILED (1002): HIVE_BAD_DATA",
        ),
        (
            state("CANCELLED", StateChangeReason="Query cancelled by user"),
            "CANCELLED: Query cancelled by user",
        ),
        (
            state("FAILED", AthenaError={"ErrorMessage": "Insufficient permissions"}),
            "FAILED: Insufficient permissions",
        ),
    ],
)
def test_failed_and_cancelled_queries_raise_with_the_reason(
    status: dict[str, Any], expected: str
) -> None:
    fake = FakeAthena([state("QUEUED"), status])
    with pytest.raises(QueryFailed, match=expected.replace("(", r"\(").replace(")", r"\)")):
        AthenaQueryRunner(fake, sleep=lambda s: None).run("SELECT 1")  # type: ignore[arg-type]


def test_throttling_is_met_with_a_growing_pause() -> None:
    fake = FakeAthena([state("SUCCEEDED")], [page([])])
    fake.throttle_starts = 3
    pauses: list[float] = []
    AthenaQueryRunner(fake, sleep=pauses.append).run("SELECT 1")  # type: ignore[arg-type]
    assert pauses == [0.2, 0.4, 0.8]
    fake = FakeAthena([state("SUCCEEDED")])
    fake.throttle_starts = 10
    with pytest.raises(ClientError, match="TooManyRequests"):
        AthenaQueryRunner(fake, sleep=lambda s: None, throttle_retries=2).run("SELECT 1")  # type: ignore[arg-type]


def test_a_query_that_runs_too_long_is_cancelled() -> None:
    fake = FakeAthena([state("RUNNING")])
    runner = AthenaQueryRunner(fake, sleep=lambda s: None, max_wait=30, max_pause=5)  # type: ignore[arg-type]
    with pytest.raises(QueryFailed, match="still RUNNING after"):
        runner.run("SELECT 1")
    assert fake.calls[-1] == ("stop", {"QueryExecutionId": "q-1"})
    assert 30 <= runner.waited <= 35
