"""The reference extraction: `Extractor.extract` written plainly, an `Event` per record.

tests/test_fast_path.py and tests/test_record_isolation.py hold the fast extraction to it, and
`scripts/bench.py --methods reference` measures it. It lives with the tests: detection never
runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

import msgspec
from cloudtrail_anomaly.domain.detector import DetectionSettings
from cloudtrail_anomaly.domain.events import RecordSkipped, normalize
from cloudtrail_anomaly.domain.extract import REGION_PREFIX, Extraction
from cloudtrail_anomaly.domain.lineage import grants
from cloudtrail_anomaly.domain.model import Event, Grant, PrincipalKey, TupleKey, TupleObservation

PER_SESSION_ROLES = DetectionSettings().per_session_roles


def keyed(event: Event, per_session_roles: Iterable[str]) -> Event:
    """The event with its principal keyed by role and session when the role is shared."""
    p = event.principal
    if not p.session or p.type not in ("AssumedRole", "Unknown"):
        return event
    if not any(fnmatchcase(p.name, g) for g in per_session_roles):
        return event
    return msgspec.structs.replace(
        event, principal=msgspec.structs.replace(p, key=f"{p.key}#{p.session}")
    )


def reference_extract(
    records: Iterable[Any],
    fallback_account: str = "",
    fallback_region: str = "",
    per_session_roles: Iterable[str] = PER_SESSION_ROLES,
) -> Extraction:
    """The object's distinct tuples, region pseudo-tuples, principals, skips and grants."""
    roles = tuple(per_session_roles)
    ex = Extraction()
    stats, observed, principals = ex.stats, ex.observed, ex.principals
    n_records = 0
    for raw in records:
        n_records += 1
        try:
            event = keyed(normalize(raw, fallback_account, fallback_region), roles)
        except RecordSkipped as skip:
            stats[f"records_skipped.{skip.reason}"] += 1
            continue
        t = event.event_time
        if event.target and not event.error_code and grants(event.event_source, event.event_name):
            ex.grants.append(
                Grant(
                    event.account_id,
                    event.principal.key,
                    event.action,
                    event.target,
                    t,
                    event.event_id,
                )
            )
        for key in (
            event.tuple_key,
            TupleKey(event.account_id, event.principal.key, REGION_PREFIX + event.region),
        ):
            obs = observed.get(key)
            if obs is None:
                observed[key] = TupleObservation(event, t, t)
            elif t < obs.first_seen:
                # Keep the details of the earliest event: records are not strictly ordered.
                obs.first_seen, obs.first_event = t, event
                obs.count += 1
            else:
                obs.count += 1
                if t > obs.last_seen:
                    obs.last_seen = t
        pkey = PrincipalKey(event.account_id, event.principal.key)
        seen = principals.get(pkey)
        if seen is None or t < seen[1]:
            principals[pkey] = (event.principal, t)
    stats["records"] += n_records
    ex.grants.sort()
    return ex
