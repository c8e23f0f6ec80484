"""The alert: the JSON contract every sink and downstream tool builds on (see README).

`alert_id` is derived from the alert's content only (account, principal, actions and their first
events), so the same inputs always give the same id and a consumer can deduplicate on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .model import Event, Principal, iso
from .policy import Severity


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

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "alert_id": self.alert_id,
            "detector": self.detector,
            "severity": str(self.severity),
            "account_id": self.account_id,
            "account_name": self.account_name or None,
            "account_owner": self.account_owner or None,
            "principal": {
                "type": self.principal.type,
                "arn": self.principal.key,
                "name": self.principal.name,
                "session": self.principal.session,
                "role_created": iso(self.role_created) if self.role_created is not None else None,
            },
            "new_actions": [action_dict(e) for e in self.new_actions],
            "first_event_time": iso(self.first_event_time),
            "last_event_time": iso(self.last_event_time),
            "source_objects": list(self.source_objects),
            "reasons": list(self.reasons),
        }
        if self.suppressed_reason:
            doc["suppressed"] = True
            doc["suppressed_reason"] = self.suppressed_reason
        return doc


def action_dict(e: Event) -> dict[str, Any]:
    return {
        "action": e.action,
        "event_source": e.event_source,
        "event_name": e.event_name,
        "event_time": iso(e.event_time),
        "region": e.region,
        "error_code": e.error_code or None,
        "source_ip": e.source_ip,
        "user_agent": e.user_agent,
        "event_id": e.event_id,
    }


def make_alert_id(detector: str, account_id: str, principal: str, events: list[Event]) -> str:
    h = hashlib.sha256(f"{detector}\x1f{account_id}\x1f{principal}".encode())
    for e in sorted(events, key=lambda e: e.action):
        h.update(f"\x1e{e.action}\x1f{e.event_id}\x1f{e.event_time}".encode())
    return h.hexdigest()[:32]
