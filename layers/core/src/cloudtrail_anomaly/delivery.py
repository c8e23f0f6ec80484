"""Delivery: pending alerts from the outbox to a sink, until each is delivered or dead-lettered.

`Deliverer.deliver_pending` is what every entry point calls after detection (the CLI after each
object, the real-time function after each message, the hourly reconciliation): it sends what is
pending, oldest first, marks what the sink accepted as delivered, dead-letters what the sink
says it will never accept, and leaves the rest pending with the reason (the next call retries
it). A configuration error at the sink (bad token, bad index) stops the round at once: nothing
is lost, nothing is hammered.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from .outbox import Outbox, PendingAlert
from .policy import Severity


@dataclass(slots=True)
class DeliveryReport:
    """What a sink did with one batch; every alert of the batch is in exactly one of
    `delivered`, `dead_lettered` or `pending`."""

    delivered: list[str] = field(default_factory=list)
    dead_lettered: dict[str, str] = field(default_factory=dict)  # alert_id → reason
    pending: dict[str, str] = field(default_factory=dict)  # alert_id → why not yet
    config_error: str = ""  # the sink cannot work as configured: stop, keep everything pending
    counters: Counter[str] = field(default_factory=Counter)  # requests, retries… (metrics)


class AlertSink(Protocol):
    name: str

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport: ...


class JsonLinesSink:
    """Alerts as JSON Lines on a binary stream (a file, stdout, or the Lambda log)."""

    name = "jsonl"

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        for alert in alerts:
            self.stream.write(alert.document + b"\n")
            report.delivered.append(alert.alert_id)
        self.stream.flush()
        report.counters["events_sent"] += len(alerts)
        return report


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


@dataclass(slots=True)
class DeliverySummary:
    delivered: int = 0
    dead_lettered: int = 0
    still_pending: int = 0
    # now - first event time of the oldest alert still pending: how late it already is (for
    # an alarm); 0 when nothing is pending.
    oldest_pending_age_s: float = 0.0
    config_error: str = ""
    counters: Counter[str] = field(default_factory=Counter)


class Deliverer:
    """Sends pending alerts under a lease, so concurrent deliverers (two Lambda containers, the
    reconciliation) never send the same alert; a crashed sender's lease expires after
    `lease_s` and the alert is sent by whoever comes next. Leases use the wall clock: they
    are about when to send, not about what happened."""

    def __init__(
        self,
        outbox: Outbox,
        sink: AlertSink,
        *,
        batch: int = 500,
        lease_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.sink = sink
        self.batch = batch
        self.lease_s = lease_s
        self.clock = clock

    def deliver_pending(self) -> DeliverySummary:
        summary = DeliverySummary()
        attempted: set[str] = set()
        while True:
            # Each round sends what has not been tried in this call yet, so an alert the sink
            # keeps refusing is retried by the next call, not in a tight loop here.
            batch = [
                a
                for a in self.outbox.pending(self.batch + len(attempted))
                if a.alert_id not in attempted
            ][: self.batch]
            if not batch:
                break
            attempted.update(a.alert_id for a in batch)
            now = self.clock()
            leased = set(self.outbox.lease([a.alert_id for a in batch], now + self.lease_s, now))
            batch = [a for a in batch if a.alert_id in leased]
            if not batch:
                continue  # all being sent by someone else
            report = self.sink.deliver(batch)
            summary.counters.update(report.counters)
            if report.delivered:
                self.outbox.mark_delivered(report.delivered)
                summary.delivered += len(report.delivered)
            for alert_id, reason in report.dead_lettered.items():
                self.outbox.dead_letter(alert_id, reason)
                summary.dead_lettered += 1
            by_reason: dict[str, list[str]] = {}
            for alert_id, reason in report.pending.items():
                by_reason.setdefault(reason, []).append(alert_id)
            for reason, ids in by_reason.items():
                self.outbox.record_failure(ids, reason)
            if report.config_error:
                summary.config_error = report.config_error
                break
            if not report.delivered and not report.dead_lettered:
                break  # the sink made no progress (outage): leave the rest for the next call
        left = self.outbox.pending(self.batch)
        summary.still_pending = len(left)
        if left:
            summary.oldest_pending_age_s = max(0.0, self.clock() - left[0].first_event_time)
        return summary
