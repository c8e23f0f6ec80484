"""The CloudTrail table and the queries on it, run through a `QueryRunner` (the reconciliation's
second line and the backfill's history), counting queries and bytes scanned."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from ..ports import QueryRunner, Row
from .queries import QueryScope, tuples_sql
from .schema import (
    TableSpec,
    add_partitions_sql,
    create_database_sql,
    create_table_sql,
    set_projection_sql,
)


class AthenaTable:
    """The CloudTrail table and the queries on it, through a `QueryRunner`."""

    def __init__(self, spec: TableSpec, runner: QueryRunner) -> None:
        self.spec = spec
        self.runner = runner
        self.bytes_scanned = 0
        self.queries = 0
        self._ready = False

    def _run(self, sql: str) -> list[Row]:
        result = self.runner.run(sql)
        self.queries += 1
        self.bytes_scanned += result.bytes_scanned
        return list(result.rows)

    def ensure(self) -> list[str]:
        """Create the database and the table if absent and bring the projection up to date,
        once per instance (a container). Returns the definition's warnings for the operator,
        the first time."""
        if self._ready:
            return []
        self._run(create_database_sql(self.spec))
        self._run(create_table_sql(self.spec))
        update = set_projection_sql(self.spec)
        if update:
            self._run(update)
        self._ready = True
        return self.spec.warnings()

    def add_partitions(self, pairs: Iterable[tuple[str, str]], days: Iterable[date]) -> None:
        """Explicit partitions (when the table has no projection), idempotently."""
        if self.spec.partitioning == "explicit":
            for sql in add_partitions_sql(self.spec, pairs, days):
                self._run(sql)

    def tuples(self, scope: QueryScope, *, with_path: bool) -> Iterator[Row]:
        result = self.runner.run(tuples_sql(self.spec, scope, with_path=with_path))
        self.queries += 1
        self.bytes_scanned += result.bytes_scanned
        yield from result.rows
