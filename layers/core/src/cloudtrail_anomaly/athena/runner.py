"""The `QueryRunner` on Athena: start a query, wait for it, page through its rows.

Waiting is polling with a growing pause through QUEUED and RUNNING, up to a total wait; a query
that ends FAILED or CANCELLED raises `QueryFailed` with Athena's reason. Athena's throttling
(`TooManyRequestsException`, `ThrottlingException`) is met with a growing pause and a retry, on
top of botocore's own retries. The workgroup and the result location are settings; the bytes
the query scanned (what Athena bills, at least 10 MB a query) come back with the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from ..ports import QueryFailed, QueryResult, Row
from ..trail.layout import checked
from .schema import WORKGROUP_RE, checked_output_location

if TYPE_CHECKING:
    from mypy_boto3_athena.client import AthenaClient

T = TypeVar("T")
_THROTTLED = {"TooManyRequestsException", "ThrottlingException"}
_RUNNING = {"QUEUED", "RUNNING"}


class AthenaQueryRunner:
    def __init__(
        self,
        client: AthenaClient,
        *,
        workgroup: str = "primary",
        output_location: str = "",
        first_pause: float = 0.2,
        max_pause: float = 5.0,
        max_wait: float = 600.0,
        throttle_retries: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.workgroup = checked("Athena workgroup name", workgroup, WORKGROUP_RE)
        self.output_location = checked_output_location(output_location) if output_location else ""
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.max_wait = max_wait
        self.throttle_retries = throttle_retries
        self.sleep = sleep
        self.waited = 0.0  # seconds spent pausing, over this runner's life (for tests and logs)

    def _pause(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def _call(self, call: Callable[[], T]) -> T:
        """One API call, paused and retried while Athena says it is throttling us."""
        pause = self.first_pause
        for attempt in range(self.throttle_retries + 1):
            try:
                return call()
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in _THROTTLED or attempt == self.throttle_retries:
                    raise
            self._pause(pause)
            pause = min(pause * 2, self.max_pause)
        raise AssertionError("unreachable")

    def start(self, sql: str) -> str:
        kwargs: dict[str, Any] = {"QueryString": sql, "WorkGroup": self.workgroup}
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        started = self._call(lambda: self.client.start_query_execution(**kwargs))
        return started["QueryExecutionId"]

    def wait(self, query_id: str) -> dict[str, Any]:
        """The finished execution; `QueryFailed` when it failed, was cancelled, or outlasted
        `max_wait` (then it is cancelled)."""
        pause, waited = self.first_pause, 0.0
        while True:
            execution: Any = self._call(
                lambda: self.client.get_query_execution(QueryExecutionId=query_id)
            )["QueryExecution"]
            status = execution.get("Status", {})
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return dict(execution)
            if state not in _RUNNING:
                error = status.get("AthenaError", {})
                reason = status.get("StateChangeReason") or error.get("ErrorMessage") or "no reason"
                kind = f" ({error['ErrorType']})" if "ErrorType" in error else ""
                raise QueryFailed(f"query {query_id} {state}{kind}: {reason}")
            if waited >= self.max_wait:
                self._call(lambda: self.client.stop_query_execution(QueryExecutionId=query_id))
                raise QueryFailed(f"query {query_id} still {state} after {waited:.0f} s: cancelled")
            self._pause(pause)
            waited += pause
            pause = min(pause * 2, self.max_pause)

    def rows(self, query_id: str) -> Iterator[Row]:
        """The result rows as {column: value}, page by page (None for NULL)."""
        token = ""
        columns: list[str] = []
        first_page = True
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page: Any = self._call(partial(self.client.get_query_results, **kwargs))
            result = page.get("ResultSet", {})
            if not columns:
                columns = [
                    c["Name"] for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                ]
            data = [
                [d.get("VarCharValue") for d in r.get("Data", [])] for r in result.get("Rows", [])
            ]
            if first_page and data and data[0] == columns:
                data = data[1:]  # a SELECT's first row holds the column names
            first_page = False
            for values in data:
                yield dict(zip(columns, values, strict=False))
            token = page.get("NextToken", "")
            if not token:
                return

    def run(self, sql: str) -> QueryResult:
        query_id = self.start(sql)
        execution = self.wait(query_id)
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
        return QueryResult(query_id, scanned, self.rows(query_id))
