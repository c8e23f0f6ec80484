"""Amazon EventBridge sink: each alert one event on a bus, for rules to route (a queue, a
ticketing API destination, another account's bus).

The event: `Source` `cloudtrail-anomaly`, `DetailType` `CloudTrail Anomaly Alert`, `Time` the
alert's first event time, `Detail` the alert's JSON verbatim (or another format through
`sinks/formatted.py`, e.g. OCSF). A rule matches on the detail's fields, e.g.
`{"source": ["cloudtrail-anomaly"], "detail": {"severity": ["high", "critical"]}}`.

`PutEvents` takes at most 10 entries and 256 KB a call, and answers per entry: entries failed
for a passing reason (throttling, an internal failure) are sent again, with exponential backoff
and full jitter, up to `max_attempts` times, then left pending; an entry EventBridge refuses
(malformed detail, an invalid argument) is dead-lettered with its code and message, and an
alert too big for an entry of its own is dead-lettered without being sent. Whole-call errors:
a missing bus or no permission is a configuration error (everything stays pending, logged
once); throttling and internal errors are retried like entries; an unreachable endpoint leaves
the rest pending. The boto3 client and `sleep` are constructor parameters.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ..ports import AlertSink, DeliveryReport, PendingAlert
from . import send_in_order, sized_batches
from .formatted import with_format

log = logging.getLogger(__name__)

SOURCE = "cloudtrail-anomaly"
DETAIL_TYPE = "CloudTrail Anomaly Alert"
MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024  # EventBridge: the entries of one PutEvents, as it counts them
TIME_BYTES = 14  # what EventBridge counts for an entry's Time

_TRY_AGAIN = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)
_CONFIG_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "NotAuthorizedException",
        "KMSAccessDeniedException",
    }
)


class EventPutter(Protocol):
    """The part of a boto3 EventBridge client this sink uses."""

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]: ...


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it against the 256 KB of a call."""
    size = TIME_BYTES if "Time" in entry else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name, "")).encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", ()))


class EventBridgeSink:
    name = "eventbridge"

    def __init__(
        self,
        client: EventPutter,
        bus_name: str = "default",
        *,
        max_attempts: int = 4,
        base_delay_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.bus_name = bus_name
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._logged_config_error = False

    def __repr__(self) -> str:
        return f"EventBridgeSink({self.bus_name!r})"

    def entry(self, alert: PendingAlert) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": alert.document.decode(),
            "Time": datetime.fromtimestamp(alert.first_event_time, UTC),
            "EventBusName": self.bus_name,
        }

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        ready: list[tuple[str, dict[str, Any], int]] = []
        for alert in alerts:
            entry = self.entry(alert)
            size = entry_size(entry)
            if size > MAX_REQUEST_BYTES:
                report.dead_lettered[alert.alert_id] = (
                    f"event of {size:,} bytes exceeds EventBridge's {MAX_REQUEST_BYTES:,}-byte limit"
                )
                continue
            ready.append((alert.alert_id, entry, size))
        send_in_order(
            sized_batches(ready, MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES), self._send, report
        )
        return report

    def _send(self, batch: list[tuple[str, dict[str, Any], int]], report: DeliveryReport) -> bool:
        """Put one batch, re-sending the entries failed for a passing reason; False when the
        round must stop (a configuration error or an unreachable endpoint)."""
        todo = batch
        reason = ""
        call_failed = False  # the last attempt failed as a whole (throttled): stop the round
        for attempt in range(self.max_attempts):
            if attempt:
                report.counters["retries"] += 1
                ceiling = self.base_delay_s * 2 ** (attempt - 1)
                self.sleep(self.rng.uniform(0, ceiling))
            report.counters["requests"] += 1
            try:
                answer = self.client.put_events(Entries=[e for _, e, _ in todo])
            except ClientError as exc:
                error = exc.response.get("Error", {})
                code = str(error.get("Code", ""))
                reason = f"EventBridge {code or 'error'}: {error.get('Message', '')}"
                if code in _TRY_AGAIN:
                    call_failed = True
                    continue
                if code in _CONFIG_ERRORS:
                    report.config_error = reason
                    if not self._logged_config_error:
                        log.error(
                            "EventBridge sink misconfigured (%s); alerts stay pending", reason
                        )
                        self._logged_config_error = True
                for alert_id, _, _ in todo:
                    report.pending[alert_id] = reason
                return False
            except BotoCoreError as exc:
                for alert_id, _, _ in todo:
                    report.pending[alert_id] = f"EventBridge unreachable: {exc}"
                return False
            call_failed = False
            results: list[Mapping[str, Any]] = list(answer.get("Entries") or [])
            again: list[tuple[str, dict[str, Any], int]] = []
            for n, item in enumerate(todo):
                result = results[n] if n < len(results) else {"ErrorCode": "NoResult"}
                code = str(result.get("ErrorCode") or "")
                if not code and result.get("EventId"):
                    report.delivered.append(item[0])
                    report.counters["events_sent"] += 1
                    continue
                reason = f"EventBridge {code}: {result.get('ErrorMessage') or ''}"
                if code in _TRY_AGAIN or code == "NoResult":
                    again.append(item)
                else:
                    report.dead_lettered[item[0]] = f"EventBridge refused the event: {reason}"
            if not again:
                return True
            todo = again
        for alert_id, _, _ in todo:
            report.pending[alert_id] = f"{reason} (after {self.max_attempts} attempts)"
        return not call_failed


def eventbridge_sink_from_env(
    env: Mapping[str, str], boto3_client: Callable[..., Any]
) -> AlertSink | None:
    """The sink the deployment asks for: `EVENTBRIDGE_BUS_NAME` (a name or ARN) turns it on;
    `ALERT_FORMAT` (`alert` or `ocsf`) says what the detail is."""
    bus = env.get("EVENTBRIDGE_BUS_NAME", "").strip()
    if not bus:
        return None
    sink = EventBridgeSink(boto3_client("events"), bus)
    return with_format(sink, env.get("ALERT_FORMAT", "").strip() or None)  # UnknownFormat
