"""Extraction: one log object's records → its distinct tuples, with their time spans.

The part of detection that touches every record (and that `scripts/bench.py` measures): per
object, the distinct (account, principal, action) tuples with their first and last eventTime,
their count and earliest event, each principal with its earliest sighting, and the
lineage-granting calls. It reads neither the baseline nor the policy, so it may run in another
process (usecases/extract_pool.py). tests/reference_extract.py writes it plainly, an `Event` per
record, and the tests hold `Extractor.extract` to it.

Regions are tracked as pseudo-tuples (`@region:<name>`) in the same store, so "first activity
of this principal in this region" needs no second mechanism; they never alert by themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import msgspec
from msgspec import UNSET

from .events import (
    CompactIdentity,
    CompactRecord,
    RecordSkipped,
    account_of_identity,
    compact_event,
    is_account_id,
    normalize,
    normalize_action,
    parse_event_time,
    principal_of,
    principal_of_identity,
    target_of,
)
from .lineage import grants
from .model import Event, Grant, Principal, PrincipalKey, TupleKey, TupleObservation

REGION_PREFIX = "@region:"
PSEUDO = "@"  # pseudo-tuples (regions, networks, client families) start with it; actions never


@dataclass(slots=True)
class Extraction:
    """Distinct tuples of one object, with each principal and its earliest sighting."""

    observed: dict[TupleKey, TupleObservation] = field(default_factory=dict)
    principals: dict[PrincipalKey, tuple[Principal, int]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    grants: list[Grant] = field(default_factory=list)  # successful lineage-granting calls


@dataclass(slots=True)
class _Sighting:
    """Records of one object that count the same: their time span, their number, and the
    earliest of them (the first in the object among those of that time)."""

    first_seen: int
    first_index: int
    first: Any  # the CompactRecord, or the Event of a raw record
    principal: Principal | None = None
    last_seen: int = -1
    count: int = 1

    def __post_init__(self) -> None:
        self.last_seen = self.first_seen

    def precedes(self, other: _Sighting) -> bool:
        return (self.first_seen, self.first_index) < (other.first_seen, other.first_index)


def _merge(into: dict[_SightingKey, _Sighting], key: _SightingKey, seen: _Sighting) -> None:
    known = into.get(key)
    if known is None:
        into[key] = seen
        return
    if seen.precedes(known):
        known.first_seen, known.first_index = seen.first_seen, seen.first_index
        known.first, known.principal = seen.first, seen.principal
    known.last_seen = max(known.last_seen, seen.last_seen)
    known.count += seen.count


_SightingKey = tuple[str, str, str, str, str]  # account, principal key, source, name, region


def _fold(sightings: dict[_SightingKey, _Sighting]) -> Extraction:
    """Sightings into tuples, region pseudo-tuples and principals, as the reference extraction
    (tests/reference_extract.py) makes them record by record: the same spans, counts, earliest
    events and principals, and the same insertion order (a key first appears with the
    first-created sighting that has it)."""
    merged: dict[TupleKey, tuple[_SightingKey, _Sighting, int, int]] = {}
    earliest: dict[PrincipalKey, _Sighting] = {}
    actions: dict[tuple[str, str], str] = {}
    for skey, seen in sightings.items():
        account, pkey, source, name, region = skey
        action = actions.get((source, name))
        if action is None:
            action = actions[(source, name)] = normalize_action(source, name)
        for key in (
            TupleKey(account, pkey, action),
            TupleKey(account, pkey, REGION_PREFIX + region),
        ):
            m = merged.get(key)
            if m is None:
                merged[key] = (skey, seen, seen.last_seen, seen.count)
            else:
                skey0, seen0 = (skey, seen) if seen.precedes(m[1]) else (m[0], m[1])
                merged[key] = (skey0, seen0, max(m[2], seen.last_seen), m[3] + seen.count)
        principal_key = PrincipalKey(account, pkey)
        sighted = earliest.get(principal_key)
        if sighted is None or seen.precedes(sighted):
            earliest[principal_key] = seen
    ex = Extraction()
    events: dict[int, Event] = {}  # by record: its action and region tuples share one Event
    for key, (skey, seen, last_seen, count) in merged.items():
        event = events.get(seen.first_index)
        if event is None:
            event = events[seen.first_index] = _event_of(skey, seen)
        ex.observed[key] = TupleObservation(event, seen.first_seen, last_seen, count)
    for principal_key, seen in earliest.items():
        assert seen.principal is not None  # every sighting in `sightings` is resolved
        ex.principals[principal_key] = (seen.principal, seen.first_seen)
    return ex


def _event_of(key: _SightingKey, seen: _Sighting) -> Event:
    if isinstance(seen.first, Event):
        return seen.first
    account, _, _, _, region = key
    assert seen.principal is not None
    return compact_event(seen.first, seen.principal, account, region, seen.first_seen)


class Extractor:
    """Extracts objects one after another, keeping what it learnt of identities between them."""

    def __init__(self, per_session_roles: tuple[str, ...]) -> None:
        # Roles shared by many people (globs over the role name): keyed by role and session.
        self.per_session_roles = per_session_roles
        self._per_session: dict[str, bool] = {}
        # userIdentity -> (principal, or None: the service of the eventSource; its account).
        # Kept across objects: a warm Lambda or a replay meets the same identities again.
        self._identities: dict[CompactIdentity | None, tuple[Principal | None, str]] = {}

    def _keyed_principal(
        self, principal: Principal, cache: dict[Principal, Principal]
    ) -> Principal:
        if not principal.session or principal.type not in ("AssumedRole", "Unknown"):
            return principal
        shared = self._per_session.get(principal.name)
        if shared is None:
            shared = any(fnmatchcase(principal.name, g) for g in self.per_session_roles)
            self._per_session[principal.name] = shared
        if not shared:
            return principal
        keyed = cache.get(principal)
        if keyed is None:
            keyed = cache[principal] = msgspec.structs.replace(
                principal, key=f"{principal.key}#{principal.session}"
            )
        return keyed

    def _keyed(self, event: Event, cache: dict[Principal, Principal]) -> Event:
        keyed = self._keyed_principal(event.principal, cache)
        return (
            event if keyed is event.principal else msgspec.structs.replace(event, principal=keyed)
        )

    def extract(
        self, records: Iterable[Any], fallback_account: str = "", fallback_region: str = ""
    ) -> Extraction:
        """The object's distinct tuples with their time spans: the part of detection that
        touches every record (and that `scripts/bench.py` measures).

        Records are raw dicts (`read_records`) or `CompactRecord`s (`read_compact`); the result
        is the reference extraction's. A CompactRecord costs a few dict lookups: its principal is
        worked out once per distinct userIdentity, and the records of one (account, principal,
        eventSource, eventName, region) are one `_Sighting`; actions, region pseudo-tuples and
        `Event`s are made per sighting afterwards (`_fold`), Events only of the earliest records.
        """
        stats: Counter[str] = Counter()
        sightings: dict[_SightingKey, _Sighting] = {}
        found: list[Grant] = []
        if len(self._identities) > 100_000:
            self._identities.clear()
        identities = self._identities
        services: dict[str, Principal] = {}
        accounts: dict[str, bool] = {}
        keyed_cache: dict[Principal, Principal] = {}
        no_region = fallback_region or "unknown"
        principal: Principal | None
        index = -1
        for raw in records:
            index += 1
            if raw.__class__ is not CompactRecord:
                try:
                    event = self._keyed(
                        normalize(raw, fallback_account, fallback_region), keyed_cache
                    )
                except RecordSkipped as skip:
                    stats[f"records_skipped.{skip.reason}"] += 1
                    continue
                principal = event.principal
                _grant(found, event)
                key = (
                    event.account_id,
                    principal.key,
                    event.event_source,
                    event.event_name,
                    event.region,
                )
                _merge(sightings, key, _Sighting(event.event_time, index, event, principal))
                continue
            # normalize's steps, in its order
            if raw.eventType == "AwsCloudTrailInsight" or raw.insightDetails is not UNSET:
                stats["records_skipped.insight_event"] += 1
                continue
            value = raw.eventTime
            t = parse_event_time(raw.timestamp if value is None else value)
            if t is None:
                stats["records_skipped.no_event_time"] += 1
                continue
            source, name = raw.eventSource, raw.eventName
            if source.__class__ is not str or name.__class__ is not str or not source or not name:
                stats["records_skipped.no_action"] += 1
                continue
            identity = raw.userIdentity
            try:
                known = identities.get(identity)
                if known is None:
                    known = identities[identity] = self._identity(identity, keyed_cache)
            except TypeError:  # a list or an object in a field: unhashable, so not cached
                known = self._identity(identity, keyed_cache)
            principal, ui_account = known
            if principal is None:
                principal = services.get(source)
                if principal is None:
                    principal = services[source] = principal_of({"eventSource": source})
            account = raw.recipientAccountId
            valid = accounts.get(account) if account.__class__ is str else False
            if valid is None:
                valid = accounts[account] = is_account_id(account)
            if not valid:
                account = ui_account or fallback_account
                if not account:
                    stats["records_skipped.no_valid_account"] += 1
                    continue
            region = raw.awsRegion
            if region.__class__ is not str or not region:
                region = no_region
            if grants(source, name) and not raw.errorCode:
                target = target_of(raw.requestParameters)
                if target:
                    found.append(
                        Grant(
                            account,
                            principal.key,
                            normalize_action(source, name),
                            target,
                            t,
                            raw.eventID if isinstance(raw.eventID, str) else "",
                        )
                    )
            key = (account, principal.key, source, name, region)
            seen = sightings.get(key)
            if seen is None:
                sightings[key] = _Sighting(t, index, raw, principal)
            else:
                seen.count += 1
                if t < seen.first_seen:
                    # the earliest record's details: records are not strictly ordered
                    seen.first_seen, seen.first_index = t, index
                    seen.first, seen.principal = raw, principal
                elif t > seen.last_seen:
                    seen.last_seen = t
        stats["records"] += index + 1
        ex = _fold(sightings)
        ex.stats = stats
        ex.grants = sorted(found)
        return ex

    def _identity(
        self, identity: CompactIdentity | None, keyed_cache: dict[Principal, Principal]
    ) -> tuple[Principal | None, str]:
        ui = msgspec.to_builtins(identity)
        principal = principal_of_identity(ui)
        if principal is not None:
            principal = self._keyed_principal(principal, keyed_cache)
        return principal, account_of_identity(ui)


def _grant(found: list[Grant], event: Event) -> None:
    if event.target and not event.error_code and grants(event.event_source, event.event_name):
        found.append(
            Grant(
                event.account_id,
                event.principal.key,
                event.action,
                event.target,
                event.event_time,
                event.event_id,
            )
        )
