"""Test doubles shared by the test modules: in-memory stand-ins for the ports (the stores have
theirs in cloudtrail_anomaly.stores.memory)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from cloudtrail_anomaly.ports import DeliveryReport, PendingAlert


class ListSink:
    """Receives alert documents, as a real sink would; `down` makes it refuse everything."""

    name = "list"

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.down = False

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        if self.down:
            return DeliveryReport(pending={a.alert_id: "sink down" for a in alerts})
        self.alerts.extend(orjson.loads(a.document) for a in alerts)
        return DeliveryReport(delivered=[a.alert_id for a in alerts])
