"""The Athena SQL, tested as SQL: parsed by sqlglot in the Athena dialect, and the tuple query's
logic run for real by DuckDB (after transpiling) on gzipped CloudTrail objects."""

from __future__ import annotations

import gzip
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlglot
from cloudtrail_anomaly.athena.queries import (
    RESULT_COLUMNS,
    QueryScope,
    history_scope,
    missed_scopes,
    row_records,
    tuples_sql,
    window_scopes,
)
from cloudtrail_anomaly.athena.schema import (
    TableSpec,
    add_partitions_sql,
    create_database_sql,
    create_table_sql,
    set_projection_sql,
    string_literal,
)
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.trail.layout import SqlInputError, TrailLayout, days_between
from sqlglot import exp
from sqlglot.tokens import TokenType

from tests.athena_local import LocalAthena
from tests.helpers import FIXTURES

ORG = "o-abcdefghij"
A1, A2 = "111122223333", "444455556666"
LAYOUT = TrailLayout("trail-bucket", "org-trail", ORG)
SINGLE = TrailLayout("trail-bucket")
SPEC = TableSpec("cloudtrail_anomaly", "cloudtrail", LAYOUT)

# The top-level columns of the table AWS documents for CloudTrail in Athena (partition
# projection page), in its order.
AWS_DOCUMENTED_COLUMNS = [
    "eventversion", "useridentity", "eventtime", "eventsource", "eventname", "awsregion",
    "sourceipaddress", "useragent", "errorcode", "errormessage", "requestparameters",
    "responseelements", "additionaleventdata", "requestid", "eventid", "readonly", "resources",
    "eventtype", "apiversion", "recipientaccountid", "serviceeventdetails", "sharedeventid",
    "vpcendpointid", "vpcendpointaccountid", "eventcategory", "addendum",
    "sessioncredentialfromconsole", "edgedevicedetails", "tlsdetails",
]  # fmt: skip


def log_key(
    account: str, region: str, minute: datetime, uid: str, layout: TrailLayout = LAYOUT
) -> str:
    folder = layout.log_folder(account, region, minute.date())
    return f"{folder}{account}_CloudTrail_{region}_{minute:%Y%m%dT%H%M}Z_{uid}.json.gz"


def parse(sql: str) -> exp.Expression:
    statement = sqlglot.parse_one(sql, read="athena")
    assert not isinstance(statement, exp.Command), f"sqlglot could not parse: {sql[:200]}"
    return statement


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: TrailLayout("Trail_Bucket"),
        lambda: TrailLayout("b"),
        lambda: TrailLayout("trail..bucket"),
        lambda: TrailLayout("192.168.1.10"),
        lambda: TrailLayout("trail-bucket", "logs'; DROP TABLE x; --"),
        lambda: TrailLayout("trail-bucket", "../logs"),
        lambda: TrailLayout("trail-bucket", "a//b"),
        lambda: TrailLayout("trail-bucket", "", "o-SHORT"),
        lambda: TableSpec("cloudtrail-anomaly", "t", LAYOUT),
        lambda: TableSpec("db", 'ct"; drop', LAYOUT),
        lambda: TableSpec("db", "t", LAYOUT, accounts=("1234",), account_projection="enum"),
        lambda: TableSpec("db", "t", LAYOUT, regions=("us-east-1'",), region_projection="enum"),
        lambda: TableSpec("db", "t", LAYOUT, account_projection="enum"),  # no values
        lambda: TableSpec("db", "t", LAYOUT, partitioning="crawler"),  # type: ignore[arg-type]
    ],
)
def test_names_are_checked_before_they_reach_sql(make: Any) -> None:
    with pytest.raises(SqlInputError):
        make()


def test_only_this_trails_canonical_log_keys_become_paths() -> None:
    good = log_key(A1, "us-east-1", datetime(2024, 6, 1, 10, 5), "abc123")
    assert LAYOUT.log_path(good) == f"s3://trail-bucket/{good}"
    for bad in [
        good.replace("abc123", "abc'123"),
        good.replace("org-trail/", "other/"),
        good.replace(ORG, "o-zzzzzzzzzz"),
        good.replace("org-trail/", ""),
        good.replace("/CloudTrail/", "/CloudTrail-Digest/"),
        good + "' OR '1'='1",
        "AWSLogs/x",
    ]:
        with pytest.raises(SqlInputError):
            LAYOUT.log_path(bad)


