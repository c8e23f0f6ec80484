"""Backfill: a new deployment learns the baseline from history instead of starting blind.

The history is read through Athena (`athena/queries.py`, `tuples_sql`): distinct (account,
identity, action, region) with the first and last eventTime over the last N days. The rows go through the
same detector as live records, in learning mode (`alerting=False`): each tuple is recorded with
its first and last sighting, and each principal's first sighting is its first in the history,
so learning periods and expiry (`forget_days`) count from what really happened. Nothing is
alerted. Rows come ordered by account and identity and are fed a principal at a time, so a
principal's region pseudo-tuples get their earliest sighting.

Run it again and nothing changes but `last_seen`: claims only win over absent tuples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..athena.queries import history_scope, row_records
from ..athena.table import AthenaTable
from ..domain.detector import Detector
from ..domain.model import DAY, PrincipalKey, span_label
from ..ports import Row

DEFAULT_DAYS = 90
CHUNK_ROWS = 20_000


@dataclass(slots=True)
class BackfillReport:
    start: int
    end: int
    stats: Counter[str] = field(default_factory=Counter)
    principals: set[PrincipalKey] = field(default_factory=set)
    bytes_scanned: int = 0

    @property
    def label(self) -> str:
        return span_label(self.start, self.end)


def _principal_group(row: Row) -> tuple[str | None, ...]:
    """What keeps one principal's rows together (the query orders by the same)."""
    return (
        row.get("recipient_account_id"),
        row.get("issuer_arn") or row.get("identity_arn") or row.get("identity_principal_id"),
    )


def backfill(
    table: AthenaTable,
    detector: Detector,
    pairs: Iterable[tuple[str, str]],
    now: int,
    days: int = DEFAULT_DAYS,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> BackfillReport:
    """Learn the last `days` days before `now` (epoch seconds) of these (account, region)
    pairs into the detector's baseline."""
    if detector.alerting:
        raise ValueError("backfill learns history: give it a detector with alerting=False")
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    start, end = now - days * DAY, now
    report = BackfillReport(start, end)
    pair_list = sorted(set(pairs))
    report.stats["pairs"] = len(pair_list)
    if not pair_list:
        return report
    scope = history_scope(pair_list, start, end)
    before = table.bytes_scanned
    table.ensure()
    table.add_partitions(pair_list, [datetime.strptime(d, "%Y/%m/%d").date() for d in scope.days])
    source = f"athena:backfill:{report.label}"
    chunk: list[dict[str, Any]] = []
    group: tuple[str | None, ...] = ()

    def flush() -> None:
        if chunk:
            result = detector.process(chunk, source)
            report.stats.update(result.stats)
            report.principals |= result.principals
            chunk.clear()

    for row in table.tuples(scope, with_path=False):
        report.stats["rows"] += 1
        key = _principal_group(row)
        if len(chunk) >= chunk_rows and key != group:
            flush()
        group = key
        chunk.extend(row_records(row))
    flush()
    report.bytes_scanned = table.bytes_scanned - before
    return report
