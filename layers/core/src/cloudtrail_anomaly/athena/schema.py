"""The CloudTrail table in Athena: its columns, its DDL, its partitions, and the checks on every
name that goes into SQL.

Pure: settings in, SQL text out. Every name that reaches SQL is checked against a strict
pattern first (`SqlInputError` otherwise); the trail's folders come from `TrailLayout`
(trail/layout.py), which checks its own.

The table is the one AWS documents for CloudTrail (every field a string except the structs,
`eventTime` included; the JSON SerDe with CloudTrail's input format), partitioned by `account`,
`region` and `day` (`yyyy/MM/dd`, the key's folder date: the delivery day, not the event day).
Partition projection is the default (`day` a projected date; `account` and `region` either
`injected`, so queries must name them, or an `enum` from the config); `explicit` partitions
are added with `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` for setups that cannot project.
The queries on it are in athena/queries.py.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from ..trail.layout import (
    BUCKET_RE,
    NAMES,
    SqlInputError,
    TrailLayout,
    checked,
    checked_account,
    checked_region,
    day_value,
)

# Glue database and table names as Athena accepts them unquoted: we keep to lower case.
NAME_RE = re.compile(NAMES["glue_name"], re.ASCII)
WORKGROUP_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_OUTPUT_RE = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<prefix>(?:[A-Za-z0-9._=-]+/)*)", re.ASCII)
# Glue rejects a table whose metadata exceeds about 1 MB gzip-compressed; AWS advises keeping
# an enum projection to a few dozen values.
ENUM_ADVISED = 48
GLUE_METADATA_LIMIT = 1_000_000

ACCOUNT_COLUMN, REGION_COLUMN, DAY_COLUMN = "account", "region", "day"


def checked_output_location(value: str) -> str:
    """An Athena result location: `s3://bucket/` or `s3://bucket/prefix/`."""
    m = _OUTPUT_RE.fullmatch(value)
    if m is None or not BUCKET_RE.fullmatch(m["bucket"]):
        raise SqlInputError(
            f"not an S3 location for query results (s3://bucket/prefix/): {value!r}"
        )
    return value


def string_literal(value: str) -> str:
    """A SQL string literal. Callers pass checked values; quotes are still doubled, and control
    characters refused, so that no value can end the literal."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise SqlInputError(f"control character in a SQL string: {value!r}")
    return "'" + value.replace("'", "''") + "'"


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Struct:
    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Array:
    element: Any


@dataclass(frozen=True, slots=True)
class MapOf:
    key: Any
    value: Any


S = "string"

# The CloudTrail record as AWS documents its Athena table, in its order, with the names as
# CloudTrail writes them (the DDL lower-cases them; the JSON SerDe matches case-insensitively).
# One addition: userIdentity.identityProvider, which SAMLUser and WebIdentityUser principals
# need (docs/principals.md); an absent field reads as NULL, so it costs nothing elsewhere.
CLOUDTRAIL_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("eventVersion", S),
    (
        "userIdentity",
        Struct(
            (
                ("type", S),
                ("principalId", S),
                ("arn", S),
                ("accountId", S),
                ("invokedBy", S),
                ("accessKeyId", S),
                ("userName", S),
                ("onBehalfOf", Struct((("userId", S), ("identityStoreArn", S)))),
                (
                    "sessionContext",
                    Struct(
                        (
                            ("attributes", Struct((("mfaAuthenticated", S), ("creationDate", S)))),
                            (
                                "sessionIssuer",
                                Struct(
                                    (
                                        ("type", S),
                                        ("principalId", S),
                                        ("arn", S),
                                        ("accountId", S),
                                        ("userName", S),
                                    )
                                ),
                            ),
                            ("ec2RoleDelivery", S),
                            (
                                "webIdFederationData",
                                Struct((("federatedProvider", S), ("attributes", MapOf(S, S)))),
                            ),
                        )
                    ),
                ),
                ("identityProvider", S),
            )
        ),
    ),
    ("eventTime", S),
    ("eventSource", S),
    ("eventName", S),
    ("awsRegion", S),
    ("sourceIPAddress", S),
    ("userAgent", S),
    ("errorCode", S),
    ("errorMessage", S),
    ("requestParameters", S),
    ("responseElements", S),
    ("additionalEventData", S),
    ("requestID", S),
    ("eventID", S),
    ("readOnly", S),
    ("resources", Array(Struct((("ARN", S), ("accountId", S), ("type", S))))),
    ("eventType", S),
    ("apiVersion", S),
    ("recipientAccountId", S),
    ("serviceEventDetails", S),
    ("sharedEventID", S),
    ("vpcEndpointId", S),
    ("vpcEndpointAccountId", S),
    ("eventCategory", S),
    (
        "addendum",
        Struct(
            (
                ("reason", S),
                ("updatedFields", S),
                ("originalRequestID", S),
                ("originalEventID", S),
            )
        ),
    ),
    ("sessionCredentialFromConsole", S),
    ("edgeDeviceDetails", S),
    (
        "tlsDetails",
        Struct((("tlsVersion", S), ("cipherSuite", S), ("clientProvidedHostHeader", S))),
    ),
)