def test_string_literals_cannot_be_ended_early() -> None:
    assert string_literal("it's") == "'it''s'"
    with pytest.raises(SqlInputError):
        string_literal("a\nb")


# -- the table -----------------------------------------------------------------------------------


def struct_fields(kind: exp.DataType) -> dict[str, exp.DataType]:
    return {c.name: c.args["kind"] for c in kind.expressions}


def test_the_table_is_awss_cloudtrail_table_with_projected_partitions() -> None:
    create = parse(create_table_sql(SPEC))
    assert isinstance(create, exp.Create) and create.args["kind"] == "TABLE"
    assert create.args["exists"]  # IF NOT EXISTS: creating it twice is harmless
    schema = create.this
    assert schema.this.name == "cloudtrail" and schema.this.args["db"].name == "cloudtrail_anomaly"
    columns = {c.name: c.args["kind"] for c in schema.expressions}
    documented = set(AWS_DOCUMENTED_COLUMNS)
    assert [c for c in columns if c in documented] == AWS_DOCUMENTED_COLUMNS
    assert set(columns) == documented  # nothing more at the top level
    assert columns["eventtime"].this == exp.DataType.Type.TEXT  # a string, as AWS has it
    identity = struct_fields(columns["useridentity"])
    assert {"type", "arn", "principalid", "accountid", "invokedby", "username"} <= set(identity)
    assert set(struct_fields(identity["onbehalfof"])) == {"userid", "identitystorearn"}
    session = struct_fields(identity["sessioncontext"])
    issuer = struct_fields(session["sessionissuer"])
    assert set(issuer) == {"type", "principalid", "arn", "accountid", "username"}
    assert "identityprovider" in identity  # our one addition (SAML and web identity users)
    props = {
        p.name: p.text("value")
        for p in create.find_all(exp.Property)
        if isinstance(p.this, exp.Literal)
    }
    assert props["projection.enabled"] == "true"
    assert props["projection.day.type"] == "date"
    assert props["projection.day.format"] == "yyyy/MM/dd"
    assert props["projection.day.range"] == "2013/11/01,NOW"
    assert props["projection.account.type"] == props["projection.region.type"] == "injected"
    assert props["storage.location.template"] == (
        "s3://trail-bucket/org-trail/AWSLogs/o-abcdefghij/${account}/CloudTrail/${region}/${day}"
    )
    location = create.find(exp.LocationProperty)
    assert (
        location is not None
        and location.this.name == "s3://trail-bucket/org-trail/AWSLogs/o-abcdefghij/"
    )
    partitioned = create.find(exp.PartitionedByProperty)
    assert partitioned is not None
    assert [c.name for c in partitioned.this.expressions] == ["account", "region", "day"]
    serde = create.find(exp.RowFormatSerdeProperty)
    assert serde is not None and serde.this.name == "org.apache.hive.hcatalog.data.JsonSerDe"
    fmt = create.find(exp.InputOutputFormat)
    assert fmt is not None
    assert fmt.args["input_format"].name == "com.amazon.emr.cloudtrail.CloudTrailInputFormat"
    assert isinstance(parse(create_database_sql(SPEC)), exp.Create)


def test_single_account_trails_and_enum_projection() -> None:
    spec = TableSpec(
        "ct",
        "logs",
        SINGLE,
        account_projection="enum",
        region_projection="enum",
        accounts=(A1, A2),
        regions=("us-east-1", "eu-west-1"),
    )
    props = {p.name: p.text("value") for p in parse(create_table_sql(spec)).find_all(exp.Property)}
    assert props["projection.account.type"] == "enum"
    assert props["projection.account.values"] == f"{A1},{A2}"
    assert props["projection.region.values"] == "us-east-1,eu-west-1"
    assert props["storage.location.template"] == (
        "s3://trail-bucket/AWSLogs/${account}/CloudTrail/${region}/${day}"
    )
    update = parse(set_projection_sql(spec) or "")
    assert isinstance(update, exp.Alter)
    assert spec.warnings() == []


