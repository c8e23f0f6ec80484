"""Detection over one log object: records → distinct tuples → baseline → judged alerts.

Per object, the detector takes the distinct (account, principal, action) tuples with their
first and last eventTime (extract.py), looks them up in one batch, claims the new ones
atomically, refreshes `last_seen` of known ones only when it moved by more than
`refresh_after_days`, and has each principal's claimed tuples judged inside its claim
(judge.py): at most one alert per principal per object, plus a follow-up when the principal's
new actions across objects reach the burst threshold.

Regions, networks and client families are pseudo-tuples of the same store (`@region:<name>`,
context.py): first activity of a principal in a region or from a network weighs its alerts,
and never alerts by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..ports import (
    MAX_STAGED_MARKS,
    Baseline,
    Enricher,
    MarkKey,
    NoEnrichment,
    PendingAlert,
    Staged,
)
from .alerts import Alert
from .context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from .extract import PSEUDO, REGION_PREFIX, Extraction, Extractor
from .judge import Judge, Outcome, Prepared
from .lineage import lineage_mark, lineage_subject
from .model import (
    DAY,
    Grant,
    Mark,
    MarkKind,
    Principal,
    PrincipalKey,
    TupleClaim,
    TupleKey,
    TupleObservation,
    TupleState,
    WindowEntry,
)
from .policy import AlertPolicy, PrincipalContext, Screened

ACCOUNT_PRINCIPAL = "*"  # the principals-table row that holds an account's first sighting


@dataclass(frozen=True, slots=True)
class DetectionSettings:
    forget_days: float = 90.0  # a tuple unseen this long (event time) is new again
    # Write a known tuple's last_seen (and push its expiry) at most this often: a tuple is then
    # forgotten between forget_days - refresh_after_days and forget_days after it was last seen.
    # 0: forget_days / 12 (7.5 days of 90), a write a tuple a week instead of one a day.
    refresh_after_days: float = 0.0
    # Roles shared by many people: the baseline key includes the session name (the person), so
    # one admin's habits do not hide another's. Globs over the role name.
    per_session_roles: tuple[str, ...] = ("AWSReservedSSO_*",)

    @property
    def refresh_after(self) -> int:
        """Seconds between two writes of one tuple's last_seen (see refresh_after_days)."""
        return int((self.refresh_after_days or self.forget_days / 12) * DAY)


@dataclass(slots=True)
class ObjectResult:
    """What detection made of one log object."""

    source: str
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    principals: set[PrincipalKey] = field(default_factory=set)
    newest_event_time: int | None = None


