"""The ports: every seam the core depends on, each a `typing.Protocol`, with its value types.

The domain and the use cases are written against these; adapters implement them (`stores/`,
`sinks/`, `athena/runner.py`, `aws/`) and `app/wiring.py` plugs them in. Each port has an
in-memory implementation for tests and one-shot runs (`stores/memory.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import orjson

from .domain.alerts import Alert
from .domain.model import (
    Mark,
    MarkKind,
    PrincipalKey,
    RoleInfo,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)

# -- the baseline: known tuples, claimed atomically ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Staged:
    """What a principal's claim writes besides its tuples, in the same transaction."""

    alerts: Sequence[PendingAlert] = ()
    window: Sequence[WindowEntry] | None = None  # its burst window from now on; None: unchanged
    window_expires_at: int = 0  # event time after which the store may drop that window
    # Lineage marks (domain/lineage.py): this principal's alert, and the principals it made
    # or empowered; at most MAX_STAGED_MARKS, each replacing the stored mark of its key.
    marks: Sequence[Mark] = ()


MAX_STAGED_MARKS = 8  # marks one claim's transaction carries (DynamoDB: items it reserves)
MarkKey = tuple[PrincipalKey, MarkKind]


# Called by `claim` once per principal with the keys it is about to win and the principal's
# burst window as stored; returns what to write in the same transaction: the alerts (pending in
# the outbox), so that no crash can separate a claimed tuple from its alert, and the new burst
# window, so that a claim that did not commit left no trace in it. It must be pure (no I/O, no
# store write): a store may call it more than once, with fewer keys when a rival wins some, with
# the same keys after a conflict, or with a window another writer has just changed; the last
# call is the one that counts. A store may call it optimistically and then win nothing
# (DynamoDB learns of a rival only when its transaction is cancelled): its result is then dropped.
Stage = Callable[[PrincipalKey, frozenset[TupleKey], Sequence[WindowEntry]], Staged]


class Baseline(Protocol):
    """Which (account, principal, action) tuples are known, and since when: the seam between
    the pure detector and a store (memory, SQLite, DynamoDB). Lookups are batched, and recording
    a new tuple is an atomic *claim* (write if absent, or if the stored tuple expired), so that
    when two workers see the same new tuple, exactly one of them alerts on it."""

    def lookup(self, keys: Collection[TupleKey]) -> dict[TupleKey, TupleState]:
        """The stored state of those keys that the store holds (expired ones included)."""
        ...

    def claim(self, claims: Sequence[TupleClaim], stage: Stage | None = None) -> set[TupleKey]:
        """Atomically record each tuple if it is absent, or if the stored one's `expires_at` is
        at or before the claim's `first_seen` (forgotten). Returns the keys this call claimed;
        a key claimed concurrently by someone else is not in the result.

        Claims are all-or-nothing per principal; with `stage`, each principal's alerts and
        burst window are written in the same transaction as its claims (see `Stage`)."""
        ...

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        """Move known tuples' `last_seen` and `expires_at` forward (never backward)."""
        ...

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        """Merge each principal's earliest sighting into the store; return the stored first
        sighting (the minimum of what was known and what was seen now)."""
        ...

    def marks(self, keys: Collection[MarkKey]) -> dict[MarkKey, Mark]:
        """The stored lineage marks of these keys (expired ones included)."""
        ...

    def put_marks(self, marks: Sequence[Mark]) -> None:
        """Store marks outside a claim (each replaces the stored mark of its key): those that
        follow from stored marks alone, so that a retry derives them again."""
        ...


@runtime_checkable
class BatchingBaseline(Protocol):
    """A capability some stores add to `Baseline` (DynamoDB): during a batch of objects (one SQS
    batch) refreshes are held back and written many to a request. The memory and SQLite stores
    write them at once and do not offer it; the real-time use case asks for it only if present."""

    def hold_refreshes(self) -> None:
        """A batch of objects begins: until `flush`, refreshes may be held back."""
        ...

    def flush(self) -> None:
        """The batch ends: write the refreshes held since `hold_refreshes`, and hold no more."""
        ...

    @property
    def deferred(self) -> int:
        """Refreshes held and not written yet. An object is recorded as processed only when
        none are: recorded first, a crash would lose the refreshes it held, since a retry
        skips what the ledger says was processed."""
        ...


