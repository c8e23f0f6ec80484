"""The baseline: which (account, principal, action) tuples are known, and since when.

`Baseline` is the seam between the pure detector and a store. It is shaped for DynamoDB as much
as for SQLite: lookups are batched, and recording a new tuple is an atomic *claim* (write if
absent, or if the stored tuple expired) so that when two workers see the same new tuple, exactly
one of them alerts on it. `MemoryBaseline` is the in-memory implementation the tests use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from .domain.model import PrincipalKey, TupleClaim, TupleKey, TupleState, WindowEntry
from .outbox import MemoryOutbox, PendingAlert

# A principal's burst window holds at most this many entries (the newest), and at most this
# much JSON: it is one DynamoDB item (400 KB at most), written with the claims. Either bound is
# far above any burst threshold, so the rule only ever counts fewer entries than it would
# without them when one principal does hundreds of new things within the window.
MAX_WINDOW_ENTRIES = 500
MAX_WINDOW_BYTES = 100_000


@dataclass(frozen=True, slots=True)
class Staged:
    """What a principal's claim writes besides its tuples, in the same transaction."""

    alerts: Sequence[PendingAlert] = ()
    window: Sequence[WindowEntry] | None = None  # its burst window from now on; None: unchanged
    window_expires_at: int = 0  # event time after which the store may drop that window


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

    def hold_refreshes(self) -> None:
        """A batch of objects begins: until `flush`, the store may hold refreshes back to write
        many in one request. A store that writes them at once does nothing."""
        ...

    def flush(self) -> None:
        """The batch ends: write the refreshes held since `hold_refreshes`, and hold no more."""
        ...

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        """Merge each principal's earliest sighting into the store; return the stored first
        sighting (the minimum of what was known and what was seen now)."""
        ...


class MemoryBaseline:
    """A `Baseline` in a dict: for tests, and for one-shot runs that need no state."""

    def __init__(self, outbox: MemoryOutbox | None = None) -> None:
        self.outbox = outbox or MemoryOutbox()
        self.tuples: dict[TupleKey, TupleState] = {}
        self.principals: dict[PrincipalKey, int] = {}
        self.windows: dict[PrincipalKey, list[WindowEntry]] = {}
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

    def hold_refreshes(self) -> None:
        pass  # refreshes are written at once

    def flush(self) -> None:
        pass

    def observe_principals(self, seen: Mapping[PrincipalKey, int]) -> dict[PrincipalKey, int]:
        self.requests += 1
        for key, first in seen.items():
            old = self.principals.get(key)
            if old is None or first < old:
                self.principals[key] = first
        return {key: self.principals[key] for key in seen}


def merge_window(
    current: Sequence[WindowEntry], entries: Sequence[WindowEntry], window_s: int
) -> list[WindowEntry]:
    """The window after adding `entries`: deduplicated, sorted, within `window_s` of the newest,
    and within MAX_WINDOW_ENTRIES and MAX_WINDOW_BYTES (the newest entries are kept)."""
    merged = sorted(set(current) | set(entries))
    if not merged:
        return merged
    horizon = merged[-1].event_time - window_s
    kept: list[WindowEntry] = []
    size = 2  # the JSON list's brackets
    for e in reversed(merged):
        size += len(encode_window_entry(e)) + 1
        if e.event_time < horizon or len(kept) == MAX_WINDOW_ENTRIES or size > MAX_WINDOW_BYTES:
            break
        kept.append(e)
    kept.reverse()
    return kept


def encode_window_entry(entry: WindowEntry) -> bytes:
    """One window entry as the stores keep it (a JSON array)."""
    return orjson.dumps(list(entry))


def encode_window(entries: Sequence[WindowEntry]) -> str:
    return orjson.dumps([list(e) for e in entries]).decode()


def decode_window(text: str | bytes) -> list[WindowEntry]:
    return [WindowEntry(*e) for e in orjson.loads(text)]


def claimable(state: TupleState | None, claim: TupleClaim) -> bool:
    """A claim wins over an absent tuple, or one forgotten by the claim's first sighting."""
    return state is None or state.expires_at <= claim.first_seen


def group_by_principal(claims: Sequence[TupleClaim]) -> dict[PrincipalKey, list[TupleClaim]]:
    groups: dict[PrincipalKey, list[TupleClaim]] = {}
    for c in claims:
        groups.setdefault(c.key.principal_key, []).append(c)
    return groups
