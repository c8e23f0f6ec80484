"""Athena SQL over a CloudTrail bucket: the table, its partitions, and the two queries we run.

Pure: settings in, SQL text out, and query rows back into CloudTrail-shaped records. Every name
that reaches SQL is checked against a strict pattern first (`SqlInputError` otherwise), and an
S3 key reaches SQL only as the canonical rendering of a log key that `classify_key` accepted
under this trail's prefix: nothing from a bucket listing or a digest goes into SQL unchecked.

The table is the one AWS documents for CloudTrail (every field a string except the structs,
`eventTime` included; the JSON SerDe with CloudTrail's input format), partitioned by `account`,
`region` and `day` (`yyyy/MM/dd`, the key's folder date: the delivery day, not the event day).
Partition projection is the default (`day` a projected date; `account` and `region` either
`injected`, so queries must name them, or an `enum` from the config); `explicit` partitions
are added with `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` for setups that cannot project.

Two queries, one select list: distinct (account, principal identity, action, region) with the
first and last eventTime and the first event's details. The reconciliation query adds
`"$path"` and reads only the objects it names (the missed files; or, in "full" mode, every
object delivered in the window, as ranges of keys); the backfill query reads N days.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any, Literal

from ..ports import Row
from ..trail.keys import ACCOUNT_RE, REGION_RE, KeyKind, classify_key

# Names that infra/settings.js checks at package time too: one definition, names.json.
_NAMES = json.loads(resources.files("cloudtrail_anomaly").joinpath("names.json").read_text())
# Glue database and table names as Athena accepts them unquoted: we keep to lower case.
NAME_RE = re.compile(_NAMES["glue_name"], re.ASCII)
WORKGROUP_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
# S3 bucket naming rules (no dots next to each other or to a dash, no IP addresses).
BUCKET_RE = re.compile(_NAMES["bucket"], re.ASCII)
# A trail's S3 key prefix: folders of letters, digits and `._-`, no empty, `.` or `..` part.
PREFIX_RE = re.compile(_NAMES["prefix"], re.ASCII)
ORG_ID_RE = re.compile(_NAMES["org_id"], re.ASCII)
_OUTPUT_RE = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<prefix>(?:[A-Za-z0-9._=-]+/)*)", re.ASCII)
DAY_FORMAT = "%Y/%m/%d"  # the `day` partition value, as the folder has it
_STAMP_FORMAT = "%Y%m%dT%H%MZ"
# Athena accepts query strings up to 262,144 bytes; stay well under it.
MAX_QUERY_BYTES = 200_000
# Glue rejects a table whose metadata exceeds about 1 MB gzip-compressed; AWS advises keeping
# an enum projection to a few dozen values.
ENUM_ADVISED = 48
GLUE_METADATA_LIMIT = 1_000_000

ACCOUNT_COLUMN, REGION_COLUMN, DAY_COLUMN = "account", "region", "day"


class SqlInputError(ValueError):
    """A value that may not go into SQL; the message says which and why."""


def checked(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    # fullmatch: `$` would let a trailing newline through.
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SqlInputError(f"not a valid {kind}: {value!r}")
    return value


def checked_account(value: str) -> str:
    return checked("account id", value, ACCOUNT_RE)


def checked_region(value: str) -> str:
    return checked("region", value, REGION_RE)


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


def day_value(day: date) -> str:
    return day.strftime(DAY_FORMAT)


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_STAMP_FORMAT)


def days_between(start: int, end: int) -> list[date]:
    """The UTC days that [start, end) touches (epoch seconds), in order."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(start, end - 1), UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- where the trail writes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrailLayout:
    """Where a trail writes in its bucket: `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail/...`."""

    bucket: str
    prefix: str = ""  # the trail's S3 key prefix, without a trailing slash
    org_id: str = ""  # an organization trail's o-id; "" for single-account trails

    def __post_init__(self) -> None:
        checked("S3 bucket name", self.bucket, BUCKET_RE)
        if self.prefix:
            checked("S3 key prefix (letters, digits, ._- and /)", self.prefix, PREFIX_RE)
        if self.org_id:
            checked("organization id", self.org_id, ORG_ID_RE)

    @property
    def root(self) -> str:
        """The key prefix under which each account has its folder."""
        head = f"{self.prefix}/" if self.prefix else ""
        return f"{head}AWSLogs/" + (f"{self.org_id}/" if self.org_id else "")

    def account_root(self, account: str) -> str:
        return f"{self.root}{checked_account(account)}/"

    def log_folder(self, account: str, region: str, day: date) -> str:
        return f"{self.account_root(account)}CloudTrail/{checked_region(region)}/{day_value(day)}/"

    def digest_folder(self, account: str, region: str, day: date) -> str:
        return (
            f"{self.account_root(account)}CloudTrail-Digest/{checked_region(region)}/"
            f"{day_value(day)}/"
        )

    def log_name_start(self, account: str, region: str, epoch: int) -> str:
        """The start of the names of log objects delivered from this minute on (they sort by
        delivery time within a folder)."""
        day = datetime.fromtimestamp(epoch, UTC).date()
        return (
            f"{self.log_folder(account, region, day)}{account}_CloudTrail_{region}_{_stamp(epoch)}"
        )

    def s3_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def location(self) -> str:
        return self.s3_uri(self.root)

    def location_template(self) -> str:
        return self.location() + (
            f"${{{ACCOUNT_COLUMN}}}/CloudTrail/${{{REGION_COLUMN}}}/${{{DAY_COLUMN}}}"
        )

    def log_path(self, key: str) -> str:
        """`s3://bucket/key` of a log object of this trail, for SQL. Raises `SqlInputError`
        unless the key is exactly what CloudTrail writes under this prefix."""
        c = classify_key(key)
        lk = c.log_key
        if c.kind is not KeyKind.LOG or lk is None:
            raise SqlInputError(f"not a CloudTrail log key: {key!r}")
        expected_head = self.log_folder(lk.account_id, lk.region, lk.day)
        name = key[len(expected_head) :]
        if (
            not key.startswith(expected_head)
            or (lk.org_id or "") != self.org_id
            or not re.fullmatch(
                rf"{lk.account_id}_CloudTrail_{lk.region}_[0-9]{{8}}T[0-9]{{4}}Z_[A-Za-z0-9]+\.json(?:\.gz)?",
                name,
            )
        ):
            raise SqlInputError(f"log key outside this trail's layout: {key!r}")
        return self.s3_uri(key)


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
    props.append(("storage.location.template", spec.layout.location_template()))
    return props


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