def test_large_enums_warn_and_too_large_ones_are_refused() -> None:
    rng = random.Random(1)
    many = tuple(sorted({f"{rng.randrange(10**11, 10**12)}" for _ in range(200)}))
    spec = TableSpec("ct", "logs", LAYOUT, account_projection="enum", accounts=many)
    (warning,) = spec.warnings()
    assert "Glue" in warning and "injected" in warning
    huge = tuple(f"{rng.randrange(10**11, 10**12)}" for _ in range(250_000))
    with pytest.raises(SqlInputError, match="1 MB"):
        TableSpec("ct", "logs", LAYOUT, account_projection="enum", accounts=huge)


def test_explicit_partitions_for_each_account_region_and_day() -> None:
    spec = TableSpec("ct", "logs", LAYOUT, partitioning="explicit")
    create = parse(create_table_sql(spec))
    assert not [p for p in create.find_all(exp.Property) if p.name.startswith("projection")]
    pairs = [(A1, "us-east-1"), (A2, "us-east-1"), (A2, "eu-west-1")]
    days = [date(2024, 6, 1), date(2024, 6, 2)]
    statements = add_partitions_sql(spec, pairs, days, per_statement=4)
    assert len(statements) == 2  # 6 partitions, 4 a statement
    found = []
    for sql in statements:
        # sqlglot parses Hive's ADD PARTITION only as a command: check it token by token.
        tokens = sqlglot.tokenize(sql, read="hive")
        assert [t.text.upper() for t in tokens[:8]] == [
            "ALTER", "TABLE", "CT", ".", "LOGS", "ADD", "IF", "NOT",
        ]  # fmt: skip
        i = 9
        while i < len(tokens):
            assert (
                tokens[i].text.upper() == "PARTITION"
                and tokens[i + 1].token_type is TokenType.L_PAREN
            )
            values = {}
            j = i + 2
            while tokens[j].token_type is not TokenType.R_PAREN:
                name, eq, value = tokens[j], tokens[j + 1], tokens[j + 2]
                assert eq.token_type is TokenType.EQ and value.token_type is TokenType.STRING
                values[name.text] = value.text
                j += 4 if tokens[j + 3].token_type is TokenType.COMMA else 3
            assert tokens[j + 1].text.upper() == "LOCATION"
            location = tokens[j + 2].text
            assert (
                location
                == f"s3://trail-bucket/{LAYOUT.log_folder(values['account'], values['region'], datetime.strptime(values['day'], '%Y/%m/%d').date())}"
            )
            found.append((values["account"], values["region"], values["day"]))
            i = j + 3
    assert sorted(found) == sorted((a, r, d.strftime("%Y/%m/%d")) for a, r in pairs for d in days)


# -- what a query reads --------------------------------------------------------------------------


def test_window_scopes_are_key_ranges_per_account_region_and_day() -> None:
    start = int(datetime(2024, 6, 1, 23, 30, tzinfo=UTC).timestamp())
    end = start + 3600  # crosses midnight
    (scope,) = window_scopes(LAYOUT, [(A1, "us-east-1")], start, end)
    assert scope.days == ("2024/06/01", "2024/06/02")
    inside = [
        datetime(2024, 6, 1, 23, 30),
        datetime(2024, 6, 1, 23, 59),
        datetime(2024, 6, 2, 0, 0),
        datetime(2024, 6, 2, 0, 29),
    ]
    outside = [
        datetime(2024, 6, 1, 23, 29),
        datetime(2024, 6, 2, 0, 30),
        datetime(2024, 6, 2, 1, 0),
    ]
    for minute in inside + outside:
        key = log_key(A1, "us-east-1", minute, "Zz9")
        assert scope.covers(LAYOUT.s3_uri(key), A1, "us-east-1", minute.strftime("%Y/%m/%d")) == (
            minute in inside
        ), minute
    assert days_between(start, end) == [date(2024, 6, 1), date(2024, 6, 2)]


