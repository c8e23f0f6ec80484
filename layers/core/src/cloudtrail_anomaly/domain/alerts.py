"""The alert: the JSON contract every sink and downstream tool builds on (see README).

`alert_id` is derived from the alert's content only (account, principal, actions and their first
events), so the same inputs always give the same id and a consumer can deduplicate on it.

An alert's JSON is bounded whatever the input, so that it always fits one DynamoDB item (the
outbox), one HEC request and one SNS message: it lists at most `MAX_LISTED_ACTIONS` of the new
actions (the sensitive ones first) with their total and a digest of the full list, and every
string it copies from a record or a lookup is cut to its `FIELD_LIMITS` length, ending with
`TRUNCATED`. `Alert` itself keeps everything: grading and `alert_id` see every new action.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..formats.cim import cim_fields
from .model import Event, Principal, Severity, iso
from .sensitive import curated_sensitive_actions, mitre_of

MAX_LISTED_ACTIONS = 100
# Byte budgets of the JSON of the parts that grow with the input. With the field limits below,
# the rest of an alert is at most about 8 KB and its CIM fields (formats/cim.py: copies of
# bounded fields and a description of at most 1 KB) at most about 8 KB more, so no alert's JSON
# reaches MAX_ALERT_BYTES.
LISTED_ACTIONS_BYTES = 36_000
REASONS_BYTES = 10_000
SOURCE_OBJECTS_BYTES = 4_000
MAX_ALERT_BYTES = 64 * 1024
TRUNCATED = "...[truncated]"
# Longest kept, in characters (the marker included), of each string an alert copies.
FIELD_LIMITS = {
    "action": 256,
    "event_source": 128,
    "event_name": 128,
    "region": 64,
    "error_code": 128,
    "source_ip": 128,
    "user_agent": 256,
    "event_id": 64,
    "principal.type": 64,
    "principal.arn": 512,
    "principal.name": 128,
    "principal.session": 128,
    "account_id": 64,
    "account_name": 128,
    "account_owner": 128,
    "source_object": 512,
    "reason": 1024,
}


def clip(text: str, limit: int) -> str:
    """`text`, or past `limit` characters its beginning ending with TRUNCATED (`limit` long)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _clip(text: str, name: str) -> str:
    return clip(text, FIELD_LIMITS[name])


