"""The two queries we run on the CloudTrail table, what they read, and their rows as records.

One select list: distinct (account, principal identity, action, region) with the first and last
eventTime and the first event's details. The reconciliation query adds `"$path"` and reads only
the objects it names (the missed files; or, in "full" mode, every object delivered in the
window, as ranges of keys); the backfill query reads N days. A `QueryScope` says what a query
reads; `row_records` turns a result row back into CloudTrail-shaped records for the detector.
Object paths reach SQL only through `TrailLayout.log_path` (a checked log key of this trail).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..ports import Row
from ..trail.keys import classify_key
from ..trail.layout import SqlInputError, TrailLayout, day_value, days_between, name_stamp
from .schema import ACCOUNT_COLUMN, DAY_COLUMN, REGION_COLUMN, TableSpec, string_literal

# Athena accepts query strings up to 262,144 bytes; stay well under it.
MAX_QUERY_BYTES = 200_000


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
                        layout.s3_uri(f"{folder}{name}{name_stamp(lo)}"),
                        layout.s3_uri(f"{folder}{name}{name_stamp(hi)}"),
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

# (result column, where the value is in a CloudTrail record); the SQL expression is that path
# as the table's columns name it (`sql_expr`: lower case, dot-separated).
_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("recipient_account_id", ("recipientAccountId",)),
    ("aws_region", ("awsRegion",)),
    ("event_source", ("eventSource",)),
    ("event_name", ("eventName",)),
    ("identity_type", ("userIdentity", "type")),
    ("identity_arn", ("userIdentity", "arn")),
    ("identity_account_id", ("userIdentity", "accountId")),
    ("identity_principal_id", ("userIdentity", "principalId")),
    ("identity_user_name", ("userIdentity", "userName")),
    ("identity_invoked_by", ("userIdentity", "invokedBy")),
    ("identity_provider", ("userIdentity", "identityProvider")),
    ("on_behalf_of_user_id", ("userIdentity", "onBehalfOf", "userId")),
    ("on_behalf_of_store_arn", ("userIdentity", "onBehalfOf", "identityStoreArn")),
    ("issuer_type", ("userIdentity", "sessionContext", "sessionIssuer", "type")),
    ("issuer_arn", ("userIdentity", "sessionContext", "sessionIssuer", "arn")),
    ("issuer_principal_id", ("userIdentity", "sessionContext", "sessionIssuer", "principalId")),
    ("issuer_account_id", ("userIdentity", "sessionContext", "sessionIssuer", "accountId")),
    ("issuer_user_name", ("userIdentity", "sessionContext", "sessionIssuer", "userName")),
)
# The first event's details, for the alert (min_by: the values of the earliest record).
_FIRST: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("first_event_id", ("eventID",)),
    ("first_error_code", ("errorCode",)),
    ("first_source_ip", ("sourceIPAddress",)),
    ("first_user_agent", ("userAgent",)),
    ("first_event_type", ("eventType",)),
    ("first_event_category", ("eventCategory",)),
    ("first_read_only", ("readOnly",)),
)


def sql_expr(where: tuple[str, ...]) -> str:
    """The column of a record's field in the CloudTrail table: `userIdentity.sessionContext`
    is `useridentity.sessioncontext` (Athena lower-cases names)."""
    return ".".join(where).lower()


PATH_COLUMN = "object_path"
RESULT_COLUMNS = (
    PATH_COLUMN,
    *(c for c, _ in _KEYS),
    "first_time",
    "last_time",
    "events",
    *(c for c, _ in _FIRST),
)


def tuples_sql(spec: TableSpec, scope: QueryScope, *, with_path: bool) -> str:
    """Distinct (account, identity, action, region) with their first and last eventTime, per
    object when `with_path`. Ordered by account and identity, so one principal's rows come
    together (the backfill feeds the detector a principal at a time)."""
    keys = ([f'"$path" AS {PATH_COLUMN}'] if with_path else []) + [
        f"{sql_expr(where)} AS {name}" for name, where in _KEYS
    ]
    aggregates = [
        "min(eventtime) AS first_time",
        "max(eventtime) AS last_time",
        "count(*) AS events",
        *(f"min_by({sql_expr(where)}, eventtime) AS {name}" for name, where in _FIRST),
    ]
    group = (['"$path"'] if with_path else []) + [sql_expr(where) for _, where in _KEYS]
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
    for name, where in (*_KEYS, *_FIRST):
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
        last = {k: v for k, v in first.items() if k not in {w[0] for _, w in _FIRST}}
        last["eventTime"] = last_time
        records.append(last)
    return records
