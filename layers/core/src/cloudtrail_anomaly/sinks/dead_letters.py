"""Dead letters: the alerts a sink said it will never accept, kept with the reason for a person.

The outbox already marks such an alert dead and keeps its document; a `DeadLetterStore` is the
copy people look at (a file here; S3 later), with which sink refused it, why and when.
`WithDeadLetters` puts a store behind any sink. If the store cannot take a letter, the alert is
reported pending instead of dead, so it is tried again (and refused again) until the store
works: a rejected alert is never only in a log line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import orjson

from ..domain.model import iso
from ..ports import AlertSink, DeliveryReport, PendingAlert

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused alert: its outbox entry, the sink that refused it, why, and when (epoch s)."""

    alert: PendingAlert
    sink: str
    reason: str
    dead_lettered_at: int

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "alert_id": self.alert.alert_id,
                "sink": self.sink,
                "reason": self.reason,
                "dead_lettered_at": iso(self.dead_lettered_at),
                "severity": self.alert.severity,
                "first_event_epoch": self.alert.first_event_time,
                "alert": orjson.Fragment(self.alert.document),
            }
        )

    @staticmethod
    def from_json(line: bytes) -> DeadLetter:
        doc = orjson.loads(line)
        alert = PendingAlert(
            doc["alert_id"], doc["first_event_epoch"], doc["severity"], orjson.dumps(doc["alert"])
        )
        at = datetime.fromisoformat(doc["dead_lettered_at"])
        return DeadLetter(alert, doc["sink"], doc["reason"], int(at.timestamp()))


class DeadLetterStore(Protocol):
    def put(self, letters: Sequence[DeadLetter]) -> None:
        """Keep the letters durably; raise if they could not be kept."""
        ...

    def letters(self) -> list[DeadLetter]: ...


class MemoryDeadLetters:
    """A `DeadLetterStore` in a list, for tests and stateless runs."""

    def __init__(self) -> None:
        self.kept: list[DeadLetter] = []

    def put(self, letters: Sequence[DeadLetter]) -> None:
        self.kept.extend(letters)

    def letters(self) -> list[DeadLetter]:
        return list(self.kept)


class JsonLinesDeadLetters:
    """A `DeadLetterStore` appending one JSON object a line to a local file (fsynced), each with
    the alert's document verbatim under `alert`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def put(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        data = b"".join(letter.to_json() + b"\n" for letter in letters)
        with self.path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def letters(self) -> list[DeadLetter]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            return [DeadLetter.from_json(line) for line in f if line.strip()]


class WithDeadLetters:
    """`sink`, with what it dead-letters also kept in `store`."""

    def __init__(
        self,
        sink: AlertSink,
        store: DeadLetterStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.store = store
        self.clock = clock

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = self.sink.deliver(alerts)
        if not report.dead_lettered:
            return report
        by_id = {a.alert_id: a for a in alerts}
        now = int(self.clock())
        letters = [
            DeadLetter(by_id[i], self.sink.name, reason, now)
            for i, reason in report.dead_lettered.items()
            if i in by_id
        ]
        try:
            self.store.put(letters)
        except Exception as exc:
            reason = f"dead-letter store failed: {type(exc).__name__}: {exc}"
            log.error("%s; %d refused alert(s) stay pending", reason, len(letters))
            for letter in letters:
                del report.dead_lettered[letter.alert.alert_id]
                report.pending[letter.alert.alert_id] = reason
            report.counters["dead_letter_store_failures"] += 1
        return report
