"""The domain's value types: principals, events, baseline tuples and their states, severities,
burst-window entries and what enrichment says about a role.

Times are integer epoch seconds (UTC) taken from CloudTrail's `eventTime`, never the wall clock,
so that replaying history gives the same results as living through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

import msgspec

DAY = 86_400


def iso(epoch: int) -> str:
    """Render epoch seconds the way CloudTrail writes eventTime."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def span_label(start: int, end: int) -> str:
    """`2026-10-01T10:00Z/2026-10-01T11:00Z`: a period of whole minutes, as logs and metrics
    name the hourly window and the backfill's period."""
    fmt = "%Y-%m-%dT%H:%MZ"
    return (
        datetime.fromtimestamp(start, UTC).strftime(fmt)
        + "/"
        + datetime.fromtimestamp(end, UTC).strftime(fmt)
    )


class PrincipalKey(NamedTuple):
    """A principal as the baseline knows it: the account it acted in and its baseline key."""

    account_id: str
    principal: str


class TupleKey(NamedTuple):
    """The unit of novelty: this principal, in this account, performed this action."""

    account_id: str
    principal: str
    action: str

    @property
    def principal_key(self) -> PrincipalKey:
        return PrincipalKey(self.account_id, self.principal)


# Principal, Event and TupleObservation are msgspec Structs, not dataclasses: `--jobs` workers
# send every object's extraction to the claiming process (usecases/extract_pool.py), and as
# arrays (`array_like`) they travel in two thirds of the bytes and decode twice as fast as a
# dataclass's field-name map. They behave as the frozen dataclasses they were: fields, equality,
# hashing (frozen ones), `msgspec.structs.replace`.
class Principal(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Who made a call, normalized from `userIdentity` (see docs/principals.md for each type)."""

    type: str  # userIdentity.type, or "AWSService" for records without one
    key: str  # the baseline key: a role/user ARN where one exists, else a typed pseudo-ARN
    name: str = ""  # role name, user name, service name...
    session: str = ""  # role session name (often the human or the instance id)
    issuer_principal_id: str = ""
    is_service: bool = False  # AWS service principals and service-linked roles


class Event(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One CloudTrail record, reduced to what detection and alerts need."""

    principal: Principal
    account_id: str
    action: str  # "<eventSource>:<eventName without API-version suffix>"
    event_source: str
    event_name: str
    region: str
    event_time: int
    event_id: str = ""
    error_code: str = ""
    source_ip: str = ""
    user_agent: str = ""
    event_type: str = ""
    event_category: str = ""
    read_only: bool | None = None
    # Sign-ins: additionalEventData.MFAUsed (None when the record does not say), and whether
    # responseElements.ConsoleLogin said "Failure".
    mfa_used: bool | None = None
    login_failed: bool = False
    # The IAM user or role the request names (requestParameters.userName / roleName), as
    # "user/<name>" or "role/<name>": who a lineage-granting action creates or empowers.
    target: str = ""

    @property
    def tuple_key(self) -> TupleKey:
        return TupleKey(self.account_id, self.principal.key, self.action)


class TupleObservation(msgspec.Struct, array_like=True):
    """A tuple as seen in one log object: its time span and its first event."""

    first_event: Event
    first_seen: int
    last_seen: int
    count: int = 1


@dataclass(frozen=True, slots=True)
class TupleState:
    """A tuple as the baseline remembers it."""

    first_seen: int
    last_seen: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class TupleClaim:
    """Record a tuple as known: claimed if absent, or if the stored one expired by `first_seen`."""

    key: TupleKey
    first_seen: int
    last_seen: int
    expires_at: int


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def bumped(self, cap: Severity) -> Severity:
        """One step louder, but never above `cap` (nor lowered to it)."""
        if self.rank >= cap.rank:
            return self
        return _ORDER[self.rank + 1]


_ORDER = list(Severity)
_RANK = {s: i for i, s in enumerate(_ORDER)}


def max_severity(*levels: Severity) -> Severity:
    return max(levels, key=lambda s: s.rank)


class Grant(NamedTuple):
    """A call that created an IAM user or role, or gave one credentials, permissions or trust
    (domain/lineage.py lists them): lineage passes from `creator` to `target`."""

    account_id: str
    creator: str  # the caller's baseline key
    action: str
    target: str  # "user/<name>" or "role/<name>"
    event_time: int
    event_id: str


class MarkKind(StrEnum):
    ALERTED = "alerted"  # the principal's latest alert at or above the lineage threshold
    LINEAGE = "lineage"  # the principal was created or empowered by an alerting one


@dataclass(frozen=True, slots=True)
class Mark:
    """What the baseline remembers of a principal besides its tuples, for lineage.

    `subject` is the principal it is about: for ALERTED the principal's own key, for LINEAGE
    the account and "user/<name>" or "role/<name>" (a request names the user or role, not its
    ARN). Stored with the claim that gave rise to it, in the same transaction."""

    subject: PrincipalKey
    kind: MarkKind
    creator: str  # the principal key that alerted
    action: str  # LINEAGE: the granting action; ALERTED: ""
    alert_id: str
    severity: Severity
    event_time: int
    expires_at: int  # event time after which the mark no longer counts (and may be dropped)

    @property
    def key(self) -> tuple[PrincipalKey, MarkKind]:
        return (self.subject, self.kind)


class WindowEntry(NamedTuple):
    """A new (alerted) action in a principal's window (burst, and slow novelty's history)."""

    event_time: int
    action: str
    region: str
    event_id: str
    error_code: str
    severity: str = ""  # of the alert it came in ("": stored before this was kept)
    context: str = ""  # a network or client family new to the principal ("network 198.51.0.0/16")


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """What IAM says about a role (enrichment)."""

    arn: str
    created: int | None = None
    trusted_services: tuple[str, ...] = ()
    trusted_federated: tuple[str, ...] = ()
    trusted_accounts: tuple[str, ...] = ()
