"""Detection over one log object: records → distinct tuples → baseline → judged alerts.

Per object, the detector collects the distinct (account, principal, action) tuples with their
first and last eventTime, looks them up in one batch, claims the new ones atomically, refreshes
`last_seen` of known ones only when it moved by more than `refresh_after_days`, and asks the
policy about each principal's claimed tuples: at most one alert per principal per object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .alerts import Alert
from .baseline import Baseline
from .events import RecordSkipped, normalize
from .model import DAY, Principal, PrincipalKey, TupleClaim, TupleKey, TupleObservation
from .policy import AlertPolicy


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    forget_days: float = 90.0  # a tuple unseen this long (event time) is new again
    refresh_after_days: float = 1.0  # write last_seen at most this often per tuple


@dataclass(slots=True)
class ObjectResult:
    """What detection made of one log object."""

    source: str
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    principals: set[PrincipalKey] = field(default_factory=set)


class Detector:
    def __init__(
        self,
        baseline: Baseline,
        policy: AlertPolicy,
        settings: DetectionSettings | None = None,
        *,
        alerting: bool = True,
    ) -> None:
        self.baseline = baseline
        self.policy = policy
        self.settings = settings or DetectionSettings()
        self.alerting = alerting  # False: learn only (the `baseline` command)

    def process(
        self,
        records: Iterable[Any],
        source: str,
        fallback_account: str = "",
        fallback_region: str = "",
    ) -> ObjectResult:
        result = ObjectResult(source)
        stats = result.stats
        observed: dict[TupleKey, TupleObservation] = {}
        principals: dict[PrincipalKey, tuple[Principal, int]] = {}
        n_records = 0
        for raw in records:
            n_records += 1
            try:
                event = normalize(raw, fallback_account, fallback_region)
            except RecordSkipped as skip:
                stats[f"records_skipped.{skip.reason}"] += 1
                continue
            key = event.tuple_key
            obs = observed.get(key)
            t = event.event_time
            if obs is None:
                observed[key] = TupleObservation(event, t, t, 1, {event.region})
                pkey = key.principal_key
                seen = principals.get(pkey)
                if seen is None or t < seen[1]:
                    principals[pkey] = (event.principal, t)
            else:
                obs.count += 1
                obs.regions.add(event.region)
                if t < obs.first_seen:
                    # Keep the details of the earliest event: records are not strictly ordered.
                    obs.first_seen, obs.first_event = t, event
                    pkey = key.principal_key
                    if t < principals[pkey][1]:
                        principals[pkey] = (principals[pkey][0], t)
                elif t > obs.last_seen:
                    obs.last_seen = t
        stats["records"] += n_records
        stats["events"] += sum(o.count for o in observed.values())
        stats["tuples"] += len(observed)
        result.principals = set(principals)
        if not observed:
            return result

        first_seen = self.baseline.observe_principals({k: v[1] for k, v in principals.items()})
        known = self.baseline.lookup(observed.keys())
        forget = int(self.settings.forget_days * DAY)
        refresh_after = int(self.settings.refresh_after_days * DAY)
        claims: list[TupleClaim] = []
        refreshes: list[TupleClaim] = []
        for key, obs in observed.items():
            state = known.get(key)
            if state is None or state.expires_at <= obs.first_seen:
                claims.append(
                    TupleClaim(key, obs.first_seen, obs.last_seen, obs.last_seen + forget)
                )
            elif obs.last_seen >= state.last_seen + refresh_after:
                refreshes.append(
                    TupleClaim(key, state.first_seen, obs.last_seen, obs.last_seen + forget)
                )
        if refreshes:
            self.baseline.refresh(refreshes)
            stats["tuples_refreshed"] += len(refreshes)
        if not claims:
            return result
        claimed = self.baseline.claim(claims)
        stats["new_tuples"] += len(claimed)
        stats["claims_lost"] += len(claims) - len(claimed)
        if not self.alerting or not claimed:
            return result

        by_principal: dict[PrincipalKey, list[TupleObservation]] = {}
        for key in claimed:
            by_principal.setdefault(key.principal_key, []).append(observed[key])
        for pkey in sorted(by_principal):
            new = by_principal[pkey]
            principal = principals[pkey][0]
            verdict = self.policy.judge(principal, new, first_seen[pkey])
            if verdict.alerted:
                alert = Alert(
                    account_id=pkey.account_id,
                    principal=principal,
                    new_actions=[o.first_event for o in verdict.alerted],
                    severity=verdict.severity,
                    reasons=verdict.reasons,
                    source_objects=[source],
                )
                result.alerts.append(alert)
                stats[f"alerts.{alert.severity}"] += 1
            if verdict.suppressed:
                reason = verdict.suppressed_reason or "learning"
                stats[f"suppressed_tuples.{reason}"] += len(verdict.suppressed)
                result.suppressed.append(
                    Alert(
                        account_id=pkey.account_id,
                        principal=principal,
                        new_actions=[o.first_event for o in verdict.suppressed],
                        severity=verdict.severity,
                        reasons=verdict.reasons,
                        source_objects=[source],
                        suppressed_reason=reason,
                    )
                )
        return result