# -- what a query reads --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryScope:
    """What a query reads: partitions (accounts, regions and days), then, when given, only the
    objects named (`paths`) or the objects whose keys fall in `path_ranges` ([low, high)).
    `since` keeps records whose eventTime is at or after it (ISO 8601, as CloudTrail writes)."""

    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    days: tuple[str, ...]
    paths: tuple[str, ...] = ()
    path_ranges: tuple[tuple[str, str], ...] = ()
    since: str = ""

    def partition_sql(self) -> str:
        return " AND ".join(
            [
                _in(ACCOUNT_COLUMN, self.accounts),
                _in(REGION_COLUMN, self.regions),
                _in(DAY_COLUMN, self.days),
            ]
        )

    def where_sql(self) -> str:
        terms = [self.partition_sql()]
        if self.paths:
            terms.append(_in("$path", self.paths))
        if self.path_ranges:
            terms.append(
                "("
                + " OR ".join(
                    f'("$path" >= {string_literal(lo)} AND "$path" < {string_literal(hi)})'
                    for lo, hi in self.path_ranges
                )
                + ")"
            )
        if self.since:
            terms.append(f"eventtime >= {string_literal(self.since)}")
        return " AND ".join(terms)

    def covers_partition(self, account: str, region: str, day: str) -> bool:
        return account in self.accounts and region in self.regions and day in self.days

    def covers(self, path: str, account: str, region: str, day: str) -> bool:
        """Whether the query reads this object, if Athena prunes objects by `"$path"` as it
        prunes partitions (Trino does for `$path` domains: equality and ranges)."""
        if not self.covers_partition(account, region, day):
            return False
        if self.paths and path not in self.paths:
            return False
        return not self.path_ranges or any(lo <= path < hi for lo, hi in self.path_ranges)


