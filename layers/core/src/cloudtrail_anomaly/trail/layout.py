"""Where a trail writes in its bucket, and the names that may go into its keys.

`TrailLayout` renders the folders and key prefixes the reconciliation lists and the paths the
Athena queries read: `[prefix/]AWSLogs/[o-id/]<account>/CloudTrail/<region>/yyyy/MM/dd/`. Every
name is checked against a strict pattern first (`SqlInputError` otherwise: what the layout
renders reaches SQL), and a key becomes a path only when `classify_key` accepts it as a log key
under this trail's prefix: nothing from a bucket listing or a digest is used unchecked.

The bucket, prefix and organization-id patterns are read from `names.json`, which
infra/settings.js checks deployment parameters with too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources

from .keys import ACCOUNT_RE, REGION_RE, KeyKind, classify_key

# Names that infra/settings.js checks at package time too: one definition, names.json.
NAMES: dict[str, str] = json.loads(
    resources.files("cloudtrail_anomaly").joinpath("names.json").read_text()
)
# S3 bucket naming rules (no dots next to each other or to a dash, no IP addresses).
BUCKET_RE = re.compile(NAMES["bucket"], re.ASCII)
# A trail's S3 key prefix: folders of letters, digits and `._-`, no empty, `.` or `..` part.
PREFIX_RE = re.compile(NAMES["prefix"], re.ASCII)
ORG_ID_RE = re.compile(NAMES["org_id"], re.ASCII)
DAY_FORMAT = "%Y/%m/%d"  # the folder date (and the Athena `day` partition value)
_STAMP_FORMAT = "%Y%m%dT%H%MZ"


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


def day_value(day: date) -> str:
    return day.strftime(DAY_FORMAT)


def name_stamp(epoch: int) -> str:
    """The delivery minute as a log object's name carries it (`20240601T0005Z`)."""
    return datetime.fromtimestamp(epoch, UTC).strftime(_STAMP_FORMAT)


def days_between(start: int, end: int) -> list[date]:
    """The UTC days that [start, end) touches (epoch seconds), in order."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(start, end - 1), UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


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
        return f"{self.log_folder(account, region, day)}{account}_CloudTrail_{region}_{name_stamp(epoch)}"

    def s3_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def location(self) -> str:
        return self.s3_uri(self.root)

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