def test_the_where_clause_reads_what_the_scope_says(tmp_path: Path) -> None:
    """DuckDB evaluates each scope's WHERE over a table of objects; `QueryScope.covers` (what
    the scan estimate uses) must agree with it object for object."""
    rng = random.Random(7)
    objects = []
    for _ in range(400):
        account, region = rng.choice([A1, A2]), rng.choice(["us-east-1", "eu-west-1"])
        minute = datetime(2024, 6, 1, 22, 0) + (
            datetime(2024, 6, 1, 0, 1) - datetime(2024, 6, 1)
        ) * rng.randrange(0, 240)
        key = log_key(account, region, minute, f"u{rng.randrange(10**6)}")
        objects.append((LAYOUT.s3_uri(key), account, region, minute.strftime("%Y/%m/%d")))
    start = int(datetime(2024, 6, 1, 23, 17, tzinfo=UTC).timestamp())
    scopes = [
        *window_scopes(LAYOUT, [(A1, "us-east-1"), (A2, "eu-west-1")], start, start + 3600),
        *missed_scopes(LAYOUT, [o[0].split("/", 3)[3] for o in objects[:25]]),
        history_scope([(A1, "eu-west-1")], start - 86_400, start),
    ]
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE t ("$path" VARCHAR, "account" VARCHAR, "region" VARCHAR, "day" VARCHAR)'
    )
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", objects)
    for scope in scopes:
        where = scope.where_sql().replace(f" AND eventtime >= {string_literal(scope.since)}", "")
        sql = sqlglot.transpile(
            f'SELECT "$path" FROM t WHERE {where}', read="athena", write="duckdb"
        )[0]
        got = {r[0] for r in con.execute(sql).fetchall()}
        assert got == {o[0] for o in objects if scope.covers(*o)}
        assert got  # each scope reads something here


# -- the tuple query -----------------------------------------------------------------------------


def lay_out(root: Path, names: list[str], layout: TrailLayout = LAYOUT) -> list[str]:
    """Copy fixture files under `root` at log keys of this layout (their own accounts, a minute
    apart from 2024-06-01T10:00Z); return the keys."""
    keys = []
    for i, name in enumerate(names):
        data = (FIXTURES / name).read_bytes()
        records = orjson.loads(gzip.decompress(data))["Records"]
        account = next(
            (r["recipientAccountId"] for r in records if r.get("recipientAccountId")), A1
        )
        key = log_key(account, "us-east-1", datetime(2024, 6, 1, 10, i), f"f{i}", layout)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / name, path)
        keys.append(key)
    return keys


FIXTURE_LOGS = [
    *(
        f"stratus-red-team/{p.name}"
        for p in sorted((FIXTURES / "stratus-red-team").glob("*.json.gz"))
    ),
    *(
        f"aws-docs-examples/{p.name}"
        for p in sorted(
            (FIXTURES / "aws-docs-examples").glob(
                "cloudtrail-event-reference-aws-console-sign-in-events__0*.json.gz"
            )
        )
    ),
    "trailscraper/111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json.gz",
    "aws-docs-examples/non-api-aws-service-events__00.json.gz",
]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[LocalAthena, list[str]]]:
    keys = lay_out(tmp_path, FIXTURE_LOGS)
    yield LocalAthena(tmp_path, SPEC), keys


def spans(extraction: Any) -> dict[Any, tuple[int, int]]:
    return {k: (o.first_seen, o.last_seen) for k, o in extraction.observed.items()}


