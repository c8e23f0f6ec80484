"""The outbox: alerts are made durable before they are sent, so a crash loses nothing.

An alert is written as *pending* in the same transaction that claims its tuples (see
`Baseline.claim(..., stage=...)`), then delivered, then marked delivered. Whatever is still
pending is re-sent by the next invocation and by the hourly reconciliation. Delivery is
at-least-once; every alert carries its stable `alert_id`, and an alert marked delivered (or
dead-lettered) is never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from .domain.alerts import Alert


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert waiting in the outbox: its id, what orders it, and its JSON document."""

    alert_id: str
    first_event_time: int
    severity: str
    document: bytes  # the alert's JSON (Alert.to_dict), exactly as it will be delivered
    attempts: int = 0
    last_error: str = ""

    @staticmethod
    def of(alert: Alert) -> PendingAlert:
        return PendingAlert(
            alert.alert_id,
            alert.first_event_time,
            str(alert.severity),
            orjson.dumps(alert.to_dict()),
        )


class Outbox(Protocol):
    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        """Store alerts as pending (idempotent by alert_id; a delivered one stays delivered)."""
        ...

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        """Pending alerts, oldest first event first."""
        ...

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        """Take the right to send these pending alerts until `until` (wall-clock seconds):
        returns the ids that were pending and not leased by another sender (or whose lease
        expired by `now`). Two workers delivering at once never send the same alert."""
        ...

    def mark_delivered(self, alert_ids: Sequence[str]) -> None: ...

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        """Count a failed attempt and drop the lease; the alerts stay pending."""
        ...

    def dead_letter(self, alert_id: str, reason: str) -> None:
        """Give up on one alert Splunk will never accept; keep it, with the reason."""
        ...

    def dead_letters(self) -> list[tuple[PendingAlert, str]]: ...


class MemoryOutbox:
    """An `Outbox` in dicts, for tests and stateless runs."""

    def __init__(self) -> None:
        self.items: dict[str, PendingAlert] = {}
        self.status: dict[str, str] = {}  # pending | delivered | dead
        self.reasons: dict[str, str] = {}
        self.leases: dict[str, float] = {}

    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        for a in alerts:
            if a.alert_id not in self.status:
                self.items[a.alert_id] = a
                self.status[a.alert_id] = "pending"

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        waiting = [self.items[i] for i, s in self.status.items() if s == "pending"]
        waiting.sort(key=lambda a: (a.first_event_time, a.alert_id))
        return waiting[:limit]

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        taken = []
        for i in alert_ids:
            if self.status.get(i) == "pending" and self.leases.get(i, 0.0) <= now:
                self.leases[i] = until
                taken.append(i)
        return taken

    def mark_delivered(self, alert_ids: Sequence[str]) -> None:
        for i in alert_ids:
            if i in self.status:
                self.status[i] = "delivered"

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        for i in alert_ids:
            a = self.items.get(i)
            if a is not None and self.status[i] == "pending":
                self.leases.pop(i, None)
                self.items[i] = PendingAlert(
                    a.alert_id, a.first_event_time, a.severity, a.document, a.attempts + 1, reason
                )

    def dead_letter(self, alert_id: str, reason: str) -> None:
        if alert_id in self.status:
            self.status[alert_id] = "dead"
            self.reasons[alert_id] = reason

    def dead_letters(self) -> list[tuple[PendingAlert, str]]:
        return [(self.items[i], self.reasons[i]) for i, s in self.status.items() if s == "dead"]
