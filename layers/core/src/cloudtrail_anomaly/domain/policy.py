"""The alert policy: whether a principal's new actions become an alert, and how loud.

Pure and separate from detection: the detector finds and claims new tuples, the policy judges
them. Judging has two steps. `screen` decides per tuple whether it may alert at all (AWS
services, ignore lists, learning periods): a screened-out tuple is still recorded in the
baseline, so un-ignoring or the end of learning never floods. `grade` gives the alert its
severity from independent rules, each of which writes its reason, so the alert says why it is
as loud as it is. docs/alert-policy.md describes every rule and its settings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from .context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from .lineage import GRANTING_ACTIONS
from .model import (
    DAY,
    Event,
    Mark,
    Principal,
    RoleInfo,
    Severity,
    TupleObservation,
    WindowEntry,
    iso,
    max_severity,
)
from .sensitive import SensitiveAction, default_sensitive_actions, expand_action


@dataclass(frozen=True, slots=True)
class IgnoreSettings:
    """Tuples that are recorded but never alerted (so un-ignoring never floods)."""

    principals: tuple[str, ...] = ()  # globs over the baseline key (ARN)
    actions: tuple[
        str, ...
    ] = ()  # globs over eventSource:eventName ("iam:*" = iam.amazonaws.com:*)
    event_sources: tuple[str, ...] = ()  # globs over eventSource
    accounts: tuple[str, ...] = ()  # 12-digit account ids


@dataclass(frozen=True, slots=True)
class PolicySettings:
    learning_days: float = 15.0  # a new principal's tuples are recorded, not alerted
    account_learning: bool = True  # a newly seen account learns as a whole, for learning_days
    escalate_at: int = 5  # the seeds: fewer new actions than this → informational, else medium
    burst_window_minutes: int = 60  # new actions accumulate across objects in this window
    denied_escalate_at: int = 3  # this many new denied actions in the window → at least medium
    new_region_bump: bool = True  # a new action in a region new for the principal: one step up
    # Learning holds back ordinary novelty only: a sensitive action alerts at its severity.
    sensitive_during_learning: bool = True
    # Root in tiers (rule 7): what root does, not that it is root, sets the level.
    root_read_severity: str = "low"  # a read-only/list action
    root_signin_severity: str = "medium"  # a console sign-in with MFA, first try
    root_risky_signin_severity: str = "high"  # ... without MFA, or after a failed attempt
    root_severity: str = "high"  # a mutating action
    root_sensitive_severity: str = "critical"  # a sensitive one on logs, detection, org, creds
    # Lineage (rule 13): what an alerting principal creates or empowers inherits its alert.
    lineage: bool = True
    lineage_hours: float = 24.0  # a principal's alert taints what it grants for this long
    lineage_min_severity: str = "medium"  # alerts at or above this pass lineage on
    # Slow novelty (rule 14): quiet new actions that add up over days give one follow-up.
    slow_novelty: bool = True
    slow_novelty_actions: int = 4  # this many new actions, none alerted at medium or above,
    slow_novelty_days: float = 7.0  # within this many days (event time),
    slow_novelty_min_days: int = 2  # on at least this many distinct (UTC) days
    # A principal with that many new actions in these days before the span gains them by
    # routine (a deploy role with every release): no slow alert.
    slow_novelty_history_days: float = 21.0
    slow_novelty_severity: str = "low"  # the follow-up's severity
    slow_novelty_context_severity: str = "medium"  # ... from a network or client new to it
    # Context novelty (rule 15): a new action from a network or client family new to the
    # principal is one step louder, unless the principal met this many new ones of that kind
    # within the slow-novelty window's days (CI runners, NAT pools: new is ordinary for them).
    context_novelty: bool = True
    context_routine_at: int = 3
    sensitive_actions_add: tuple[str, ...] = ()  # extra sensitive actions (at least high)
    sensitive_actions_remove: tuple[str, ...] = ()  # curated ones to drop
    service_trusted_role_severity: str = "high"  # role assumable by an AWS service (yogisec)
    federated_role_severity: str = "high"  # assumable by an IdP not in the allow-list
    cross_account_role_severity: str = "medium"  # assumable by another AWS account
    # Globs over IdP ARNs / OIDC hosts. IAM Identity Center's own SAML provider is trusted by
    # every AWSReservedSSO_* role: without it, every SSO user's new action would be high.
    allowed_identity_providers: tuple[str, ...] = (
        "arn:aws:iam::*:saml-provider/AWSSSO_*_DO_NOT_DELETE",
    )
    min_severity: str = "informational"  # alerts below it are kept as suppressed, not delivered


@dataclass(frozen=True, slots=True)
class PrincipalContext:
    principal: Principal
    account_id: str
    first_seen: int  # the principal's earliest sighting (event time) in the baseline
    account_first_seen: int | None = None
    role: RoleInfo | None = None
    new_regions: frozenset[str] = frozenset()
    window: tuple[WindowEntry, ...] = ()  # the burst window, this object's entries included
    lineage: Mark | None = None  # made or empowered by an alerting principal (rule 13)
    # "@net:..." / "@agent:..." pseudo-tuples new to the principal (with history) in this object,
    # and how many new networks / client families it met before, within the kept window.
    new_contexts: frozenset[str] = frozenset()
    networks_met: int = 0
    clients_met: int = 0


@dataclass(slots=True)
class Screened:
    alerted: list[TupleObservation] = field(default_factory=list)
    suppressed: dict[str, list[TupleObservation]] = field(default_factory=dict)  # reason → tuples
    # Sensitive tuples alerted although their principal or account is learning, and why
    # learning would have held them ("learning" or "account_learning").
    unlearned: dict[str, list[TupleObservation]] = field(default_factory=dict)


@dataclass(slots=True)
class Grade:
    severity: Severity
    reasons: list[str]

    def at_least(self, level_name: str, why: str) -> None:
        """Raise the severity to `level_name` if it is lower, and say so either way."""
        level = Severity(level_name)
        if level.rank > self.severity.rank:
            self.reasons.append(f"{why}: raised to {level}")
            self.severity = level
        else:
            self.reasons.append(f"{why} (already {self.severity})")


_DENIED_MARKERS = ("accessdenied", "unauthorized", "forbidden", "notauthorized")
SIGNIN = "signin.amazonaws.com:ConsoleLogin"
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Query")
# Root's sensitive actions that are critical (rule 7): logging and detection (defense-evasion),
# secrets and credentials, the organization.
_ROOT_CRITICAL_TACTICS = frozenset({"defense-evasion", "credential-access"})
_CREDENTIAL_GRANTS = frozenset(
    f"iam.amazonaws.com:{name}" for name, what in GRANTING_ACTIONS.items() if "given" in what
)


def is_read_only(event_name: str, read_only: bool | None) -> bool:
    """CloudTrail's readOnly when the record says, else what the name says."""
    if read_only is not None:
        return read_only
    return event_name.startswith(_READ_PREFIXES)


