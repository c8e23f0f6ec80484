"""Parse and classify the S3 keys CloudTrail writes.

CloudTrail delivers to `[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>` and,
for an organization trail, `[prefix/]AWSLogs/<o-id>/<account>/CloudTrail/...`. The same bucket
also holds digest files, Insights, network-activity and aggregated events, which are not log
objects we detect on: they are recognized and skipped with a reason, not reported as errors. A
key that looks like neither is reported, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

# [0-9], not \d (which takes Arabic-Indic and other digits), and \Z, not $ (which lets a
# trailing newline through): these values go into keys, metrics and SQL.
ACCOUNT_RE = re.compile(r"^[0-9]{12}\Z")
# Commercial, GovCloud, China, ISO partitions: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1.
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\Z")
ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}\Z")

_KEY_RE = re.compile(
    r"^(?P<prefix>(?:.*/)?)AWSLogs/"
    r"(?:(?P<org>o-[^/]+)/)?"
    r"(?P<account>[^/]+)/"
    r"(?P<kind>CloudTrail(?:-[A-Za-z]+)?)/"
    r"(?P<rest>.*)\Z"
)
_LOG_REST_RE = re.compile(
    r"^(?P<region>[^/]+)/(?P<y>[0-9]{4})/(?P<m>[0-9]{2})/(?P<d>[0-9]{2})/"
    r"(?P<faccount>[0-9]{12})_CloudTrail_(?P<fregion>[^_/]+)_"
    r"(?P<stamp>[0-9]{8}T[0-9]{4}Z)_(?P<uid>[A-Za-z0-9]+)\.json(?:\.gz)?\Z"
)
_STAMP_RE = re.compile(r"(?<![0-9])([0-9]{8}T[0-9]{4}(?:[0-9]{2})?Z)")

KIND_SKIP_REASONS = {
    "CloudTrail-Digest": "digest",
    "CloudTrail-Insight": "insight",
    "CloudTrail-NetworkActivity": "network_activity",
    "CloudTrail-Aggregated": "aggregated",
}


class KeyKind(StrEnum):
    LOG = "log"
    SKIP = "skip"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class LogObjectKey:
    """What the key of a CloudTrail log object says about it."""

    key: str
    prefix: str
    org_id: str | None
    account_id: str
    region: str
    day: date
    delivered_at: datetime
    uid: str


@dataclass(frozen=True, slots=True)
class KeyClassification:
    kind: KeyKind
    log_key: LogObjectKey | None = None
    reason: str = ""  # skip reason (a metric label) or the error message for INVALID


def classify_key(key: str) -> KeyClassification:
    """Classify an S3 key from a CloudTrail bucket: a log object, something to skip, or invalid."""
    if not key or key.endswith("/"):
        return KeyClassification(KeyKind.SKIP, reason="folder_marker")
    m = _KEY_RE.match(key)
    if m is None:
        return KeyClassification(
            KeyKind.INVALID,
            reason=f"not a CloudTrail key (no AWSLogs/<account>/CloudTrail*/): {key!r}",
        )
    kind = m["kind"]
    if kind in KIND_SKIP_REASONS:
        return KeyClassification(KeyKind.SKIP, reason=KIND_SKIP_REASONS[kind])
    if kind != "CloudTrail":
        return KeyClassification(
            KeyKind.INVALID, reason=f"unknown CloudTrail folder {kind!r} in {key!r}"
        )
    org = m["org"]
    if org is not None and not ORG_ID_RE.match(org):
        return KeyClassification(KeyKind.INVALID, reason=f"bad organization id {org!r} in {key!r}")
    account = m["account"]
    if not ACCOUNT_RE.match(account):
        return KeyClassification(KeyKind.INVALID, reason=f"bad account id {account!r} in {key!r}")
    r = _LOG_REST_RE.match(m["rest"])
    if r is None:
        return KeyClassification(
            KeyKind.INVALID,
            reason=f"log key does not match <region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<stamp>_<id>.json.gz: {key!r}",
        )
    region = r["region"]
    if not REGION_RE.match(region):
        return KeyClassification(KeyKind.INVALID, reason=f"bad region {region!r} in {key!r}")
    if r["faccount"] != account or r["fregion"] != region:
        return KeyClassification(
            KeyKind.INVALID, reason=f"file name account/region disagree with the folder in {key!r}"
        )
    try:
        day = date(int(r["y"]), int(r["m"]), int(r["d"]))
        s = r["stamp"]  # YYYYMMDDTHHMMZ, digits checked by the pattern; strptime costs 30 µs
        delivered_at = datetime(
            int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[9:11]), int(s[11:13]), tzinfo=UTC
        )
    except ValueError:
        return KeyClassification(KeyKind.INVALID, reason=f"bad date in {key!r}")
    return KeyClassification(
        KeyKind.LOG,
        LogObjectKey(
            key=key,
            prefix=m["prefix"],
            org_id=org,
            account_id=account,
            region=region,
            day=day,
            delivered_at=delivered_at,
            uid=r["uid"],
        ),
    )


def delivery_sort_key(name: str) -> tuple[str, str]:
    """Order objects as CloudTrail delivered them: by the stamp in the file name, then by name.

    Names without a stamp sort first, by name, so a folder of ad-hoc files has a stable order.
    """
    base = name.rsplit("/", 1)[-1]
    m = _STAMP_RE.search(base)
    stamp = m.group(1)[:13] if m else ""
    return (stamp, name)


def classify_local_path(path: str) -> KeyClassification:
    """Classify a local file: like `classify_key`, but a folder named after a non-log kind
    (`CloudTrail-Digest/`...) anywhere in the path is enough to skip it, and a name that says
    nothing is INVALID only in the sense that the caller learns nothing from it."""
    classified = classify_key(path)
    if classified.kind is KeyKind.INVALID:
        for part in path.split("/")[:-1]:
            if part in KIND_SKIP_REASONS:
                return KeyClassification(KeyKind.SKIP, reason=KIND_SKIP_REASONS[part])
    return classified
