"""Athena's SQL run for real, locally: sqlglot parses it as Athena SQL and transpiles it to
DuckDB, which reads gzipped CloudTrail objects through a view shaped like the Athena table.

`LocalAthena` is a `QueryRunner`. Its table is every log object under a folder laid out as the
bucket is (`<root>/<key>`), with the partition columns (`account`, `region`, `day`) and
`"$path"` (`s3://<bucket>/<key>`) that Athena derives from the object's location. The records
are read with a schema rendered from `athena.schema.CLOUDTRAIL_COLUMNS`, the columns of the DDL, so
a query naming a column the table does not have fails here as it would in Athena.

DDL statements are parsed and recorded, not run (DuckDB has no Hive DDL). Bytes scanned are the
gzipped sizes of the objects the query's WHERE admits on partitions and `"$path"` (Athena reads
whole objects; row-level conditions read them all the same).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from cloudtrail_anomaly.athena.schema import CLOUDTRAIL_COLUMNS, Array, MapOf, Struct, TableSpec
from cloudtrail_anomaly.ports import QueryResult
from cloudtrail_anomaly.trail.keys import KeyKind, classify_key
from cloudtrail_anomaly.trail.layout import day_value
from sqlglot import exp

_ids = itertools.count(1)


def duckdb_type(t: Any) -> str:
    """A DuckDB type with CloudTrail's field names (DuckDB matches JSON keys case-sensitively,
    Hive's JSON SerDe does not: the DDL lower-cases them)."""
    if isinstance(t, Struct):
        return "STRUCT(" + ", ".join(f'"{n}" {duckdb_type(v)}' for n, v in t.fields) + ")"
    if isinstance(t, Array):
        return f"{duckdb_type(t.element)}[]"
    if isinstance(t, MapOf):
        return f"MAP({duckdb_type(t.key)}, {duckdb_type(t.value)})"
    return "VARCHAR"


RECORDS_TYPE = duckdb_type(Struct(CLOUDTRAIL_COLUMNS)) + "[]"


class LocalAthena:
    def __init__(self, root: Path, spec: TableSpec) -> None:
        self.root = root
        self.spec = spec
        self.statements: list[str] = []  # every statement, as run
        self.selects: list[str] = []  # the queries (not DDL)
        self.bytes_scanned = 0

    def _files(self) -> list[tuple[str, str, str, str, str, int]]:
        out = []
        for path in sorted(self.root.rglob("*.json*")):
            key = path.relative_to(self.root).as_posix()
            lk = classify_key(key).log_key
            if classify_key(key).kind is not KeyKind.LOG or lk is None:
                continue
            if not key.startswith(self.spec.layout.root):
                continue
            out.append(
                (
                    str(path),
                    self.spec.layout.s3_uri(key),
                    lk.account_id,
                    lk.region,
                    day_value(lk.day),
                    path.stat().st_size,
                )
            )
        return out

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute(
            'CREATE TABLE files ("local" VARCHAR, "$path" VARCHAR, "account" VARCHAR, '
            '"region" VARCHAR, "day" VARCHAR, "size" BIGINT)'
        )
        files = self._files()
        if files:
            con.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)", files)
        local = "[" + ", ".join("'" + f[0].replace("'", "''") + "'" for f in files) + "]"
        con.execute(f'CREATE SCHEMA "{self.spec.database}"')
        source = (
            f"read_json({local}, columns={{'Records': '{RECORDS_TYPE}'}}, filename=true, "
            "format='auto', maximum_object_size=268435456)"
            if files
            else f"(SELECT CAST([] AS {RECORDS_TYPE}) AS Records, '' AS filename WHERE false)"
        )
        con.execute(
            f"CREATE VIEW {self.spec.qualified} AS "
            'SELECT r.*, f."$path", f."account", f."region", f."day" '
            f"FROM (SELECT unnest(Records) AS r, filename FROM {source}) AS j "
            'JOIN files AS f ON f."local" = j.filename'
        )
        return con

    def scanned(self, con: duckdb.DuckDBPyConnection, statement: exp.Expression) -> int:
        where = statement.args.get("where")
        if where is None:
            total = con.execute("SELECT coalesce(sum(size), 0) FROM files").fetchone()
            return int(total[0]) if total else 0
        # Only what prunes objects counts: partitions and "$path"; row conditions read it all.
        pruning = where.this.transform(
            lambda node: (
                exp.true()
                if isinstance(node, exp.Predicate)
                and not isinstance(node, exp.Connector)
                and any(
                    c.name not in ("$path", "account", "region", "day")
                    for c in node.find_all(exp.Column)
                )
                else node
            )
        )
        sql = f"SELECT coalesce(sum(size), 0) FROM files WHERE {pruning.sql('duckdb')}"
        total = con.execute(sql).fetchone()
        return int(total[0]) if total else 0

    def run(self, sql: str) -> QueryResult:
        self.statements.append(sql)
        statement = sqlglot.parse_one(sql, read="athena")
        query_id = f"local-{next(_ids)}"
        if not isinstance(statement, exp.Query):
            return QueryResult(query_id, 0, [])  # DDL: parsed, recorded, not run
        self.selects.append(sql)
        con = self.connect()
        try:
            cursor = con.execute(statement.sql("duckdb"))
            columns = [d[0] for d in cursor.description or []]
            rows = [
                {c: (None if v is None else str(v)) for c, v in zip(columns, values, strict=True)}
                for values in cursor.fetchall()
            ]
            scanned = self.scanned(con, statement)
        finally:
            con.close()
        self.bytes_scanned += scanned
        return QueryResult(query_id, scanned, rows)


def athena_result_rows(rows: list[dict[str, str | None]], columns: list[str]) -> dict[str, Any]:
    """Rows as Athena's GetQueryResults gives them (header row first), for moto's result queue."""
    header = {"Data": [{"VarCharValue": c} for c in columns]}
    data = [
        {"Data": [({"VarCharValue": r[c]} if r.get(c) is not None else {}) for c in columns]}
        for r in rows
    ]
    return {
        "rows": [header, *data],
        "column_info": [
            {"Name": c, "Label": c, "Type": "varchar", "Nullable": "UNKNOWN"} for c in columns
        ],
    }
