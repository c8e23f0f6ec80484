"""Where alerts go: the sinks behind the `AlertSink` protocol, and what they share.

The protocol and its report live in `ports.py`, and the `Deliverer` (usecases/deliver.py) drives
them: a sink receives a batch of outbox entries (`PendingAlert`: id, first event time, severity and the
alert's JSON exactly as it will be delivered) and answers with a `DeliveryReport` that puts every
alert of the batch in exactly one of `delivered`, `dead_lettered` (id → reason: the sink will
never accept it) or `pending` (id → reason: try again later), plus `config_error` (the sink cannot
work as configured: the caller stops and keeps everything) and `counters` for metrics.

Sinks: `jsonl` (a file or stdout), `splunk_hec` (needs `requests`), `sns` (needs a boto3 client).
They are imported from their modules, so the core stays importable without the AWS extras.
`MinSeverity` puts a severity floor in front of any sink; `dead_letters` keeps what a sink
rejected where a person can read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from ..domain.alerts import Alert
from ..domain.model import Severity
from ..ports import AlertSink, DeliveryReport, PendingAlert

__all__ = [
    "AlertSink",
    "DeliveryReport",
    "MinSeverity",
    "as_pending",
    "with_min_severity",
]


def as_pending(alerts: Iterable[Alert | PendingAlert | Mapping[str, Any]]) -> list[PendingAlert]:
    """Outbox entries for alerts given as `Alert`s, their `to_dict()` documents or entries already,
    so a sink can be called without an outbox (tests, one-off sends)."""
    out: list[PendingAlert] = []
    for a in alerts:
        if isinstance(a, PendingAlert):
            out.append(a)
        elif isinstance(a, Alert):
            out.append(PendingAlert.of(a))
        else:
            out.append(_of_document(a))
    return out


def _of_document(doc: Mapping[str, Any]) -> PendingAlert:
    try:
        alert_id = str(doc["alert_id"])
        severity = str(Severity(doc["severity"]))
        first = datetime.fromisoformat(str(doc["first_event_time"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not an alert document (Alert.to_dict): {exc}") from None
    return PendingAlert(alert_id, int(first.timestamp()), severity, orjson.dumps(doc))


class MinSeverity:
    """A sink that only receives alerts at or above a severity; lower ones count as delivered
    (to this sink there is nothing to send), so they do not stay pending forever."""

    def __init__(self, sink: AlertSink, min_severity: Severity) -> None:
        self.sink = sink
        self.name = sink.name
        self.min_severity = min_severity

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        wanted = [a for a in alerts if Severity(a.severity).rank >= self.min_severity.rank]
        report = self.sink.deliver(wanted) if wanted else DeliveryReport()
        skipped = [a.alert_id for a in alerts if a not in wanted]
        report.delivered += skipped
        report.counters["below_min_severity"] += len(skipped)
        return report


def with_min_severity(sink: AlertSink, min_severity: Severity | str | None) -> AlertSink:
    """`sink` behind a severity floor, or `sink` itself when there is none (a config value)."""
    if min_severity is None or min_severity == "":
        return sink
    return MinSeverity(sink, Severity(min_severity))


def parse_flag(raw: str) -> bool | None:
    """A flag variable's value: True for 1/true/yes/on, False for 0/false/no/off (any case,
    spaces around), None for anything else (the caller names the variable in its error)."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    return None


SizedItem = tuple[str, dict[str, Any], int]  # (alert_id, request entry, its bytes)


def send_in_order(
    batches: Sequence[list[SizedItem]],
    send: Callable[[list[SizedItem], DeliveryReport], bool],
    report: DeliveryReport,
) -> None:
    """Send `sized_batches`' requests in turn; once `send` says the round must stop (False),
    every alert of the requests left is pending (`not sent: an earlier request failed`)."""
    for n, batch in enumerate(batches):
        if not send(batch, report):
            for rest in batches[n + 1 :]:
                keep_pending(rest, report)
            return


def keep_pending(batch: Sequence[SizedItem], report: DeliveryReport) -> None:
    for alert_id, _, _ in batch:
        report.pending[alert_id] = "not sent: an earlier request failed"


def sized_batches(
    items: Sequence[SizedItem], max_count: int, max_bytes: int
) -> list[list[SizedItem]]:
    """`(alert_id, entry, size)` items in order, cut into requests of at most `max_count`
    entries and `max_bytes` (a single larger entry goes alone: the caller refuses it first)."""
    out: list[list[SizedItem]] = []
    batch: list[SizedItem] = []
    size = 0
    for item in items:
        if batch and (len(batch) == max_count or size + item[2] > max_bytes):
            out.append(batch)
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        out.append(batch)
    return out