def is_denied(error_code: str) -> bool:
    code = error_code.lower()
    return any(m in code for m in _DENIED_MARKERS)


def _short(action: str) -> str:
    return action.replace(".amazonaws.com:", ":", 1)


MAX_NAMED = 10  # names a reason lists before "and N more": reasons stay a line each
MAX_SENSITIVE_LINES = 20  # sensitive actions with a reason each; the rest share one


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    if len(listed) <= MAX_NAMED:
        return ", ".join(listed)
    return ", ".join(listed[:MAX_NAMED]) + f" and {len(listed) - MAX_NAMED} more"


class AlertPolicy:
    def __init__(
        self, settings: PolicySettings | None = None, ignore: IgnoreSettings | None = None
    ) -> None:
        self.settings = s = settings or PolicySettings()
        self.ignore = ignore or IgnoreSettings()
        table = default_sensitive_actions()
        for name in s.sensitive_actions_remove:
            full = expand_action(name)
            for key in [k for k in table if fnmatchcase(k, full)]:
                del table[key]
        for name in s.sensitive_actions_add:
            table[expand_action(name)] = SensitiveAction("user-defined", "high")
        self._sensitive_exact = {k: v for k, v in table.items() if not _is_glob(k)}
        self._sensitive_globs = [(k, v) for k, v in table.items() if _is_glob(k)]
        self._ignore_actions = [expand_action(a) for a in self.ignore.actions]
        self.min_severity = Severity(s.min_severity)

    # -- screening ---------------------------------------------------------------------------

    def learning_until(self, first_seen: int) -> int:
        return first_seen + int(self.settings.learning_days * DAY)

    def learning_start(self, ctx: PrincipalContext) -> int:
        """When the principal's learning began: its role's CreateDate when IAM told us, else
        its first sighting (after a backfill, the history's first sighting)."""
        if ctx.role is None or ctx.role.created is None:
            return ctx.first_seen
        p = ctx.principal
        if p.session and p.key.endswith("#" + p.session):
            # A person behind a shared (per-session) role is new when the person is, however
            # old the role: CreateDate can only make them younger.
            return max(ctx.role.created, ctx.first_seen)
        return ctx.role.created

    def screen(self, ctx: PrincipalContext, new: Sequence[TupleObservation]) -> Screened:
        out = Screened()
        principal = ctx.principal
        whole_reason = ""
        if principal.is_service:
            whole_reason = "aws_service"
        elif ctx.account_id in self.ignore.accounts:
            whole_reason = "ignored_account"
        elif any(
            fnmatchcase(key, g)
            # A per-session key (role#person) also matches an entry naming the role itself.
            for key in {principal.key, principal.key.partition("#")[0]}
            for g in self.ignore.principals
        ):
            whole_reason = "ignored_principal"
        if whole_reason:
            out.suppressed[whole_reason] = list(new)
            return out
        learn = int(self.settings.learning_days * DAY)
        # The root user has no habits to learn: its first sighting is news (rule 7), so only
        # account learning (a newly seen account) can hold its actions back. A principal an
        # alerting one made (rule 13) has no habits either: it is part of that alert's story.
        made = ctx.lineage is not None
        principal_until = (
            0 if principal.type == "Root" or made else self.learning_start(ctx) + learn
        )
        account_until = (
            ctx.account_first_seen + learn
            if self.settings.account_learning and ctx.account_first_seen is not None and not made
            else None
        )
        for obs in new:
            reason = self._tuple_reason(obs, principal_until, account_until)
            if (
                reason in ("learning", "account_learning")
                and self.settings.sensitive_during_learning
                and self.sensitive(obs.first_event.action) is not None
            ):
                out.unlearned.setdefault(reason, []).append(obs)
                reason = ""
            if reason:
                out.suppressed.setdefault(reason, []).append(obs)
            else:
                out.alerted.append(obs)
        return out

    def _tuple_reason(
        self, obs: TupleObservation, principal_until: int, account_until: int | None
    ) -> str:
        event = obs.first_event
        if any(fnmatchcase(event.event_source, g) for g in self.ignore.event_sources):
            return "ignored_event_source"
        if any(fnmatchcase(event.action, g) for g in self._ignore_actions):
            return "ignored_action"
        if account_until is not None and obs.first_seen < account_until:
            return "account_learning"
        if obs.first_seen < principal_until:
            return "learning"
        return ""

    # -- grading -----------------------------------------------------------------------------

    def sensitive(self, action: str) -> SensitiveAction | None:
        found = self._sensitive_exact.get(action)
        if found is None:
            for pattern, value in self._sensitive_globs:
                if fnmatchcase(action, pattern):
                    return value
        return found

    def grade(self, ctx: PrincipalContext, alerted: Sequence[TupleObservation]) -> Grade:
        s = self.settings
        n = len(alerted)
        if n < s.escalate_at:
            g = Grade(
                Severity.INFORMATIONAL,
                [f"{n} new action(s), fewer than {s.escalate_at}: informational"],
            )
        else:
            g = Grade(
                Severity.MEDIUM, [f"{n} new actions at once (threshold {s.escalate_at}): medium"]
            )
        actions = [o.first_event.action for o in alerted]
        self._weigh(g, ctx, actions, [o.first_event for o in alerted])
        denied_now = [o for o in alerted if is_denied(o.first_event.error_code)]
        if denied_now:
            names = _names(_short(o.first_event.action) for o in denied_now)
            g.reasons.append(f"{len(denied_now)} new action(s) were denied: {names}")
        self._weigh_denied_window(g, {e.action for e in ctx.window if is_denied(e.error_code)})
        if s.new_region_bump and ctx.new_regions:
            in_new = sorted({o.first_event.region for o in alerted} & ctx.new_regions)
            if in_new:
                why = f"first activity of this principal in region(s) {_names(in_new)}"
                bumped = g.severity.bumped(cap=Severity.HIGH)
                if bumped is not g.severity:
                    g.reasons.append(f"{why}: raised from {g.severity} to {bumped}")
                    g.severity = bumped
                else:
                    g.reasons.append(why)
        self._grade_context(g, ctx, alerted)
        return g

    def _grade_context(
        self, g: Grade, ctx: PrincipalContext, alerted: Sequence[TupleObservation]
    ) -> None:
        """Rule 15: new actions from a network or client family new to the principal raise the
        alert one step (at most to high), weighed by how rarely the principal meets new ones."""
        s = self.settings
        if not s.context_novelty or not ctx.new_contexts:
            return
        events = [o.first_event for o in alerted]
        nets = sorted(
            {
                n
                for e in events
                if (n := network_of(e.source_ip)) and NET_PREFIX + n in ctx.new_contexts
            }
        )
        clients = sorted(
            {
                c
                for e in events
                if (c := agent_family(e.user_agent)) and AGENT_PREFIX + c in ctx.new_contexts
            }
        )
        rare: list[str] = []
        for kind, found, met in (
            ("network", nets, ctx.networks_met),
            ("client", clients, ctx.clients_met),
        ):
            if not found:
                continue
            what = f"new action(s) from {kind}(s) {_names(found)} new to the principal"
            if met >= s.context_routine_at:
                g.reasons.append(
                    f"{what}, ordinary for it ({met} new {kind}s lately, threshold "
                    f"{s.context_routine_at}): not raised"
                )
            else:
                rare.append(f"{what} ({met} new {kind}s lately)")
        if rare:
            why = "; ".join(rare)
            bumped = g.severity.bumped(cap=Severity.HIGH)
            if bumped is not g.severity:
                g.reasons.append(f"{why}: raised from {g.severity} to {bumped}")
                g.severity = bumped
            else:
                g.reasons.append(why)

    def _weigh(
        self,
        g: Grade,
        ctx: PrincipalContext,
        actions: Iterable[str],
        events: Sequence[Event] = (),
    ) -> None:
        """The rules an alert and a burst share: sensitive actions, root, the trust policy,
        lineage. `events`: the first events of the actions, when known (not for a burst)."""
        s = self.settings
        root = ctx.principal.type == "Root"
        hits = [(a, hit) for a in actions if (hit := self.sensitive(a)) is not None]
        for action, hit in hits[:MAX_SENSITIVE_LINES]:
            why = f"sensitive action {_short(action)} ({hit.tactic})"
            if root and _root_critical(action, hit.tactic):
                g.at_least(
                    max_severity(Severity(hit.severity), Severity(s.root_sensitive_severity)),
                    f"{why} by the account's root user (logging, detection, organization or "
                    "credentials)",
                )
            else:
                g.at_least(hit.severity, why)
        rest = hits[MAX_SENSITIVE_LINES:]
        if rest:  # one line for the rest, so that the reasons after them stay in a bounded alert
            level = max_severity(*(Severity(hit.severity) for _, hit in rest))
            names = _names(_short(a) for a, _ in rest)
            g.at_least(level, f"{len(rest)} more sensitive actions: {names}")
        if root:
            self._grade_root(g, actions, events)
        self._grade_trust(ctx, g)
        self._grade_lineage(ctx, g)

    def _grade_root(self, g: Grade, actions: Iterable[str], events: Sequence[Event]) -> None:
        """Rule 7, root in tiers: a sign-in is medium (high without MFA or after a failed
        attempt), a read low, a change high; its sensitive actions are weighed above."""
        s = self.settings
        by_action = {e.action: e for e in events}
        names = list(dict.fromkeys(actions))
        signin = by_action.get(SIGNIN)
        if SIGNIN in names:
            risks = []
            if signin is not None and signin.mfa_used is False:
                risks.append("without MFA")
            if signin is not None and signin.login_failed:
                risks.append("after a failed attempt")
            if risks:
                g.at_least(
                    s.root_risky_signin_severity, f"root user console sign-in {' and '.join(risks)}"
                )
            else:
                how = " with MFA" if signin is not None and signin.mfa_used else ""
                g.at_least(s.root_signin_severity, f"root user console sign-in{how}")
        others = [a for a in names if a != SIGNIN]
        changes = [
            a
            for a in others
            if not is_read_only(
                a.rpartition(":")[2], by_action[a].read_only if a in by_action else None
            )
        ]
        if changes:
            g.at_least(
                s.root_severity,
                f"new change(s) by the account's root user: {_names(_short(a) for a in changes)}",
            )
        elif others:
            g.at_least(
                s.root_read_severity,
                f"new read-only action(s) by the account's root user: "
                f"{_names(_short(a) for a in others)}",
            )

    def _grade_lineage(self, ctx: PrincipalContext, g: Grade) -> None:
        mark = ctx.lineage
        if mark is None:
            return
        what = GRANTING_ACTIONS.get(mark.action.rpartition(":")[2], "empowered")
        g.at_least(
            mark.severity,
            f"{mark.subject.principal} was {what} by {mark.creator} ({_short(mark.action)}, "
            f"{iso(mark.event_time)}) whose alert {mark.alert_id} was {mark.severity}: no "
            "learning, and at least that severity",
        )

    def learning_note(self, ctx: PrincipalContext, screened: Screened) -> list[str]:
        """Reasons for sensitive actions that alerted although learning (rule 2)."""
        notes = []
        for reason, tuples in screened.unlearned.items():
            whose = "the account" if reason == "account_learning" else "the principal"
            names = _names(_short(o.first_event.action) for o in tuples)
            notes.append(
                f"{whose} is still learning, which holds back ordinary novelty, not sensitive "
                f"actions: {names}"
            )
        return notes

    def _weigh_denied_window(self, g: Grade, denied_actions: Collection[str]) -> None:
        s = self.settings
        if len(denied_actions) >= s.denied_escalate_at:
            g.at_least(
                "medium",
                f"{len(denied_actions)} new denied actions within {s.burst_window_minutes} min "
                f"(threshold {s.denied_escalate_at})",
            )

    def _grade_trust(self, ctx: PrincipalContext, g: Grade) -> None:
        role = ctx.role
        if role is None:
            return
        s = self.settings
        if role.trusted_services:
            g.at_least(
                s.service_trusted_role_severity,
                f"role is assumable by AWS service(s) {_names(role.trusted_services)}, so its "
                "credentials live on compute an attacker may control",
            )
        if role.trusted_federated:
            unknown = [
                idp
                for idp in role.trusted_federated
                if not any(fnmatchcase(idp, g) for g in s.allowed_identity_providers)
            ]
            if unknown:
                g.at_least(
                    s.federated_role_severity,
                    f"role is assumable by identity provider(s) not in the allow-list: {_names(unknown)}",
                )
            else:
                ctx_reason = _names(role.trusted_federated)
                g.at_least(
                    "informational", f"role is federated through allowed IdP(s) {ctx_reason}"
                )
        foreign = [a for a in role.trusted_accounts if a != ctx.account_id]
        if foreign:
            g.at_least(
                s.cross_account_role_severity,
                f"role is assumable from other account(s) {_names(foreign)}",
            )

    def grade_slow(
        self,
        ctx: PrincipalContext,
        before: Sequence[WindowEntry],
        after: Sequence[WindowEntry],
    ) -> tuple[Grade, list[WindowEntry]] | None:
        """Rule 14, slow novelty: the follow-up when new actions that each alerted below medium
        reach `slow_novelty_actions` within `slow_novelty_days`, on at least
        `slow_novelty_min_days` days, with this object's entries (`after`) and not without
        them (`before`). None for a principal whose history before the span already holds
        that many new actions: novelty is its routine. Returns the grade and the span."""
        s = self.settings
        if not after:
            return None
        newest = after[-1].event_time
        span_s = int(s.slow_novelty_days * DAY)
        k, min_days = s.slow_novelty_actions, s.slow_novelty_min_days
        span = _quiet_span(after, newest, span_s)
        if len(span) < k or _days(span) < min_days:
            return None
        was = _quiet_span(before, newest, span_s)
        if len(was) >= k and _days(was) >= min_days:
            return None  # already reached (and alerted) before this object
        start = span[0].event_time
        since = newest - span_s - int(s.slow_novelty_history_days * DAY)
        history = [
            e
            for e in after
            if since <= e.event_time < newest - span_s and not e.action.startswith("@")
        ]
        if len(history) >= k:
            return None
        g = Grade(
            Severity(s.slow_novelty_severity),
            [
                f"{len(span)} new actions on {_days(span)} days within "
                f"{s.slow_novelty_days:g} days ({iso(start)} to {iso(newest)}), none alerted at "
                f"medium or above (threshold {k} on at least {min_days} days): "
                f"{s.slow_novelty_severity}",
                f"{len(history)} new action(s) in the {s.slow_novelty_history_days:g} days before "
                f"them (fewer than {k}): novelty is not this principal's routine",
            ],
        )
        contexts = list(dict.fromkeys(e.context for e in span if e.context))
        if contexts:
            g.at_least(
                s.slow_novelty_context_severity,
                f"they came from a network or client new to the principal: {_names(contexts)}",
            )
        return g, span

    def grade_burst(self, ctx: PrincipalContext, window: Sequence[WindowEntry]) -> Grade:
        """The follow-up alert when a principal's new actions, spread over several objects,
        reach the threshold within the window (the seeds' "5 or more new actions"). It weighs
        what the single-object alert weighs, over the whole window: sensitive actions, root,
        the role's trust policy and denied attempts."""
        s = self.settings
        g = Grade(
            Severity.MEDIUM,
            [
                f"{len(window)} new actions within {s.burst_window_minutes} min across log "
                f"objects ({iso(window[0].event_time)} to {iso(window[-1].event_time)}; "
                f"threshold {s.escalate_at}): medium"
            ],
        )
        self._weigh(g, ctx, dict.fromkeys(e.action for e in window))
        denied = list(dict.fromkeys(e.action for e in window if is_denied(e.error_code)))
        if denied:
            g.reasons.append(
                f"{len(denied)} of the window's new actions were denied: "
                + _names(_short(a) for a in denied)
            )
        self._weigh_denied_window(g, denied)
        return g


def _quiet_span(entries: Sequence[WindowEntry], newest: int, span_s: int) -> list[WindowEntry]:
    """The entries within `span_s` of `newest` whose alert asked no human to look (below
    medium: informational, or low, which rule 15 makes of one new action from a new network)."""
    return [
        e for e in entries if newest - span_s <= e.event_time <= newest and e.severity in _QUIET
    ]


_QUIET = frozenset({Severity.INFORMATIONAL.value, Severity.LOW.value})


def _days(entries: Iterable[WindowEntry]) -> int:
    return len({e.event_time // DAY for e in entries})


def _root_critical(action: str, tactic: str) -> bool:
    return (
        tactic in _ROOT_CRITICAL_TACTICS
        or action in _CREDENTIAL_GRANTS
        or action.startswith("organizations.amazonaws.com:")
    )


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