@dataclass(slots=True)
class Alert:
    account_id: str
    principal: Principal
    new_actions: list[Event]
    severity: Severity
    reasons: list[str]
    source_objects: list[str]
    detector: str = "new_action"
    suppressed_reason: str = ""  # non-empty: kept for tuning, not delivered
    account_name: str = ""  # from Organizations, when enrichment is on
    account_owner: str = ""  # the account's e-mail address in Organizations, likewise
    role_created: int | None = None  # the role's CreateDate, when IAM enrichment is on
    # Actions listed before the others when the alert cannot list them all: the sensitive ones.
    listed_first: frozenset[str] = frozenset()
    alert_id: str = field(default="")

    def __post_init__(self) -> None:
        self.new_actions.sort(key=lambda e: (e.event_time, e.action))
        if not self.alert_id:
            self.alert_id = make_alert_id(
                self.detector, self.account_id, self.principal.key, self.new_actions
            )

    @property
    def first_event_time(self) -> int:
        return self.new_actions[0].event_time

    @property
    def last_event_time(self) -> int:
        return self.new_actions[-1].event_time

    def listed_actions(self) -> list[dict[str, Any]]:
        """The new actions the JSON lists, in time order: the `listed_first` ones, then the
        earliest others, at most MAX_LISTED_ACTIONS and LISTED_ACTIONS_BYTES of them."""
        first = [e for e in self.new_actions if e.action in self.listed_first]
        rest = [e for e in self.new_actions if e.action not in self.listed_first]
        chosen: list[tuple[Event, dict[str, Any]]] = []
        size = 2  # the list's brackets
        for e in [*first, *rest]:
            doc = action_dict(e)
            size += len(orjson.dumps(doc)) + 1
            if len(chosen) == MAX_LISTED_ACTIONS or size > LISTED_ACTIONS_BYTES:
                break
            chosen.append((e, doc))
        chosen.sort(key=lambda pair: (pair[0].event_time, pair[0].action))
        return [doc for _, doc in chosen]

    def to_dict(self) -> dict[str, Any]:
        listed = self.listed_actions()
        doc: dict[str, Any] = {
            "alert_id": self.alert_id,
            "detector": self.detector,
            "severity": str(self.severity),
            "account_id": _clip(self.account_id, "account_id"),
            "account_name": _clip(self.account_name, "account_name") or None,
            "account_owner": _clip(self.account_owner, "account_owner") or None,
            "principal": {
                "type": _clip(self.principal.type, "principal.type"),
                "arn": _clip(self.principal.key, "principal.arn"),
                "name": _clip(self.principal.name, "principal.name"),
                "session": _clip(self.principal.session, "principal.session"),
                "role_created": iso(self.role_created) if self.role_created is not None else None,
            },
            "new_actions": listed,
            "new_actions_total": len(self.new_actions),
            "new_actions_truncated": len(listed) < len(self.new_actions),
            "new_actions_digest": actions_digest(e.action for e in self.new_actions),
            "first_event_time": iso(self.first_event_time),
            "last_event_time": iso(self.last_event_time),
            "source_objects": _within(
                [_clip(s, "source_object") for s in self.source_objects],
                SOURCE_OBJECTS_BYTES,
                lambda n: f"{n} more log object(s){TRUNCATED}",
            ),
            "reasons": _within(
                [_clip(r, "reason") for r in self.reasons],
                REASONS_BYTES,
                lambda n: f"{n} more reason(s){TRUNCATED}",
            ),
        }
        # ATT&CK of the sensitive actions (those listed first), from the curated list.
        doc["mitre"] = [
            m._asdict()
            for m in mitre_of(
                sorted(self.listed_first & {e.action for e in self.new_actions}),
                curated_sensitive_actions(),
            )
        ]
        if self.suppressed_reason:
            doc["suppressed"] = True
            doc["suppressed_reason"] = self.suppressed_reason
        # The flat CIM Alerts fields (docs/splunk.md), computed from the fields above.
        doc.update(cim_fields(doc))
        return doc


def action_dict(e: Event) -> dict[str, Any]:
    return {
        "action": _clip(e.action, "action"),
        "event_source": _clip(e.event_source, "event_source"),
        "event_name": _clip(e.event_name, "event_name"),
        "event_time": iso(e.event_time),
        "region": _clip(e.region, "region"),
        "error_code": _clip(e.error_code, "error_code") or None,
        "source_ip": _clip(e.source_ip, "source_ip"),
        "user_agent": _clip(e.user_agent, "user_agent"),
        "event_id": _clip(e.event_id, "event_id"),
    }


def _within(lines: list[str], budget: int, more: Callable[[int], str]) -> list[str]:
    """The first `lines` whose JSON fits in `budget` bytes; when some do not, the last line
    kept says how many were left out (`more(n)`)."""
    total = sum(len(orjson.dumps(line)) + 1 for line in lines) + 2
    if total <= budget:
        return lines
    reserve = 64  # room for the closing line
    kept: list[str] = []
    size = 2
    for line in lines:
        size += len(orjson.dumps(line)) + 1
        if size > budget - reserve:
            break
        kept.append(line)
    return [*kept, more(len(lines) - len(kept))]


def actions_digest(actions: Iterable[str]) -> str:
    """sha256 (hex) of the sorted action names, one a line: names the full list of an alert
    that lists only part of it (compare it with `explain`, or with another alert's)."""
    return hashlib.sha256("\n".join(sorted(actions)).encode()).hexdigest()


def make_alert_id(detector: str, account_id: str, principal: str, events: list[Event]) -> str:
    h = hashlib.sha256(f"{detector}\x1f{account_id}\x1f{principal}".encode())
    for e in sorted(events, key=lambda e: e.action):
        h.update(f"\x1e{e.action}\x1f{e.event_id}\x1f{e.event_time}".encode())
    return h.hexdigest()[:32]