def test_the_tuple_query_gives_the_detectors_tuples(
    local: tuple[LocalAthena, list[str]], tmp_path: Path
) -> None:
    """Run for real (DuckDB, transpiled from Athena SQL) over gzipped fixtures, the query's rows
    turned back into records give the detector the tuples, spans and principals that the
    objects themselves give it."""
    athena, keys = local
    detector = Detector(MemoryBaseline(), AlertPolicy())
    (scope,) = missed_scopes(LAYOUT, keys)
    sql = tuples_sql(SPEC, scope, with_path=True)
    select = parse(sql)
    assert isinstance(select, exp.Select)
    assert [e.alias_or_name for e in select.expressions] == list(RESULT_COLUMNS)
    rows = list(athena.run(sql).rows)
    assert athena.bytes_scanned == sum((tmp_path / k).stat().st_size for k in keys)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_path.setdefault(row["object_path"] or "", []).extend(row_records(row))
    assert set(by_path) == {LAYOUT.s3_uri(k) for k in keys if by_path.get(LAYOUT.s3_uri(k))}
    compared = 0
    for key in keys:
        records = orjson.loads(gzip.decompress((tmp_path / key).read_bytes()))["Records"]
        direct = detector.extract(records)
        via_athena = detector.extract(by_path.get(LAYOUT.s3_uri(key), []))
        assert spans(via_athena) == spans(direct), key
        assert via_athena.principals.keys() == direct.principals.keys()
        for k, obs in direct.observed.items():
            assert via_athena.observed[k].count <= obs.count
            if obs.count == 1:  # the first event's details come with it when unambiguous
                got = via_athena.observed[k].first_event
                assert (got.event_id, got.error_code, got.source_ip, got.read_only) == (
                    obs.first_event.event_id,
                    obs.first_event.error_code,
                    obs.first_event.source_ip,
                    obs.first_event.read_only,
                )
        compared += len(direct.observed)
    assert compared > 50


def test_a_missed_scope_reads_only_the_missed_objects(
    local: tuple[LocalAthena, list[str]], tmp_path: Path
) -> None:
    athena, keys = local
    missed = keys[2:5]
    (scope,) = missed_scopes(LAYOUT, missed)
    rows = list(athena.run(tuples_sql(SPEC, scope, with_path=True)).rows)
    assert {r["object_path"] for r in rows} == {LAYOUT.s3_uri(k) for k in missed}
    assert athena.bytes_scanned == sum((tmp_path / k).stat().st_size for k in missed)


def test_the_backfill_query_spans_history_per_tuple(local: tuple[LocalAthena, list[str]]) -> None:
    athena, keys = local
    pairs = {(k.split("/")[3], "us-east-1") for k in keys}
    # Fixture events are from 2017-2024: read them all, from the days their objects sit in.
    scope = QueryScope(
        accounts=tuple(sorted({a for a, _ in pairs})),
        regions=("us-east-1",),
        days=("2024/06/01",),
        since="2000-01-01T00:00:00Z",
    )
    sql = tuples_sql(SPEC, scope, with_path=False)
    assert "$path" not in sql
    rows = list(athena.run(sql).rows)
    assert len({tuple(r[c] for c in RESULT_COLUMNS[1:19]) for r in rows}) == len(rows)  # distinct
    detector = Detector(MemoryBaseline(), AlertPolicy())
    records: list[dict[str, Any]] = []
    for key in keys:
        records += orjson.loads(gzip.decompress((athena.root / key).read_bytes()))["Records"]
    via_athena = detector.extract([r for row in rows for r in row_records(row)])
    assert spans(via_athena) == spans(detector.extract(records))
    later = history_scope(
        sorted(pairs),
        int(datetime(2024, 5, 1, tzinfo=UTC).timestamp()),
        int(datetime(2024, 6, 2, tzinfo=UTC).timestamp()),
    )
    rows = list(athena.run(tuples_sql(SPEC, later, with_path=False)).rows)
    assert rows and all((r["first_time"] or "") >= "2024-05-01T00:00:00Z" for r in rows)


def test_queries_that_would_be_too_long_are_refused() -> None:
    keys = [log_key(A1, "us-east-1", datetime(2024, 6, 1, 10, 0), f"u{i}") for i in range(3000)]
    with pytest.raises(SqlInputError, match="split"):
        tuples_sql(SPEC, missed_scopes(LAYOUT, keys, max_paths=3000)[0], with_path=True)
    assert len(missed_scopes(LAYOUT, keys)) == 3  # 1,000 a query by default
    for scope in missed_scopes(LAYOUT, keys):
        parse(tuples_sql(SPEC, scope, with_path=True))