class Detector:
    def __init__(
        self,
        baseline: Baseline,
        policy: AlertPolicy,
        settings: DetectionSettings | None = None,
        *,
        enricher: Enricher | None = None,
        alerting: bool = True,
    ) -> None:
        self.baseline = baseline
        self.policy = policy
        self.settings = settings or DetectionSettings()
        self.enricher = enricher or NoEnrichment()
        self.alerting = alerting  # False: learn only (the `baseline` command)
        self.extractor = Extractor(self.settings.per_session_roles)
        self.judge = Judge(policy, self.settings.forget_days)

    def extract(
        self, records: Iterable[Any], fallback_account: str = "", fallback_region: str = ""
    ) -> Extraction:
        """The object's distinct tuples with their time spans (extract.py)."""
        return self.extractor.extract(records, fallback_account, fallback_region)

    def process(
        self,
        records: Iterable[Any],
        source: str,
        fallback_account: str = "",
        fallback_region: str = "",
    ) -> ObjectResult:
        """Detect one object's records against the baseline: claim what is new, judge and
        stage its alerts, refresh what is known (inside a batch, `Baseline.hold_refreshes`, a
        store may write the refreshes when the batch ends)."""
        return self.process_extracted(
            self.extract(records, fallback_account, fallback_region), source
        )

    def process_extracted(self, ex: Extraction, source: str) -> ObjectResult:
        """`process` of an object already extracted (by `extract`, here or in another process:
        usecases/extract_pool.py): the baseline's and the policy's part, in delivery order."""
        result = ObjectResult(source)
        stats, observed, principals = result.stats, ex.observed, ex.principals
        stats.update(ex.stats)
        action_obs = [o for k, o in observed.items() if not k.action.startswith(REGION_PREFIX)]
        stats["events"] += sum(o.count for o in action_obs)
        stats["tuples"] += len(action_obs)
        result.principals = set(principals)
        if not observed:
            return result
        result.newest_event_time = max(o.last_seen for o in action_obs)
        if self.policy.settings.slow_novelty or self.policy.settings.context_novelty:
            observed = _with_context(observed, action_obs)

        sightings = {k: v[1] for k, v in principals.items()}
        for pkey, t in list(sightings.items()):
            akey = PrincipalKey(pkey.account_id, ACCOUNT_PRINCIPAL)
            sightings[akey] = min(t, sightings.get(akey, t))
        first_seen = self.baseline.observe_principals(sightings)
        known = self.baseline.lookup(observed.keys())
        forget = int(self.settings.forget_days * DAY)
        refresh_after = self.settings.refresh_after
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
        if not self.alerting:
            if claims:
                self._count_claims(stats, claims, self.baseline.claim(claims))
            return result
        # Lineage passed by a known grant (a maker that alerted lately) is stored even when
        # nothing in the object is new.
        lineage, made_here = self._lineage(claims, principals, ex.grants)
        if not claims:
            return result
        exercised = self._exercised(claims, known)
        # Each principal is judged inside its claim (`stage`), so that its alerts and burst
        # window are written in the same transaction as its tuples. Judging is pure: what it
        # needs from enrichment is fetched first, since a store may judge more than once.
        # A principal made by another in this very object is claimed after its maker, so that
        # the maker's alert (and the lineage it passes on) is known when it is judged.
        later = [c for c in claims if c.key.principal_key in made_here]
        first = [c for c in claims if c.key.principal_key not in made_here] if later else claims
        outcomes: dict[PrincipalKey, Outcome] = {}
        claimed: set[TupleKey] = set()
        for part in (first, later):
            if not part:
                continue
            if part is later:
                for outcome in outcomes.values():
                    for mark in outcome.marks:
                        if mark.kind is MarkKind.LINEAGE and outcome.won & claimed:
                            lineage.setdefault(mark.subject, mark)
            claimed |= self._claim_judged(
                result,
                part,
                observed,
                principals,
                first_seen,
                lineage,
                ex.grants,
                outcomes,
                exercised,
            )
        self._count_claims(stats, claims, claimed)
        overflow: list[Mark] = []
        for pkey in sorted(outcomes):
            outcome = outcomes[pkey]
            if not outcome.won & claimed:
                continue  # the principal's transaction failed: nothing of it happened
            result.alerts += outcome.alerts
            result.suppressed += outcome.suppressed
            stats.update(outcome.stats)
            overflow += outcome.marks[MAX_STAGED_MARKS:]
        if overflow:  # more principals made at once than one transaction carries marks for
            self.baseline.put_marks(overflow)
        return result

    def _lineage(
        self,
        claims: list[TupleClaim],
        principals: dict[PrincipalKey, tuple[Principal, int]],
        found: list[Grant],
    ) -> tuple[dict[PrincipalKey, Mark], set[PrincipalKey]]:
        """The stored lineage of each claiming principal (by its lineage subject), with the
        lineage that this object's grants pass on from makers with a recent alert (stored
        now: it follows from stored marks, so a retry derives it again); and the claiming
        principals that a claiming principal of this object makes."""
        s = self.policy.settings
        if not s.lineage:
            return {}, set()
        subjects: dict[PrincipalKey, PrincipalKey] = {}
        for pkey in {c.key.principal_key for c in claims}:
            subject = lineage_subject(principals[pkey][0])
            if subject:
                subjects[pkey] = PrincipalKey(pkey.account_id, subject)
        makers = {PrincipalKey(g.account_id, g.creator) for g in found}
        keys: list[MarkKey] = [(v, MarkKind.LINEAGE) for v in subjects.values()]
        keys += [(m, MarkKind.ALERTED) for m in makers]
        stored = self.baseline.marks(keys) if keys else {}
        forget = int(self.settings.forget_days * DAY)
        passed: list[Mark] = []
        for g in found:
            hot = stored.get((PrincipalKey(g.account_id, g.creator), MarkKind.ALERTED))
            if hot is not None and hot.event_time <= g.event_time < hot.expires_at:
                passed.append(lineage_mark(g, hot.alert_id, hot.severity, forget))
        if passed:
            self.baseline.put_marks(passed)
        lineage: dict[PrincipalKey, Mark] = {}
        for mark in passed:
            lineage.setdefault(mark.subject, mark)
        for (marked, kind), mark in stored.items():
            if kind is MarkKind.LINEAGE:
                lineage[marked] = mark
        claiming = {c.key.principal_key for c in claims}
        targets = {
            PrincipalKey(g.account_id, g.target)
            for g in found
            if PrincipalKey(g.account_id, g.creator) in claiming
        }
        made_here = {p for p, subject in subjects.items() if subject in targets}
        return lineage, made_here

    def _exercised(
        self, claims: list[TupleClaim], known: dict[TupleKey, TupleState]
    ) -> dict[PrincipalKey, frozenset[str]]:
        """For each principal claiming a new high sensitive action: the sibling powers (same
        service and tactic) it has exercised for at least a learning period (rule 16). Looked
        up only for such claims, which are rare: no request for an ordinary object."""
        claiming = {c.key for c in claims}
        since: dict[TupleKey, int] = {}  # a sibling's key -> when it must still be known
        for c in claims:
            if c.key.action.startswith(PSEUDO):
                continue
            for sibling in self.policy.sensitive_siblings(c.key.action):
                key = TupleKey(c.key.account_id, c.key.principal, sibling)
                if key not in claiming:
                    since[key] = min(c.first_seen, since.get(key, c.first_seen))
        if not since:
            return {}
        found = {k: known[k] for k in since if k in known}
        missing = [k for k in since if k not in known]
        if missing:
            found |= self.baseline.lookup(missing)
        # A power is a habit once exercised for a learning period: one the principal took up
        # minutes ago (an intruder's previous step) is part of the same novelty.
        habit = int(self.policy.settings.learning_days * DAY)
        out: dict[PrincipalKey, set[str]] = {}
        for key, state in found.items():
            if state.first_seen + habit <= since[key] < state.expires_at:
                out.setdefault(key.principal_key, set()).add(key.action)
        return {p: frozenset(a) for p, a in out.items()}

    def _claim_judged(
        self,
        result: ObjectResult,
        claims: list[TupleClaim],
        observed: dict[TupleKey, TupleObservation],
        principals: dict[PrincipalKey, tuple[Principal, int]],
        first_seen: dict[PrincipalKey, int],
        lineage: dict[PrincipalKey, Mark],
        found: list[Grant],
        outcomes: dict[PrincipalKey, Outcome],
        exercised: dict[PrincipalKey, frozenset[str]],
    ) -> set[TupleKey]:
        prepared = self._prepare(
            claims, observed, principals, first_seen, lineage, found, exercised
        )

        def stage(
            pkey: PrincipalKey, won: frozenset[TupleKey], window: Sequence[WindowEntry]
        ) -> Staged:
            outcome = self.judge.outcome_of(result.source, prepared[pkey], observed, won, window)
            outcomes[pkey] = outcome  # a retry with fewer keys replaces the earlier judgement
            return Staged(
                [PendingAlert.of(a) for a in outcome.alerts],
                outcome.window,
                outcome.window_expires_at,
                outcome.marks[:MAX_STAGED_MARKS],
            )

        return self.baseline.claim(claims, stage)

    @staticmethod
    def _count_claims(
        stats: Counter[str], claims: list[TupleClaim], claimed: set[TupleKey]
    ) -> None:
        new_actions = [k for k in claimed if not k.action.startswith(PSEUDO)]
        stats["new_tuples"] += len(new_actions)
        stats["new_regions"] += sum(1 for k in claimed if k.action.startswith(REGION_PREFIX))
        stats["claims_lost"] += len(claims) - len(claimed)

    def _prepare(
        self,
        claims: list[TupleClaim],
        observed: dict[TupleKey, TupleObservation],
        principals: dict[PrincipalKey, tuple[Principal, int]],
        first_seen_of: dict[PrincipalKey, int],
        lineage: dict[PrincipalKey, Mark],
        found: list[Grant],
        exercised: dict[PrincipalKey, frozenset[str]],
    ) -> dict[PrincipalKey, Prepared]:
        """Each claiming principal's context, with what enrichment says, asked only about
        principals that may alert or are still learning (screened over all the tuples they
        claim: they cannot win more)."""
        new: dict[PrincipalKey, list[TupleObservation]] = {}
        for c in claims:
            obs = new.setdefault(c.key.principal_key, [])
            if not c.key.action.startswith(PSEUDO):
                obs.append(observed[c.key])
        accounts: dict[str, tuple[str, str]] = {}
        prepared: dict[PrincipalKey, Prepared] = {}
        made: dict[PrincipalKey, list[Grant]] = {}
        for g in found:
            made.setdefault(PrincipalKey(g.account_id, g.creator), []).append(g)
        for pkey, obs in new.items():
            principal = principals[pkey][0]
            subject = lineage_subject(principal)
            mark = lineage.get(PrincipalKey(pkey.account_id, subject)) if subject else None
            if mark is not None and obs and mark.expires_at <= min(o.first_seen for o in obs):
                mark = None  # forgotten, as a tuple is
            ctx = PrincipalContext(
                principal,
                pkey.account_id,
                first_seen_of[pkey],
                first_seen_of.get(PrincipalKey(pkey.account_id, ACCOUNT_PRINCIPAL)),
                lineage=mark,
                exercised=exercised.get(pkey, frozenset()),
            )
            screened = self.policy.screen(ctx, obs) if obs else Screened()
            may_learn = screened.alerted or "learning" in screened.suppressed
            if may_learn and principal.key.startswith("arn:") and ":role/" in principal.key:
                # Enrichment moves the learning start to the role's CreateDate: a re-created
                # role is young again, and an old role first sighted now is not.
                role = self.enricher.role_info(principal.key.partition("#")[0])
                if role is not None:
                    ctx = replace(ctx, role=role)
                    screened = self.policy.screen(ctx, obs)
            grants_made = tuple(made.get(pkey, ()))
            if not screened.alerted:  # a suppressed alert is for tuning: it costs no lookup
                prepared[pkey] = Prepared(ctx, grants=grants_made)
                continue
            names = accounts.get(pkey.account_id)
            if names is None:
                names = accounts[pkey.account_id] = (
                    self.enricher.account_name(pkey.account_id) or "",
                    self.enricher.account_owner(pkey.account_id) or "",
                )
            prepared[pkey] = Prepared(ctx, *names, grants=grants_made)
        return prepared


def _with_context(
    observed: dict[TupleKey, TupleObservation], action_obs: list[TupleObservation]
) -> dict[TupleKey, TupleObservation]:
    """`observed` with each principal's networks and client families as pseudo-tuples, from
    the first event of each of its actions in the object (context.py)."""
    out = dict(observed)
    for obs in action_obs:
        e = obs.first_event
        if e.principal.is_service:
            continue  # AWS services call from AWS: no place to learn
        for pseudo in (
            NET_PREFIX + network_of(e.source_ip),
            AGENT_PREFIX + agent_family(e.user_agent),
        ):
            if pseudo.endswith(":"):
                continue
            key = TupleKey(e.account_id, e.principal.key, pseudo)
            known = out.get(key)
            if known is None:
                out[key] = TupleObservation(e, obs.first_seen, obs.last_seen)
            else:
                if obs.first_seen < known.first_seen:
                    known.first_seen, known.first_event = obs.first_seen, e
                known.last_seen = max(known.last_seen, obs.last_seen)
    return out
