"""In-memory implementations of the ports: for tests, and for one-shot runs that keep no state.

`MemoryBaseline` (with its `MemoryOutbox`), `MemoryLedger`, and the enricher `StaticEnrichment`
(names given in advance; `ports.NoEnrichment` is enrichment off).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from ..domain.model import (
    Mark,
    PrincipalKey,
    RoleInfo,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from ..ports import MarkKey, ObjectId, PendingAlert, ProcessedObject, Stage
from .claims import claimable, group_by_principal


class MemoryBaseline:
    """A `Baseline` in a dict: for tests, and for one-shot runs that need no state."""

    def __init__(self, outbox: MemoryOutbox | None = None) -> None:
        self.outbox = outbox or MemoryOutbox()
        self.tuples: dict[TupleKey, TupleState] = {}
        self.principals: dict[PrincipalKey, int] = {}
        self.windows: dict[PrincipalKey, list[WindowEntry]] = {}
        self.stored_marks: dict[MarkKey, Mark] = {}
        self.requests = 0

    def lookup(self, keys: Collection[TupleKey]) -> dict[TupleKey, TupleState]:
        self.requests += 1
        return {k: self.tuples[k] for k in keys if k in self.tuples}

    def claim(self, claims: Sequence[TupleClaim], stage: Stage | None = None) -> set[TupleKey]:
        self.requests += 1
        claimed: set[TupleKey] = set()
        for pkey, group in group_by_principal(claims).items():
            won = [c for c in group if claimable(self.tuples.get(c.key), c)]
            if not won:
                continue
            if stage is not None:
                window = tuple(self.windows.get(pkey, ()))
                staged = stage(pkey, frozenset(c.key for c in won), window)
                self.outbox.stage(staged.alerts)  # first: if it fails, nothing else is written
                if staged.window is not None:
                    self.windows[pkey] = list(staged.window)
                for mark in staged.marks:
                    self.stored_marks[mark.key] = mark
            for c in won:
                self.tuples[c.key] = TupleState(c.first_seen, c.last_seen, c.expires_at)
                claimed.add(c.key)
        return claimed

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        self.requests += 1
        for u in updates:
            old = self.tuples.get(u.key)
            if old is not None:
                self.tuples[u.key] = TupleState(
                    old.first_seen,
                    max(old.last_seen, u.last_seen),
                    max(old.expires_at, u.expires_at),
                )

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        self.requests += 1
        for key, first in seen.items():
            old = self.principals.get(key)
            if old is None or first < old:
                self.principals[key] = first
        return {key: self.principals[key] for key in seen}

    def marks(self, keys: Collection[MarkKey]) -> dict[MarkKey, Mark]:
        self.requests += 1
        return {k: self.stored_marks[k] for k in keys if k in self.stored_marks}

    def put_marks(self, marks: Sequence[Mark]) -> None:
        self.requests += 1
        for mark in marks:
            self.stored_marks[mark.key] = mark


class MemoryOutbox:
    """An `Outbox` in dicts, for tests and stateless runs."""

    def __init__(self) -> None:
        self.items: dict[str, PendingAlert] = {}
        self.status: dict[str, str] = {}  # pending | delivered | dead
        self.reasons: dict[str, str] = {}
        self.leases: dict[str, float] = {}

    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        for a in alerts:
            if a.alert_id not in self.status:
                self.items[a.alert_id] = a
                self.status[a.alert_id] = "pending"

    def pending(self, limit: int = 500) -> list[PendingAlert]:
        waiting = [self.items[i] for i, s in self.status.items() if s == "pending"]
        waiting.sort(key=lambda a: (a.first_event_time, a.alert_id))
        return waiting[:limit]

    def lease(self, alert_ids: Sequence[str], until: float, now: float) -> list[str]:
        taken = []
        for i in alert_ids:
            if self.status.get(i) == "pending" and self.leases.get(i, 0.0) <= now:
                self.leases[i] = until
                taken.append(i)
        return taken

    def mark_delivered(self, alert_ids: Sequence[str]) -> None:
        for i in alert_ids:
            if i in self.status:
                self.status[i] = "delivered"

    def record_failure(self, alert_ids: Sequence[str], reason: str) -> None:
        for i in alert_ids:
            a = self.items.get(i)
            if a is not None and self.status[i] == "pending":
                self.leases.pop(i, None)
                self.items[i] = PendingAlert(
                    a.alert_id, a.first_event_time, a.severity, a.document, a.attempts + 1, reason
                )

    def dead_letter(self, alert_id: str, reason: str) -> None:
        if alert_id in self.status:
            self.status[alert_id] = "dead"
            self.reasons[alert_id] = reason

    def dead_letters(self) -> list[tuple[PendingAlert, str]]:
        return [(self.items[i], self.reasons[i]) for i, s in self.status.items() if s == "dead"]


class MemoryLedger:
    """An `ObjectLedger` in a dict: for tests and one-shot runs. It counts requests as a store
    that reads 100 and writes 25 entries a request would (DynamoDB's batch limits)."""

    read_batch_size = 100
    write_batch_size = 25

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
        self.requests += -(-len(wanted) // self.read_batch_size)  # as many as BatchGetItem needs
        return {i: self.entries.get(i) for i in wanted}

    def record_many(self, entries: Sequence[ProcessedObject]) -> int:
        self.requests += -(-len(entries) // self.write_batch_size)
        for entry in entries:
            self.entries[entry.id] = entry
        return 0


class StaticEnrichment:
    """An in-memory `Enricher` (tests, and users who keep account names in a file)."""

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        roles: dict[str, RoleInfo] | None = None,
        owners: dict[str, str] | None = None,
    ) -> None:
        self.accounts = accounts or {}
        self.roles = roles or {}
        self.owners = owners or {}

    def account_name(self, account_id: str) -> str | None:
        return self.accounts.get(account_id)

    def account_owner(self, account_id: str) -> str | None:
        return self.owners.get(account_id)

    def role_info(self, role_arn: str) -> RoleInfo | None:
        return self.roles.get(role_arn)