def hive_type(t: Any) -> str:
    """A column type in the DDL's (Hive) syntax."""
    if isinstance(t, Struct):
        return "STRUCT<" + ", ".join(f"{n.lower()}: {hive_type(v)}" for n, v in t.fields) + ">"
    if isinstance(t, Array):
        return f"ARRAY<{hive_type(t.element)}>"
    if isinstance(t, MapOf):
        return f"MAP<{hive_type(t.key)}, {hive_type(t.value)}>"
    return "STRING"


Partitioning = Literal["projection", "explicit"]
Projection = Literal["injected", "enum"]


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The Glue database and table over one trail, and how its partitions are found."""

    database: str
    table: str
    layout: TrailLayout
    partitioning: Partitioning = "projection"
    account_projection: Projection = "injected"
    region_projection: Projection = "injected"
    accounts: tuple[str, ...] = ()  # the enum's values, and the explicit partitions' accounts
    regions: tuple[str, ...] = ()
    projection_start: date = date(2013, 11, 1)  # CloudTrail's first year

    def __post_init__(self) -> None:
        checked("Glue database name (a-z, 0-9, _)", self.database, NAME_RE)
        checked("Glue table name (a-z, 0-9, _)", self.table, NAME_RE)
        if self.partitioning not in ("projection", "explicit"):
            raise SqlInputError(
                f"partitioning must be projection or explicit: {self.partitioning!r}"
            )
        for name, kind in (
            ("account", self.account_projection),
            ("region", self.region_projection),
        ):
            if kind not in ("injected", "enum"):
                raise SqlInputError(f"{name} projection must be injected or enum: {kind!r}")
        for a in self.accounts:
            checked_account(a)
        for r in self.regions:
            checked_region(r)
        if self.partitioning == "projection":
            if self.account_projection == "enum" and not self.accounts:
                raise SqlInputError("an enum account projection needs the list of accounts")
            if self.region_projection == "enum" and not self.regions:
                raise SqlInputError("an enum region projection needs the list of regions")
            size = len(gzip.compress(create_table_sql(self).encode()))
            if size > GLUE_METADATA_LIMIT:
                raise SqlInputError(
                    f"the table definition is {size:,} bytes gzipped, beyond Glue's ~1 MB "
                    "metadata limit: use the injected projection for accounts"
                )

    @property
    def qualified(self) -> str:
        """The table's name in queries (Trino quoting)."""
        return f'"{self.database}"."{self.table}"'

    @property
    def hive_qualified(self) -> str:
        """The table's name in DDL (Hive quoting)."""
        return f"`{self.database}`.`{self.table}`"

    def warnings(self) -> list[str]:
        """What an operator should know about this definition (logged once at setup)."""
        out: list[str] = []
        if self.partitioning != "projection":
            return out
        for name, kind, values in (
            ("account", self.account_projection, self.accounts),
            ("region", self.region_projection, self.regions),
        ):
            if kind == "enum" and len(values) > ENUM_ADVISED:
                out.append(
                    f"{len(values)} {name} values in an enum projection: AWS advises a few dozen "
                    "at most (the table's metadata must stay under Glue's ~1 MB gzipped); "
                    f"consider the injected projection for {name}"
                )
        return out


