"""Delivery: pending alerts from the outbox to a sink, until each is delivered or dead-lettered.

`Deliverer.deliver_pending` is what every entry point calls after detection (the CLI after each
object, the real-time function after each message, the hourly reconciliation): it sends what is
pending, oldest first, marks what the sink accepted as delivered, dead-letters what the sink
says it will never accept, and leaves the rest pending with the reason (the next call retries
it). A configuration error at the sink (bad token, bad index) stops the round at once: nothing
is lost, nothing is hammered.

A failed round (the sink unreachable until its retry budget ran out, or misconfigured) opens the
deliverer's circuit: until `reset` (the real-time function resets it at the start of each
invocation, the CLI before its last round) `deliver_pending` does not call the sink, so a Splunk
outage costs one retry budget per invocation instead of one per object, and detection goes on.
The alerts stay pending in the outbox for the next invocation and the hourly reconciliation.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..ports import AlertSink, Outbox

log = logging.getLogger(__name__)


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
    # Why the deliverer's circuit is open after this call ("" = closed): this call's round
    # failed and opened it, or (`skipped`) it was already open and the sink was not called.
    circuit_open: str = ""
    skipped: bool = False

    @property
    def circuit_opened(self) -> bool:
        """This call's round failed and opened the circuit (an event worth a metric)."""
        return bool(self.circuit_open) and not self.skipped


class Deliverer:
    """Sends pending alerts under a lease, so concurrent deliverers (two Lambda containers, the
    reconciliation) never send the same alert; a crashed sender's lease expires after
    `lease_s` and the alert is sent by whoever comes next. Leases use the wall clock: they
    are about when to send, not about what happened.

    A circuit breaker keeps a sink that just failed from being called again: a round whose sink
    call leaves alerts pending (unreachable, retry budget spent) or reports a configuration
    error opens it, and until `reset` every `deliver_pending` only counts what is pending.
    It holds no clock: whoever owns the deliverer decides when to try again (the real-time
    processor at each new batch, i.e. each invocation; the CLI for its last round)."""

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
        self.circuit_open = ""  # why the sink is not called until reset(); "" = closed
        self.config_error = ""  # the sink's configuration error, when that is what opened it

    def reset(self) -> None:
        """Close the circuit: the next `deliver_pending` calls the sink again."""
        self.circuit_open = self.config_error = ""

    def hold(self, reason: str) -> None:
        """Open the circuit without a round (too little time left for one, say): the alerts
        wait in the outbox until `reset`."""
        if not self.circuit_open:
            self.circuit_open = reason

    def deliver_pending(self) -> DeliverySummary:
        summary = DeliverySummary()
        if self.circuit_open:
            summary.circuit_open, summary.skipped = self.circuit_open, True
            summary.config_error = self.config_error
            return self._count_left(summary)
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
            if report.config_error or report.pending:
                # The sink is down or misconfigured: calling it again in this invocation would
                # only spend another retry budget (the next batch would fail the same way).
                summary.config_error = self.config_error = report.config_error
                self._open(report.config_error or next(iter(report.pending.values())))
                summary.circuit_open = self.circuit_open
                break
            if not report.delivered and not report.dead_lettered:
                break  # the sink made no progress: leave the rest for the next call
        return self._count_left(summary)

    def _open(self, reason: str) -> None:
        self.circuit_open = reason
        log.warning(
            "delivery_circuit_open: the %s sink failed (%s); no more delivery attempts until "
            "the next invocation (or the end of the replay), the alerts stay pending in the outbox",
            self.sink.name,
            reason,
        )

    def _count_left(self, summary: DeliverySummary) -> DeliverySummary:
        left = self.outbox.pending(self.batch)
        summary.still_pending = len(left)
        if left:
            summary.oldest_pending_age_s = max(0.0, self.clock() - left[0].first_event_time)
        return summary