# -- the outbox: alerts pending delivery -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert waiting in the outbox: its id, what orders it, and its JSON document."""

    alert_id: str
    first_event_time: int
    severity: str
    document: bytes  # the alert's JSON (Alert.to_dict), exactly as it will be delivered
    attempts: int = 0
    last_error: str = ""

    @staticmethod
    def of(alert: Alert) -> PendingAlert:
        return PendingAlert(
            alert.alert_id,
            alert.first_event_time,
            str(alert.severity),
            orjson.dumps(alert.to_dict()),
        )


class Outbox(Protocol):
    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        """Store alerts as pending (idempotent by alert_id; a delivered one stays delivered)."""
        ...

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        """Pending alerts, oldest first event first."""
        ...

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        """Take the right to send these pending alerts until `until` (wall-clock seconds):
        returns the ids that were pending and not leased by another sender (or whose lease
        expired by `now`). Two workers delivering at once never send the same alert."""
        ...

    def mark_delivered(self, alert_ids: Sequence[str]) -> None: ...

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        """Count a failed attempt and drop the lease; the alerts stay pending."""
        ...

    def dead_letter(self, alert_id: str, reason: str) -> None:
        """Give up on one alert Splunk will never accept; keep it, with the reason."""
        ...

    def dead_letters(self) -> list[tuple[PendingAlert, str]]: ...


# -- where alerts go -------------------------------------------------------------------------------


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


# -- the processed-object ledger -------------------------------------------------------------------

ObjectId = tuple[str, str, str]  # (bucket, key, etag)


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
    # How many entries `record_many` writes in one request: a batch's processed objects are
    # handed over this many at a time, so that a crash mid-batch loses few ledger entries.
    write_batch_size: int

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


# -- log objects: read one, list a folder ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object named by a notification. `etag` is empty when the notification does not say."""

    bucket: str
    key: str
    etag: str = ""


class ByteStream(Protocol):
    """What the trail reader reads a log object from: a local file, an S3 body, bytes."""

    def read(self, size: int = -1, /) -> bytes: ...


class LogObjectBody(ByteStream, Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OpenedObject:
    etag: str
    body: LogObjectBody


class ObjectGone(Exception):
    """The notified object no longer exists (deleted, or expired by a lifecycle rule)."""


class ObjectSource(Protocol):
    def open(self, bucket: str, key: str) -> OpenedObject:
        """Start reading an object; raises `ObjectGone` when it does not exist."""
        ...


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    etag: str
    size: int


class ObjectLister(Protocol):
    def list_objects(
        self, bucket: str, prefix: str, start_after: str = ""
    ) -> Iterable[ListedObject]:
        """Objects under `prefix` whose keys sort after `start_after`, in key order."""
        ...

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        """The names of the folders directly under `prefix`: S3's common prefixes, without
        `prefix` and the trailing slash."""
        ...


# -- Athena ----------------------------------------------------------------------------------------

Row = Mapping[str, str | None]


class QueryFailed(Exception):
    """A query that ended FAILED or CANCELLED (or ran out of time); the message says why."""


@dataclass(slots=True)
class QueryResult:
    """A finished query: its id, what it scanned, and its rows (fetched as they are read)."""

    query_id: str
    bytes_scanned: int
    rows: Iterable[Row] = field(default_factory=list)


class QueryRunner(Protocol):
    def run(self, sql: str) -> QueryResult:
        """Run one statement to completion; raise `QueryFailed` when it fails."""
        ...


# -- enrichment ------------------------------------------------------------------------------------


class Enricher(Protocol):
    def account_name(self, account_id: str) -> str | None:
        """The account's name (Organizations), or None when unknown."""
        ...

    def account_owner(self, account_id: str) -> str | None:
        """Who owns the account: its e-mail address in Organizations, or None when unknown."""
        ...

    def role_info(self, role_arn: str) -> RoleInfo | None:
        """CreateDate and trust-policy principals of an IAM role, or None when unknown."""
        ...


class NoEnrichment:
    """The `Enricher` of a deployment without enrichment: it knows nothing."""

    def account_name(self, account_id: str) -> str | None:
        return None

    def account_owner(self, account_id: str) -> str | None:
        return None

    def role_info(self, role_arn: str) -> RoleInfo | None:
        return None


# -- what a store may offer besides its port -------------------------------------------------------


class Metered(Protocol):
    @property
    def requests(self) -> int: ...


class ClaimFailures(Protocol):
    def take_failed_claims(self) -> int: ...
