"""The processed-object ledger: which log objects were already run through detection.

S3 notifications are delivered at least once, so the same object can arrive again minutes or
days later. The real-time path asks the ledger first, and a redelivered object costs one read.
The ledger is not what makes duplicates safe (the baseline's atomic claims are); it makes them
cheap, and it lets a reconciliation job list what was processed and what was missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProcessedObject:
    """One processed log object. `processed_at` is the newest eventTime in it (epoch seconds),
    or the delivery stamp in its key when it has none: event time, never the wall clock."""

    bucket: str
    key: str
    etag: str
    records: int
    alerts: int
    processed_at: int
    outcome: str = "processed"  # or "empty"


class ObjectLedger(Protocol):
    def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
        """The record of this exact object (same ETag), if it was processed."""
        ...

    def record(self, entry: ProcessedObject) -> None:
        """Remember a processed object (a later record of the same object replaces it)."""
        ...


class MemoryLedger:
    """An `ObjectLedger` in a dict: for tests and one-shot runs."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], ProcessedObject] = {}
        self.requests = 0

    def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
        self.requests += 1
        return self.entries.get((bucket, key, etag))

    def record(self, entry: ProcessedObject) -> None:
        self.requests += 1
        self.entries[(entry.bucket, entry.key, entry.etag)] = entry