def _in(column: str, values: Sequence[str]) -> str:
    if not values:
        return "FALSE"
    return f'"{column}" IN (' + ", ".join(string_literal(v) for v in values) + ")"


def missed_scopes(
    layout: TrailLayout, keys: Iterable[str], max_paths: int = 1000
) -> list[QueryScope]:
    """Scopes that read exactly these log objects (validated keys), at most `max_paths` each."""
    paths = sorted({layout.log_path(k) for k in keys})
    scopes: list[QueryScope] = []
    for i in range(0, len(paths), max_paths):
        chunk = paths[i : i + max_paths]
        parts = [classify_key(p.split("/", 3)[3]).log_key for p in chunk]
        scopes.append(
            QueryScope(
                accounts=tuple(sorted({p.account_id for p in parts if p})),
                regions=tuple(sorted({p.region for p in parts if p})),
                days=tuple(sorted({day_value(p.day) for p in parts if p})),
                paths=tuple(chunk),
            )
        )
    return scopes


def window_scopes(
    layout: TrailLayout,
    pairs: Iterable[tuple[str, str]],
    start: int,
    end: int,
    max_pairs: int = 400,
) -> list[QueryScope]:
    """Scopes that read every object delivered in [start, end) (minute precision, from the time
    in the object's name) for these (account, region) pairs: one key range per pair and day."""
    pair_list = sorted(set(pairs))
    days = days_between(start, end)
    scopes: list[QueryScope] = []
    for i in range(0, len(pair_list), max_pairs):
        chunk = pair_list[i : i + max_pairs]
        ranges: list[tuple[str, str]] = []
        for account, region in chunk:
            for day in days:
                day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
                lo, hi = max(start, day_start), min(end, day_start + 86_400)
                folder = layout.log_folder(account, region, day)
                name = f"{account}_CloudTrail_{region}_"
                ranges.append(
                    (
                        layout.s3_uri(f"{folder}{name}{_stamp(lo)}"),
                        layout.s3_uri(f"{folder}{name}{_stamp(hi)}"),
                    )
                )
        scopes.append(
            QueryScope(
                accounts=tuple(sorted({a for a, _ in chunk})),
                regions=tuple(sorted({r for _, r in chunk})),
                days=tuple(day_value(d) for d in days),
                path_ranges=tuple(ranges),
            )
        )
    return scopes


