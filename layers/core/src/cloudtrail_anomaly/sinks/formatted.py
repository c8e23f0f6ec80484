"""Any sink, writing another format of the alert (`formats.FORMATS`: `ocsf`...).

The outbox keeps the alert's own JSON; this wrapper turns each document into the chosen format
just before the wrapped sink sends it, so the format is a delivery setting (and can change
while alerts are pending). Ids, time and severity stay the outbox's, so the wrapped sink's
report (delivered, dead-lettered, pending) is about the same alerts. A document the format
cannot be made from is dead-lettered with the reason, never sent half-made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from ..formats import DEFAULT_FORMAT, Format, formatter
from ..ports import AlertSink, DeliveryReport, PendingAlert


class Formatted:
    def __init__(self, sink: AlertSink, format_name: str) -> None:
        self.sink = sink
        self.format_name = format_name
        self._format: Format = formatter(format_name)  # UnknownFormat: a clear message
        self.name = f"{sink.name}+{format_name}"

    def __repr__(self) -> str:
        return f"Formatted({self.sink!r}, {self.format_name!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        converted: list[PendingAlert] = []
        refused: dict[str, str] = {}
        for alert in alerts:
            try:
                document = orjson.dumps(self._format(orjson.loads(alert.document)))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                refused[alert.alert_id] = (
                    f"cannot write the alert as {self.format_name}: {type(exc).__name__}: {exc}"
                )
                continue
            converted.append(dataclasses.replace(alert, document=document))
        report = self.sink.deliver(converted) if converted else DeliveryReport()
        report.dead_lettered.update(refused)
        return report


def with_format(sink: AlertSink, format_name: str | None) -> AlertSink:
    """`sink` writing `format_name`, or `sink` itself for the alert's own format."""
    if not format_name or format_name == DEFAULT_FORMAT:
        return sink
    return Formatted(sink, format_name)