def create_database_sql(spec: TableSpec) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{spec.database}`"


def _projection_properties(spec: TableSpec) -> list[tuple[str, str]]:
    props = [
        ("projection.enabled", "true"),
        (f"projection.{DAY_COLUMN}.type", "date"),
        (f"projection.{DAY_COLUMN}.format", "yyyy/MM/dd"),
        (f"projection.{DAY_COLUMN}.range", f"{day_value(spec.projection_start)},NOW"),
        (f"projection.{DAY_COLUMN}.interval", "1"),
        (f"projection.{DAY_COLUMN}.interval.unit", "DAYS"),
    ]
    for column, kind, values in (
        (ACCOUNT_COLUMN, spec.account_projection, spec.accounts),
        (REGION_COLUMN, spec.region_projection, spec.regions),
    ):
        props.append((f"projection.{column}.type", kind))
        if kind == "enum":
            props.append((f"projection.{column}.values", ",".join(values)))
    props.append(("storage.location.template", _location_template(spec.layout)))
    return props


def _location_template(layout: TrailLayout) -> str:
    """Where projection finds a partition's objects: the trail's folders, named by column."""
    return layout.location() + (
        f"${{{ACCOUNT_COLUMN}}}/CloudTrail/${{{REGION_COLUMN}}}/${{{DAY_COLUMN}}}"
    )


def create_table_sql(spec: TableSpec) -> str:
    """`CREATE EXTERNAL TABLE IF NOT EXISTS` over the trail: AWS's CloudTrail table."""
    columns = ",\n".join(f"  `{name.lower()}` {hive_type(t)}" for name, t in CLOUDTRAIL_COLUMNS)
    parts = [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {spec.hive_qualified} (\n{columns}\n)",
        f"PARTITIONED BY (`{ACCOUNT_COLUMN}` string, `{REGION_COLUMN}` string, `{DAY_COLUMN}` string)",
        "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
        "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'",
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
        f"LOCATION {string_literal(spec.layout.location())}",
    ]
    if spec.partitioning == "projection":
        props = ",\n".join(
            f"  {string_literal(k)}={string_literal(v)}" for k, v in _projection_properties(spec)
        )
        parts.append(f"TBLPROPERTIES (\n{props}\n)")
    return "\n".join(parts)


def set_projection_sql(spec: TableSpec) -> str | None:
    """Bring an existing table's projection up to date (CREATE ... IF NOT EXISTS leaves an old
    definition as it was): the enum values and the location template. None without projection."""
    if spec.partitioning != "projection":
        return None
    props = ", ".join(
        f"{string_literal(k)}={string_literal(v)}" for k, v in _projection_properties(spec)
    )
    return f"ALTER TABLE {spec.hive_qualified} SET TBLPROPERTIES ({props})"


def add_partitions_sql(
    spec: TableSpec,
    pairs: Iterable[tuple[str, str]],
    days: Iterable[date],
    per_statement: int = 100,
) -> list[str]:
    """Explicit partitions for these (account, region) pairs and days, idempotently, a bounded
    number per statement."""
    specs: list[str] = []
    day_list = sorted(set(days))
    for account, region in sorted(set(pairs)):
        for day in day_list:
            folder = spec.layout.s3_uri(spec.layout.log_folder(account, region, day))
            specs.append(
                f"PARTITION (`{ACCOUNT_COLUMN}`={string_literal(account)}, "
                f"`{REGION_COLUMN}`={string_literal(region)}, "
                f"`{DAY_COLUMN}`={string_literal(day_value(day))}) "
                f"LOCATION {string_literal(folder)}"
            )
    return [
        f"ALTER TABLE {spec.hive_qualified} ADD IF NOT EXISTS\n"
        + "\n".join(specs[i : i + per_statement])
        for i in range(0, len(specs), per_statement)
    ]
