"""Judging one principal inside its claim: its new tuples → its alerts, burst window and marks.

The detector claims a principal's new tuples in one transaction and asks `Judge.outcome_of`
what to store with them: the per-object alert (or the suppressed ones, kept for tuning), the
burst and slow-novelty follow-ups, the principal's burst window as it becomes, and the lineage
marks an alert passes on. Pure: it makes no call (what enrichment says is fetched before the
claim, `Prepared`), so a store may judge again when it retries the claim with fewer keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from .alerts import FIELD_LIMITS, Alert, clip
from .context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from .extract import PSEUDO, REGION_PREFIX
from .lineage import lineage_mark
from .model import (
    DAY,
    Event,
    Grant,
    Mark,
    MarkKind,
    Principal,
    PrincipalKey,
    Severity,
    TupleKey,
    TupleObservation,
    WindowEntry,
)
from .policy import AlertPolicy, Grade, PrincipalContext, Screened
from .window import merge_window


@dataclass(frozen=True, slots=True)
class Prepared:
    """What judging a principal needs from outside the store, fetched before its claim (the
    claim may judge more than once: judging itself makes no call)."""

    ctx: PrincipalContext  # with the role's IAM answer when enrichment is on
    account_name: str = ""
    account_owner: str = ""
    grants: tuple[Grant, ...] = ()  # the lineage-granting calls it made in this object


@dataclass(slots=True)
class Outcome:
    """One principal's judgement inside its claim; merged into the result once committed."""

    won: frozenset[TupleKey]
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    window: list[WindowEntry] | None = None  # the burst window to store; None: unchanged
    window_expires_at: int = 0
    marks: list[Mark] = field(default_factory=list)  # lineage marks to store with the claim


class Judge:
    """The policy's judgement of principals, with what detection needs to store it."""

    def __init__(self, policy: AlertPolicy, forget_days: float) -> None:
        self.policy = policy
        self.forget_days = forget_days  # how long a lineage mark of a grant lasts

    def outcome_of(
        self,
        source: str,
        prep: Prepared,
        observed: dict[TupleKey, TupleObservation],
        won: frozenset[TupleKey],
        window: Sequence[WindowEntry],
    ) -> Outcome:
        """A principal's alerts and new burst window, from the keys it is about to win and its
        window as stored. Pure: the claim may call it again."""
        out = Outcome(won)
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
        # A network or client first met within the burst window is as new to this object's
        # actions as to those of the object that met it first: CloudTrail delivers the objects of
        # one intrusion's regions in any order, and which was first must not change the alerts.
        # Only this object's own networks and clients: the others met lately still count as
        # "met" for the routine (a CI runner meeting three NAT pools within the hour).
        if new and s.context_novelty:
            since = min(o.first_seen for o in new) - window_s
            ours = {NET_PREFIX + network_of(o.first_event.source_ip) for o in new} | {
                AGENT_PREFIX + agent_family(o.first_event.user_agent) for o in new
            }
            met_lately = {e.action for e in before if e.action in ours and e.event_time >= since}
        else:
            met_lately = set()
        ctx = replace(
            ctx,
            new_regions=frozenset(regions),
            new_contexts=frozenset(contexts | met_lately),
            networks_met=sum(
                1 for e in before if e.action.startswith(NET_PREFIX) and e.action not in met_lately
            ),
            clients_met=sum(
                1
                for e in before
                if e.action.startswith(AGENT_PREFIX) and e.action not in met_lately
            ),
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
        grade.reasons += self.policy.learning_note(screened)
        alert = self._alert(source, ctx, screened.alerted, grade.severity, grade.reasons, prep=prep)
        self._emit(out, alert)
        self._mark(out, prep, alert)
        # Each entry remembers how loud its alert was, and a new network or client it came with.
        entries = [
            _window_entry(
                o.first_event, grade.severity, _context_of(o.first_event, ctx.new_contexts)
            )
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
            self._emit(
                out, self._window_alert(source, ctx, prep, recent, burst, "new_action_burst")
            )
        slow = self.policy.grade_slow(before, after) if s.slow_novelty else None
        if slow is not None:
            grade, span = slow
            self._emit(out, self._window_alert(source, ctx, prep, span, grade, "new_action_slow"))
        return out

    def _window_alert(
        self,
        source: str,
        ctx: PrincipalContext,
        prep: Prepared,
        entries: Sequence[WindowEntry],
        grade: Grade,
        detector: str,
    ) -> Alert:
        """An alert over burst-window entries (a burst, a slow spread): its sensitive actions
        listed first and mapped to ATT&CK, as in a new-action alert."""
        return Alert(
            account_id=ctx.account_id,
            principal=ctx.principal,
            new_actions=[_window_event(e, ctx.principal, ctx.account_id) for e in entries],
            severity=grade.severity,
            reasons=grade.reasons,
            source_objects=[source],
            detector=detector,
            account_name=prep.account_name,
            account_owner=prep.account_owner,
            listed_first=self._sensitive(e.action for e in entries),
        )

    def _mark(self, out: Outcome, prep: Prepared, alert: Alert) -> None:
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
        forget = int(self.forget_days * DAY)
        seen: set[PrincipalKey] = set()
        for g in prep.grants:
            mark = lineage_mark(g, alert.alert_id, alert.severity, forget)
            if mark.subject not in seen:
                seen.add(mark.subject)
                out.marks.append(mark)

    def _sensitive(self, actions: Iterable[str]) -> frozenset[str]:
        return frozenset(a for a in actions if self.policy.sensitive(a) is not None)

    def _emit(self, out: Outcome, alert: Alert) -> None:
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
        prep: Prepared | None = None,
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


def _context_of(event: Event, new_contexts: AbstractSet[str]) -> str:
    """The network and client family of `event` that are new to its principal, as a phrase."""
    found = []
    net = network_of(event.source_ip)
    if net and NET_PREFIX + net in new_contexts:
        found.append(f"network {net}")
    family = agent_family(event.user_agent)
    if family and AGENT_PREFIX + family in new_contexts:
        found.append(f"client {family}")
    return clip(", ".join(found), FIELD_LIMITS["source_ip"])


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
