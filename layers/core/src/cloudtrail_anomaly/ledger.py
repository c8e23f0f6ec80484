"""The processed-object ledger: which log objects were already run through detection.

S3 notifications are delivered at least once, so the same object can arrive again minutes or
days later. The real-time path asks the ledger first, and a redelivered object costs one read.
The ledger is not what makes duplicates safe (the baseline's atomic claims are); it makes them
cheap, and it lets a reconciliation job list what was processed and what was missed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

ObjectId = tuple[str, str, str]  # (bucket, key, etag)

# DynamoDB's limits per BatchGetItem and BatchWriteItem (`MemoryLedger` counts requests alike).
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25


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
    outcome: str = "processed"  # or "empty", or "athena" (detected by reconciliation's query)

    @property
    def id(self) -> ObjectId:
        return (self.bucket, self.key, self.etag)


class ObjectLedger(Protocol):
    def get(self, bucket: str, key: str, etag: str) -> ProcessedObject | None:
        """The record of this exact object (same ETag), if it was processed."""
        ...

    def record(self, entry: ProcessedObject) -> None:
        """Remember a processed object (a later record of the same object replaces it)."""
        ...

    def get_many(self, ids: Iterable[ObjectId]) -> dict[ObjectId, ProcessedObject | None]:
        """Look many objects up in few requests. The answer holds every id the store answered:
        its record, or None when it was not processed. An id the store did not answer (after
        its retries) is left out, so that the caller asks again with `get`."""
        ...

    def record_many(self, entries: Sequence[ProcessedObject]) -> int:
        """Remember many processed objects in few requests; returns how many could not be
        written after the retries (they are only missing from the ledger: a redelivery or the
        reconciliation processes them again, which the baseline's claims make harmless)."""
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
        self.entries[entry.id] = entry

    def get_many(self, ids: Iterable[ObjectId]) -> dict[ObjectId, ProcessedObject | None]:
        wanted = list(dict.fromkeys(ids))
        self.requests += -(-len(wanted) // BATCH_GET_LIMIT)  # as many as BatchGetItem needs
        return {i: self.entries.get(i) for i in wanted}

    def record_many(self, entries: Sequence[ProcessedObject]) -> int:
        self.requests += -(-len(entries) // BATCH_WRITE_LIMIT)
        for entry in entries:
            self.entries[entry.id] = entry
        return 0
