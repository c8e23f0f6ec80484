"""Detection over one log object: records → distinct tuples → baseline → judged alerts.

Per object, the detector takes the distinct (account, principal, action) tuples with their
first and last eventTime (extract.py), looks them up in one batch, claims the new ones
atomically, refreshes `last_seen` of known ones only when it moved by more than
`refresh_after_days`, and asks the policy about each principal's claimed tuples: at most one
alert per principal per object, plus a follow-up when the principal's new actions across
objects reach the burst threshold.

Regions, networks and client families are pseudo-tuples of the same store (`@region:<name>`,
context.py): first activity of a principal in a region or from a network weighs its alerts,
and never alerts by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..ports import MAX_STAGED_MARKS, Baseline, Enricher, MarkKey, PendingAlert, Staged
from ..stores.memory import NoEnrichment
from .alerts import FIELD_LIMITS, Alert, clip
from .context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from .extract import PSEUDO, REGION_PREFIX, Extraction, Extractor
from .lineage import lineage_subject
from .model import (
    DAY,
    Event,
    Grant,
    Mark,
    MarkKind,
    Principal,
    PrincipalKey,
    Severity,
    TupleClaim,
    TupleKey,
    TupleObservation,
    WindowEntry,
)
from .policy import AlertPolicy, PrincipalContext, Screened
from .window import merge_window

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
class _Outcome:
    """One principal's judgement inside its claim; merged into the result once committed."""

    won: frozenset[TupleKey]
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    window: list[WindowEntry] | None = None  # the burst window to store; None: unchanged
    window_expires_at: int = 0
    marks: list[Mark] = field(default_factory=list)  # lineage marks to store with the claim


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What judging a principal needs from outside the store, fetched before its claim (the
    claim may judge more than once: judging itself makes no call)."""

    ctx: PrincipalContext  # with the role's IAM answer when enrichment is on
    account_name: str = ""
    account_owner: str = ""
    grants: tuple[Grant, ...] = ()  # the lineage-granting calls it made in this object


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
        # Each principal is judged inside its claim (`stage`), so that its alerts and burst
        # window are written in the same transaction as its tuples. Judging is pure: what it
        # needs from enrichment is fetched first, since a store may judge more than once.
        # A principal made by another in this very object is claimed after its maker, so that
        # the maker's alert (and the lineage it passes on) is known when it is judged.
        later = [c for c in claims if c.key.principal_key in made_here]
        first = [c for c in claims if c.key.principal_key not in made_here] if later else claims
        outcomes: dict[PrincipalKey, _Outcome] = {}
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
                result, part, observed, principals, first_seen, lineage, ex.grants, outcomes
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
                passed.append(_lineage_mark(g, hot.alert_id, hot.severity, forget))
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

    def _claim_judged(
        self,
        result: ObjectResult,
        claims: list[TupleClaim],
        observed: dict[TupleKey, TupleObservation],
        principals: dict[PrincipalKey, tuple[Principal, int]],
        first_seen: dict[PrincipalKey, int],
        lineage: dict[PrincipalKey, Mark],
        found: list[Grant],
        outcomes: dict[PrincipalKey, _Outcome],
    ) -> set[TupleKey]:
        prepared = self._prepare(claims, observed, principals, first_seen, lineage, found)

        def stage(
            pkey: PrincipalKey, won: frozenset[TupleKey], window: Sequence[WindowEntry]
        ) -> Staged:
            outcome = self._judge(result.source, prepared[pkey], observed, won, window)
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
    ) -> dict[PrincipalKey, _Prepared]:
        """Each claiming principal's context, with what enrichment says, asked only about
        principals that may alert or are still learning (screened over all the tuples they
        claim: they cannot win more)."""
        new: dict[PrincipalKey, list[TupleObservation]] = {}
        for c in claims:
            obs = new.setdefault(c.key.principal_key, [])
            if not c.key.action.startswith(PSEUDO):
                obs.append(observed[c.key])
        accounts: dict[str, tuple[str, str]] = {}
        prepared: dict[PrincipalKey, _Prepared] = {}
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
                prepared[pkey] = _Prepared(ctx, grants=grants_made)
                continue
            names = accounts.get(pkey.account_id)
            if names is None:
                names = accounts[pkey.account_id] = (
                    self.enricher.account_name(pkey.account_id) or "",
                    self.enricher.account_owner(pkey.account_id) or "",
                )
            prepared[pkey] = _Prepared(ctx, *names, grants=grants_made)
        return prepared

    def _judge(
        self,
        source: str,
        prep: _Prepared,
        observed: dict[TupleKey, TupleObservation],
        won: frozenset[TupleKey],
        window: Sequence[WindowEntry],
    ) -> _Outcome:
        """A principal's alerts and new burst window, from the keys it is about to win and its
        window as stored. Pure: the claim may call it again."""
        out = _Outcome(won)
        ctx = prep.ctx
        new: list[TupleObservation] = []
        regions: set[str] = set()
        contexts: set[str] = set()  # "@net:..." / "@agent:..." new to a principal with history
        for key in sorted(won):
            if not key.action.startswith(PSEUDO):
                new.append(observed[key])
            elif observed[key].first_seen <= ctx.first_seen:
                continue  # only a principal with history can be somewhere new
            elif key.action.startswith(REGION_PREFIX):
                regions.add(key.action[len(REGION_PREFIX) :])
            else:
                contexts.add(key.action)
        s = self.policy.settings
        window_s = s.burst_window_minutes * 60
        # The window keeps the slow rule's history and the contexts met; the burst rule reads
        # its last hour of actions.
        keep_s = window_s
        if s.slow_novelty or s.context_novelty:
            keep_s = max(keep_s, int((s.slow_novelty_days + s.slow_novelty_history_days) * DAY))
        before = list(window)
        # Each new network or client family is remembered in the window, so that rule 15 knows
        # how often the principal meets new ones (learning included: that is how CI runners
        # teach it that a new network is ordinary).
        met = (
            [
                WindowEntry(
                    observed[TupleKey(ctx.account_id, ctx.principal.key, c)].first_seen,
                    c,
                    "",
                    "",
                    "",
                )
                for c in sorted(contexts)
            ]
            if s.context_novelty
            else []
        )
        ctx = replace(
            ctx,
            new_regions=frozenset(regions),
            new_contexts=frozenset(contexts),
            networks_met=sum(1 for e in before if e.action.startswith(NET_PREFIX)),
            clients_met=sum(1 for e in before if e.action.startswith(AGENT_PREFIX)),
        )
        screened = self.policy.screen(ctx, new) if new else Screened()
        for reason, tuples in screened.suppressed.items():
            out.stats[f"suppressed_tuples.{reason}"] += len(tuples)
            # With the severity and reasons it would have had: tuning sees what it hides.
            would = self.policy.grade(ctx, tuples)
            out.suppressed.append(
                self._alert(source, ctx, tuples, would.severity, would.reasons, reason)
            )
        if not screened.alerted:
            if met:
                out.window = merge_window(before, met, keep_s)
                out.window_expires_at = out.window[-1].event_time + keep_s
            return out

        def burst_part(entries: list[WindowEntry]) -> list[WindowEntry]:
            acts = [e for e in entries if not e.action.startswith(PSEUDO)]
            if not acts:
                return acts
            return [e for e in acts if e.event_time >= acts[-1].event_time - window_s]

        draft = merge_window(
            before, [_window_entry(o.first_event) for o in screened.alerted], keep_s
        )
        ctx = replace(ctx, window=tuple(burst_part(draft)))
        grade = self.policy.grade(ctx, screened.alerted)
        grade.reasons += self.policy.learning_note(ctx, screened)
        alert = self._alert(source, ctx, screened.alerted, grade.severity, grade.reasons, prep=prep)
        self._emit(out, alert)
        self._mark(out, prep, alert)
        # Each entry remembers how loud its alert was, and a new network or client it came with.
        entries = [
            _window_entry(o.first_event, grade.severity, _context_of(o.first_event, contexts))
            for o in screened.alerted
        ]
        after = merge_window(before, [*entries, *met], keep_s)
        out.window, out.window_expires_at = after, after[-1].event_time + keep_s
        recent = burst_part(after)
        ctx = replace(ctx, window=tuple(recent))

        threshold = s.escalate_at
        recent_set = set(recent)
        still_in = [e for e in before if e in recent_set]
        if len(still_in) < threshold <= len(recent) and len(screened.alerted) < threshold:
            burst = self.policy.grade_burst(ctx, recent)
            events = [_window_event(e, ctx.principal, ctx.account_id) for e in recent]
            alert = Alert(
                account_id=ctx.account_id,
                principal=ctx.principal,
                new_actions=events,
                severity=burst.severity,
                reasons=burst.reasons,
                source_objects=[source],
                detector="new_action_burst",
                account_name=prep.account_name,
                account_owner=prep.account_owner,
                listed_first=self._sensitive(e.action for e in recent),
            )
            self._emit(out, alert)
        slow = self.policy.grade_slow(ctx, before, after) if s.slow_novelty else None
        if slow is not None:
            grade, span = slow
            alert = Alert(
                account_id=ctx.account_id,
                principal=ctx.principal,
                new_actions=[_window_event(e, ctx.principal, ctx.account_id) for e in span],
                severity=grade.severity,
                reasons=grade.reasons,
                source_objects=[source],
                detector="new_action_slow",
                account_name=prep.account_name,
                account_owner=prep.account_owner,
            )
            self._emit(out, alert)
        return out

    def _mark(self, out: _Outcome, prep: _Prepared, alert: Alert) -> None:
        """Lineage marks of an alert at or above the lineage threshold: the principal's own
        (what it grants in the next hours inherits it) and one per principal it made or
        empowered in this object."""
        s = self.policy.settings
        if not s.lineage or alert.severity.rank < Severity(s.lineage_min_severity).rank:
            return
        ctx = prep.ctx
        pkey = PrincipalKey(ctx.account_id, ctx.principal.key)
        t = alert.first_event_time
        out.marks.append(
            Mark(
                pkey,
                MarkKind.ALERTED,
                ctx.principal.key,
                "",
                alert.alert_id,
                alert.severity,
                t,
                t + int(s.lineage_hours * 3600),
            )
        )
        forget = int(self.settings.forget_days * DAY)
        seen: set[PrincipalKey] = set()
        for g in prep.grants:
            mark = _lineage_mark(g, alert.alert_id, alert.severity, forget)
            if mark.subject not in seen:
                seen.add(mark.subject)
                out.marks.append(mark)

    def _sensitive(self, actions: Iterable[str]) -> frozenset[str]:
        return frozenset(a for a in actions if self.policy.sensitive(a) is not None)

    def _emit(self, out: _Outcome, alert: Alert) -> None:
        if alert.severity.rank < self.policy.min_severity.rank:
            alert.suppressed_reason = "below_min_severity"
            out.suppressed.append(alert)
            out.stats["suppressed_alerts.below_min_severity"] += 1
            return
        out.alerts.append(alert)
        out.stats[f"alerts.{alert.severity}"] += 1

    def _alert(
        self,
        source: str,
        ctx: PrincipalContext,
        tuples: list[TupleObservation],
        severity: Severity,
        reasons: list[str],
        suppressed_reason: str = "",
        prep: _Prepared | None = None,
    ) -> Alert:
        actions = [o.first_event for o in tuples]
        return Alert(
            account_id=ctx.account_id,
            principal=ctx.principal,
            new_actions=actions,
            severity=severity,
            reasons=reasons,
            source_objects=[source],
            suppressed_reason=suppressed_reason,
            account_name=prep.account_name if prep else "",
            account_owner=prep.account_owner if prep else "",
            role_created=ctx.role.created if ctx.role else None,
            listed_first=self._sensitive(e.action for e in actions),
        )


def _lineage_mark(g: Grant, alert_id: str, severity: Severity, forget: int) -> Mark:
    return Mark(
        PrincipalKey(g.account_id, g.target),
        MarkKind.LINEAGE,
        g.creator,
        g.action,
        alert_id,
        severity,
        g.event_time,
        g.event_time + forget,
    )


def _window_entry(event: Event, severity: Severity | None = None, context: str = "") -> WindowEntry:
    """A new action in the burst window, its strings cut as the alert cuts them (the window is
    stored as one item)."""
    return WindowEntry(
        event.event_time,
        clip(event.action, FIELD_LIMITS["action"]),
        clip(event.region, FIELD_LIMITS["region"]),
        clip(event.event_id, FIELD_LIMITS["event_id"]),
        clip(event.error_code, FIELD_LIMITS["error_code"]),
        str(severity) if severity is not None else "",
        context,
    )


def _context_of(event: Event, new_contexts: set[str]) -> str:
    """The network and client family of `event` that are new to its principal, as a phrase."""
    found = []
    net = network_of(event.source_ip)
    if net and NET_PREFIX + net in new_contexts:
        found.append(f"network {net}")
    family = agent_family(event.user_agent)
    if family and AGENT_PREFIX + family in new_contexts:
        found.append(f"client {family}")
    return clip(", ".join(found), FIELD_LIMITS["source_ip"])


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


def _window_event(entry: WindowEntry, principal: Principal, account_id: str) -> Event:
    event_source, _, event_name = entry.action.rpartition(":")
    return Event(
        principal=principal,
        account_id=account_id,
        action=entry.action,
        event_source=event_source,
        event_name=event_name,
        region=entry.region,
        event_time=entry.event_time,
        event_id=entry.event_id,
        error_code=entry.error_code,
    )
