"""Normalize raw CloudTrail records to `Event`s: who (principal), what (action), where, when.

CloudTrail data is read tolerantly: any field may be missing, null or of the wrong type. A record
that cannot be used raises `RecordSkipped` with a reason that becomes a metric label; nothing
here raises anything else on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec

from .model import Event, Principal

# [0-9], not \d (which takes Arabic-Indic and other digits), and \Z, not $ (which lets a
# trailing newline through), in every pattern.
_ASSUMED_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.*)\Z"
)
# Lambda: ListFunctions20150331, UpdateFunctionCode20150331v2; CloudFront: CreateFunction2020_05_31.
_API_VERSION_SUFFIX = re.compile(r"(?:[0-9]{8}|[0-9]{4}_[0-9]{2}_[0-9]{2})(?:v[0-9]+)?\Z")
# Hand-edited and exported events: "2022-09-29 23:04:35", "...T...Z", nanosecond fractions.
_LOOSE_TIME = re.compile(
    r"^(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<frac>\.[0-9]+)?(?P<tz>Z|[+-][0-9]{2}:?[0-9]{2})?\Z"
)
_ACCOUNT = re.compile(r"^[0-9]{12}\Z")
_BOOL_STRINGS = {"true": True, "false": False}


class RecordSkipped(Exception):
    """A record that cannot be normalized; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """In place of a record that does not decode because of a string in it, so that the other
    records of its object are still read: `reason` is `invalid_utf8` (bytes that are not UTF-8)
    or `invalid_string` (a lone surrogate escape, a control character, a bad escape).
    `normalize` skips it with that reason (`records_skipped.<reason>`)."""

    reason: str


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# Minute starts are cached: a log object spans a few minutes to a few days, so the common
# fixed-width eventTime costs two slices and two dict lookups instead of a datetime parse.
_minute_cache: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:" -> epoch seconds, or -1: not a time
_day_cache: dict[str, int] = {}  # "YYYY-MM-DD" -> epoch seconds, or -1
_SECONDS = {f"{s:02d}": s for s in range(61)}  # "60": a leap second
_HOURS = {f"{h:02d}": h for h in range(24)}
_MINUTES = {f"{m:02d}": m for m in range(60)}
# Times outside 1970..8999 are corrupt (CloudTrail began in 2013); refusing them keeps every
# time derived from an eventTime (expiry, end of learning) renderable and non-negative.
_MIN_TIME, _MAX_TIME = 0, int(datetime(9000, 1, 1, tzinfo=UTC).timestamp())


