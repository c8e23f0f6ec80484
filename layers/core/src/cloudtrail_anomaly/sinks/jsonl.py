"""JSON Lines sinks: one alert document a line, on a stream (stdout, the Lambda log) or in a file.

`JsonLinesSink` (a binary stream) lives in `delivery.py`, where the CLI uses it; the file sink
here appends to a path and fsyncs before it reports anything delivered, so "delivered" means on
disk. It opens the file on every batch: a file rotated or removed between batches is simply
created again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..delivery import DeliveryReport, JsonLinesSink
from ..outbox import PendingAlert

__all__ = ["JsonLinesFileSink", "JsonLinesSink"]


class JsonLinesFileSink:
    """Alerts appended as JSON Lines to a file."""

    name = "jsonl_file"

    def __init__(self, path: Path | str, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"JsonLinesFileSink({str(self.path)!r})"

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        if not alerts:
            return report
        ids = [a.alert_id for a in alerts]
        try:
            f = self.path.open("ab")
        except OSError as exc:
            # Missing folder, permissions: nothing works until someone fixes the path.
            reason = f"cannot open {self.path}: {exc.strerror or exc}"
            report.pending = dict.fromkeys(ids, reason)
            report.config_error = reason
            return report
        try:
            with f:
                f.write(b"".join(a.document + b"\n" for a in alerts))
                f.flush()
                if self.fsync:
                    os.fsync(f.fileno())
        except OSError as exc:
            # A full disk may free up: keep the alerts pending (a partial line may be left;
            # delivery is at-least-once and readers dedup on alert_id).
            report.pending = dict.fromkeys(ids, f"cannot write {self.path}: {exc.strerror or exc}")
            return report
        report.delivered = ids
        report.counters["events_sent"] += len(ids)
        return report