def history_scope(pairs: Iterable[tuple[str, str]], start: int, end: int) -> QueryScope:
    """The backfill's scope: objects delivered on the days of [start, end), records whose
    eventTime is at or after `start`."""
    pair_list = sorted(set(pairs))
    return QueryScope(
        accounts=tuple(sorted({a for a, _ in pair_list})),
        regions=tuple(sorted({r for _, r in pair_list})),
        days=tuple(day_value(d) for d in days_between(start, end)),
        since=datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


# -- the tuple queries ---------------------------------------------------------------------------

# (result column, SQL expression, where the value goes in a CloudTrail record)
_KEYS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("recipient_account_id", "recipientaccountid", ("recipientAccountId",)),
    ("aws_region", "awsregion", ("awsRegion",)),
    ("event_source", "eventsource", ("eventSource",)),
    ("event_name", "eventname", ("eventName",)),
    ("identity_type", "useridentity.type", ("userIdentity", "type")),
    ("identity_arn", "useridentity.arn", ("userIdentity", "arn")),
    ("identity_account_id", "useridentity.accountid", ("userIdentity", "accountId")),
    ("identity_principal_id", "useridentity.principalid", ("userIdentity", "principalId")),
    ("identity_user_name", "useridentity.username", ("userIdentity", "userName")),
    ("identity_invoked_by", "useridentity.invokedby", ("userIdentity", "invokedBy")),
    ("identity_provider", "useridentity.identityprovider", ("userIdentity", "identityProvider")),
    (
        "on_behalf_of_user_id",
        "useridentity.onbehalfof.userid",
        ("userIdentity", "onBehalfOf", "userId"),
    ),
    (
        "on_behalf_of_store_arn",
        "useridentity.onbehalfof.identitystorearn",
        ("userIdentity", "onBehalfOf", "identityStoreArn"),
    ),
    (
        "issuer_type",
        "useridentity.sessioncontext.sessionissuer.type",
        ("userIdentity", "sessionContext", "sessionIssuer", "type"),
    ),
    (
        "issuer_arn",
        "useridentity.sessioncontext.sessionissuer.arn",
        ("userIdentity", "sessionContext", "sessionIssuer", "arn"),
    ),
    (
        "issuer_principal_id",
        "useridentity.sessioncontext.sessionissuer.principalid",
        ("userIdentity", "sessionContext", "sessionIssuer", "principalId"),
    ),
    (
        "issuer_account_id",
        "useridentity.sessioncontext.sessionissuer.accountid",
        ("userIdentity", "sessionContext", "sessionIssuer", "accountId"),
    ),
    (
        "issuer_user_name",
        "useridentity.sessioncontext.sessionissuer.username",
        ("userIdentity", "sessionContext", "sessionIssuer", "userName"),
    ),
)
# The first event's details, for the alert (min_by: the values of the earliest record).
_FIRST: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("first_event_id", "eventid", ("eventID",)),
    ("first_error_code", "errorcode", ("errorCode",)),
    ("first_source_ip", "sourceipaddress", ("sourceIPAddress",)),
    ("first_user_agent", "useragent", ("userAgent",)),
    ("first_event_type", "eventtype", ("eventType",)),
    ("first_event_category", "eventcategory", ("eventCategory",)),
    ("first_read_only", "readonly", ("readOnly",)),
)
PATH_COLUMN = "object_path"
RESULT_COLUMNS = (
    PATH_COLUMN,
    *(c for c, _, _ in _KEYS),
    "first_time",
    "last_time",
    "events",
    *(c for c, _, _ in _FIRST),
)


def tuples_sql(spec: TableSpec, scope: QueryScope, *, with_path: bool) -> str:
    """Distinct (account, identity, action, region) with their first and last eventTime, per
    object when `with_path`. Ordered by account and identity, so one principal's rows come
    together (the backfill feeds the detector a principal at a time)."""
    keys = ([f'"$path" AS {PATH_COLUMN}'] if with_path else []) + [
        f"{expr} AS {name}" for name, expr, _ in _KEYS
    ]
    aggregates = [
        "min(eventtime) AS first_time",
        "max(eventtime) AS last_time",
        "count(*) AS events",
        *(f"min_by({expr}, eventtime) AS {name}" for name, expr, _ in _FIRST),
    ]
    group = (['"$path"'] if with_path else []) + [expr for _, expr, _ in _KEYS]
    order = [
        "recipientaccountid",
        "useridentity.sessioncontext.sessionissuer.arn",
        "useridentity.arn",
        "useridentity.principalid",
    ] + (['"$path"'] if with_path else [])
    sql = (
        "SELECT\n  "
        + ",\n  ".join(keys + aggregates)
        + f"\nFROM {spec.qualified}\nWHERE {scope.where_sql()}"
        + "\nGROUP BY "
        + ", ".join(group)
        + "\nORDER BY "
        + ", ".join(order)
    )
    if len(sql.encode()) > MAX_QUERY_BYTES:
        raise SqlInputError(f"query of {len(sql.encode()):,} bytes: split its scope")
    return sql


def row_records(row: Row) -> list[dict[str, Any]]:
    """A result row as CloudTrail records the detector reads: its first event (with the
    details) and, when later, its last, so the detector sees the tuple's span."""
    first: dict[str, Any] = {}
    for name, _, where in (*_KEYS, *_FIRST):
        value = row.get(name)
        if value is None or value == "":
            continue
        node = first
        for part in where[:-1]:
            node = node.setdefault(part, {})
        node[where[-1]] = value
    first["eventTime"] = row.get("first_time")
    records = [first]
    last_time = row.get("last_time")
    if last_time and last_time != first["eventTime"]:
        last = {k: v for k, v in first.items() if k not in {w[0] for _, _, w in _FIRST}}
        last["eventTime"] = last_time
        records.append(last)
    return records