def _minute_start(prefix: str) -> int:
    """Epoch seconds of a `YYYY-MM-DDTHH:MM:` prefix, or -1."""
    hour, minute = _HOURS.get(prefix[11:13]), _MINUTES.get(prefix[14:16])
    if hour is None or minute is None or prefix[13] != ":" or prefix[16] != ":":
        return -1
    day = _day_cache.get(prefix[:10])
    if day is None:
        try:
            day = int(datetime.strptime(prefix[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        except ValueError:
            day = -1
        if not _MIN_TIME <= day < _MAX_TIME:
            day = -1
        if len(_day_cache) > 4096:
            _day_cache.clear()
        _day_cache[prefix[:10]] = day
    return day + hour * 3600 + minute * 60 if day >= 0 else -1


def parse_event_time(value: Any) -> int | None:
    """Parse CloudTrail's eventTime to epoch seconds; None when it is not a usable time."""
    if not isinstance(value, str):
        return None
    if len(value) == 20 and value[10] == "T" and value[19] == "Z":
        second = _SECONDS.get(value[17:19])
        if second is None:
            return None
        prefix = value[:17]
        minute = _minute_cache.get(prefix)
        if minute is None:
            minute = _minute_start(prefix)
            if len(_minute_cache) > 65_536:
                _minute_cache.clear()
            _minute_cache[prefix] = minute
        return minute + second if minute >= 0 else None
    m = _LOOSE_TIME.match(value)
    if m is None:
        return None
    try:
        parsed = datetime.fromisoformat(f"{m['date']}T{m['time']}{(m['frac'] or '')[:7]}")
    except ValueError:
        return None
    epoch = int(parsed.replace(tzinfo=UTC, microsecond=0).timestamp())
    if m["tz"] and m["tz"] != "Z":
        sign = -1 if m["tz"][0] == "+" else 1
        epoch += sign * (int(m["tz"][1:3]) * 3600 + int(m["tz"][-2:]) * 60)
    return epoch if _MIN_TIME <= epoch < _MAX_TIME else None


@lru_cache(maxsize=1 << 16)  # the actions an organization uses: a few thousand
def normalize_action(event_source: str, event_name: str) -> str:
    """`eventSource:eventName`, without the API-version suffix some services log
    (`ListFunctions20150331`, `UpdateFunctionCode20150331v2`, `CreateFunction2020_05_31`), so the
    action is stable across API versions and matches IAM-style names."""
    stripped = _API_VERSION_SUFFIX.sub("", event_name)
    return f"{event_source}:{stripped or event_name}"


def _service(name: str, ui_type: str = "AWSService") -> Principal:
    return Principal(type=ui_type, key=f"service:{name or 'unknown'}", name=name, is_service=True)


def principal_of(record: dict[str, Any]) -> Principal:
    """The principal behind a record; see docs/principals.md for the key of each identity type."""
    principal = principal_of_identity(record.get("userIdentity"))
    if principal is None:
        return _service(_str(record.get("eventSource")))
    return principal


def principal_of_identity(user_identity: Any) -> Principal | None:
    """The principal of a `userIdentity` value, or None when it is AWS acting on its own with no
    `invokedBy`: the service named by the record's `eventSource`. Nothing else of the record
    matters, so a principal can be computed once per distinct identity."""
    ui = _dict(user_identity)
    ui_type = _str(ui.get("type"))
    arn = _str(ui.get("arn"))
    account = _str(ui.get("accountId"))
    principal_id = _str(ui.get("principalId"))
    user_name = _str(ui.get("userName"))
    issuer = _dict(_dict(ui.get("sessionContext")).get("sessionIssuer"))

    if ui_type in ("AssumedRole", "Unknown") and (issuer.get("arn") or arn.startswith("arn:")):
        role_arn = _str(issuer.get("arn"))
        m = _ASSUMED_ROLE_ARN.match(arn)
        session = m["session"] if m else principal_id.partition(":")[2]
        if not role_arn.startswith("arn:") and m:
            # No sessionIssuer (hand-edited or old events): rebuild the role ARN. The role's
            # path is not in an assumed-role ARN, so a rebuilt key drops it.
            role_arn = f"arn:{m['partition']}:iam::{m['account']}:role/{m['role']}"
        if role_arn.startswith("arn:"):
            name = _str(issuer.get("userName")) or role_arn.rsplit("/", 1)[-1]
            return Principal(
                type=ui_type,
                key=role_arn,
                name=name,
                session=session,
                issuer_principal_id=_str(issuer.get("principalId")),
                is_service="/aws-service-role/" in role_arn,
            )
    if ui_type == "AssumedRole":
        role_id = principal_id.partition(":")[0] or "unknown"
        return Principal(
            type=ui_type,
            key=f"assumed-role:{account or '-'}:{role_id}",
            name=role_id,
            session=principal_id.partition(":")[2],
        )
    if ui_type == "IAMUser":
        if arn.startswith("arn:"):
            key = arn
        elif user_name and account:
            key = f"arn:aws:iam::{account}:user/{user_name}"
        else:
            key = f"iam-user:{account or '-'}:{principal_id or 'unknown'}"
        return Principal(type=ui_type, key=key, name=user_name or key.rsplit("/", 1)[-1])
    if ui_type == "Root":
        key = arn if arn.startswith("arn:") else f"arn:aws:iam::{account or '-'}:root"
        return Principal(type=ui_type, key=key, name="root")
    if ui_type == "FederatedUser":
        if arn.startswith("arn:"):
            key = arn
        else:
            key = f"federated-user:{account or '-'}:{principal_id.partition(':')[2] or 'unknown'}"
        return Principal(
            type=ui_type,
            key=key,
            name=key.rsplit("/", 1)[-1],
            issuer_principal_id=_str(issuer.get("principalId")),
        )
    if ui_type == "AWSAccount":
        caller = principal_id.partition(":")[0]
        key = f"aws-account:{account or '-'}" + (f":{caller}" if caller else "")
        return Principal(
            type=ui_type, key=key, name=account, session=principal_id.partition(":")[2]
        )
    if ui_type == "AWSService":
        return _service(invoked_by) if (invoked_by := _str(ui.get("invokedBy"))) else None
    if ui_type in ("SAMLUser", "WebIdentityUser"):
        provider = _str(ui.get("identityProvider")) or "unknown-idp"
        prefix = "saml" if ui_type == "SAMLUser" else "web-identity"
        return Principal(
            type=ui_type,
            key=f"{prefix}:{provider}:{user_name or principal_id}",
            name=user_name or principal_id,
        )
    if ui_type == "IdentityCenterUser":
        on_behalf = _dict(ui.get("onBehalfOf"))
        user_id = _str(on_behalf.get("userId")) or principal_id or "unknown"
        store = _str(on_behalf.get("identityStoreArn")) or account or "-"
        return Principal(type=ui_type, key=f"identity-center:{store}:{user_id}", name=user_id)
    if not ui_type:
        # AwsServiceEvent records carry no type: {accountId, invokedBy} or no userIdentity at
        # all. They are AWS acting on its own.
        return _service(invoked_by) if (invoked_by := _str(ui.get("invokedBy"))) else None
    # An identity type this code does not know yet: keep it distinct, never guess.
    ident = arn or principal_id or user_name or "unknown"
    return Principal(
        type=ui_type, key=f"{ui_type.lower()}:{account or '-'}:{ident}", name=user_name or ident
    )


def is_account_id(value: str) -> bool:
    """A 12-digit AWS account id."""
    return _ACCOUNT.match(value) is not None


def account_of_identity(user_identity: Any) -> str:
    """`userIdentity.accountId` when it is an account id, else ''."""
    account = _str(_dict(user_identity).get("accountId"))
    return account if is_account_id(account) else ""


def normalize(record: Any, fallback_account: str = "", fallback_region: str = "") -> Event:
    """Normalize one raw record, or raise `RecordSkipped`."""
    if record.__class__ is InvalidRecord:
        raise RecordSkipped(record.reason)
    if not isinstance(record, dict):
        raise RecordSkipped("not_an_object", type(record).__name__)
    event_type = _str(record.get("eventType"))
    if event_type == "AwsCloudTrailInsight" or "insightDetails" in record:
        raise RecordSkipped("insight_event")
    raw_time = record.get("eventTime")
    if raw_time is None:
        # Logstash exports (e.g. OTRF's Security Datasets) rename eventTime to @timestamp.
        raw_time = record.get("@timestamp")
    event_time = parse_event_time(raw_time)
    if event_time is None:
        raise RecordSkipped("no_event_time")
    event_source = _str(record.get("eventSource"))
    event_name = _str(record.get("eventName"))
    if not event_source or not event_name:
        raise RecordSkipped("no_action")
    principal = principal_of(record)
    account = _str(record.get("recipientAccountId"))
    if not is_account_id(account):
        account = account_of_identity(record.get("userIdentity")) or fallback_account
    if not account:
        raise RecordSkipped("no_valid_account")
    return Event(
        principal=principal,
        account_id=account,
        action=normalize_action(event_source, event_name),
        event_source=event_source,
        event_name=event_name,
        region=_str(record.get("awsRegion")) or fallback_region or "unknown",
        event_time=event_time,
        event_id=_str(record.get("eventID")),
        error_code=_str(record.get("errorCode")),
        source_ip=_str(record.get("sourceIPAddress")),
        user_agent=_str(record.get("userAgent"))[:512],
        event_type=event_type,
        event_category=_str(record.get("eventCategory")),
        read_only=_read_only(record.get("readOnly")),
        mfa_used=_mfa_used(record.get("additionalEventData")),
        login_failed=_login_failed(record.get("responseElements")),
        target=target_of(record.get("requestParameters")),
    )


def _read_only(value: Any) -> bool | None:
    return value if isinstance(value, bool) else _BOOL_STRINGS.get(_str(value))


class _AnyObject(msgspec.Struct, frozen=True, gc=False):
    """An object in a field that `normalize` reads as a string: it reads as '' (or no time, no
    action) whatever it holds, so nothing of it is built."""


if TYPE_CHECKING:
    _Field = Any  # the code that reads a field coerces it as `normalize` does
else:
    # Any JSON value but an array, without building more than one small object: an object in a
    # string field is an `_AnyObject`, an integer a float (a non-string reads alike either
    # way). An array fails the record, which the reader then decodes on its own (and counts
    # against its cap). `Any` here would build whatever a field holds: `[[],[],...]` is 56
    # bytes of lists for every 3 bytes of JSON.
    _Field = str | float | bool | None | _AnyObject


class _SessionIssuer(msgspec.Struct, frozen=True, gc=False):
    arn: _Field = None
    userName: _Field = None
    principalId: _Field = None


class _SessionContext(msgspec.Struct, frozen=True, gc=False):
    sessionIssuer: _SessionIssuer | None = None


class _OnBehalfOf(msgspec.Struct, frozen=True, gc=False):
    userId: _Field = None
    identityStoreArn: _Field = None


class _RequestParameters(msgspec.Struct, frozen=True, gc=False):
    userName: _Field = None
    roleName: _Field = None


class _AdditionalEventData(msgspec.Struct, frozen=True, gc=False):
    MFAUsed: _Field = None


class _ResponseElements(msgspec.Struct, frozen=True, gc=False):
    ConsoleLogin: _Field = None


def _sub(value: Any, name: str) -> Any:
    """`value.name` of a decoded struct or `value[name]` of a dict; None for anything else."""
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, msgspec.Struct):
        return getattr(value, name, None)
    return None


def target_of(request_parameters: Any) -> str:
    """The IAM user or role a request names: "user/<name>", "role/<name>", or ""."""
    user = _str(_sub(request_parameters, "userName"))
    if user:
        return "user/" + user
    role = _str(_sub(request_parameters, "roleName"))
    return "role/" + role if role else ""


def _mfa_used(additional: Any) -> bool | None:
    value = _str(_sub(additional, "MFAUsed")).lower()
    return True if value == "yes" else False if value == "no" else None


def _login_failed(response: Any) -> bool:
    return _str(_sub(response, "ConsoleLogin")) == "Failure"


class CompactIdentity(msgspec.Struct, frozen=True, gc=False):
    """The `userIdentity` fields that `principal_of_identity` and `account_of_identity` read,
    and no others: equal CompactIdentities have the same principal, so it is computed once per
    distinct one, whatever their access keys and session dates (tests check the list)."""

    type: _Field = None
    arn: _Field = None
    accountId: _Field = None
    principalId: _Field = None
    userName: _Field = None
    invokedBy: _Field = None
    identityProvider: _Field = None
    sessionContext: _SessionContext | None = None
    onBehalfOf: _OnBehalfOf | None = None


class CompactRecord(msgspec.Struct, gc=False):
    """A raw record reduced to the fields `normalize` reads, as `reader.read_compact` decodes it.

    A field holds a string, a number, a bool, None or an `_AnyObject`, and is coerced as
    `normalize` coerces what the record held there (a non-string reads alike whatever it is);
    an absent field is None, as `dict.get` gives it. Each field is one small object at most, so
    a record costs a bounded size plus its strings. A record msgspec cannot decode so (an array
    in a field, a `sessionContext` that is not an object) is decoded on its own by the
    reference decoding. Untracked by the cyclic GC: decoded JSON holds no cycles.
    """

    eventTime: _Field = None
    timestamp: _Field = msgspec.field(default=None, name="@timestamp")
    eventSource: _Field = None
    eventName: _Field = None
    eventType: _Field = None
    insightDetails: _Field = msgspec.UNSET  # there at all, whatever its value: an Insights event
    recipientAccountId: _Field = None
    awsRegion: _Field = None
    userIdentity: CompactIdentity | None = None
    eventID: _Field = None
    errorCode: _Field = None
    sourceIPAddress: _Field = None
    userAgent: _Field = None
    eventCategory: _Field = None
    readOnly: _Field = None
    # The few nested fields the policy reads (sign-in MFA and outcome, who an IAM call names):
    # a struct each, or a scalar read as absent. Their other keys are skipped, not built.
    requestParameters: _RequestParameters | str | float | bool | None = None
    additionalEventData: _AdditionalEventData | str | float | bool | None = None
    responseElements: _ResponseElements | str | float | bool | None = None


def compact_event(
    record: CompactRecord, principal: Principal, account_id: str, region: str, event_time: int
) -> Event:
    """The `Event` that `normalize` makes of the record this CompactRecord was decoded from,
    given what detection already worked out of it (see `Detector.extract`)."""
    event_source: str = record.eventSource
    event_name: str = record.eventName
    return Event(
        principal=principal,
        account_id=account_id,
        action=normalize_action(event_source, event_name),
        event_source=event_source,
        event_name=event_name,
        region=region,
        event_time=event_time,
        event_id=_str(record.eventID),
        error_code=_str(record.errorCode),
        source_ip=_str(record.sourceIPAddress),
        user_agent=_str(record.userAgent)[:512],
        event_type=_str(record.eventType),
        event_category=_str(record.eventCategory),
        read_only=_read_only(record.readOnly),
        mfa_used=_mfa_used(record.additionalEventData),
        login_failed=_login_failed(record.responseElements),
        target=target_of(record.requestParameters),
    )
