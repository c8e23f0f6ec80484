"""Screening (rules 1 and 2): whether each new tuple may alert at all.

AWS services, ignored accounts and principals, ignored event sources and actions, and learning
periods (the principal's and a newly seen account's) hold tuples back. A screened-out tuple is
still recorded in the baseline, so un-ignoring or the end of learning never floods. Learning
holds back ordinary novelty only: a sensitive action alerts all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..model import DAY, TupleObservation
from ..sensitive import expand_action
from .grade import PrincipalContext, names, short
from .sensitive_actions import SensitiveActions
from .settings import IgnoreSettings, PolicySettings


@dataclass(slots=True)
class Screened:
    alerted: list[TupleObservation] = field(default_factory=list)
    suppressed: dict[str, list[TupleObservation]] = field(default_factory=dict)  # reason → tuples
    # Sensitive tuples alerted although their principal or account is learning, and why
    # learning would have held them ("learning" or "account_learning").
    unlearned: dict[str, list[TupleObservation]] = field(default_factory=dict)


def learning_start(ctx: PrincipalContext) -> int:
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


class Screen:
    """The screening of one policy: its settings, ignore lists and sensitive actions."""

    def __init__(
        self, settings: PolicySettings, ignore: IgnoreSettings, sensitive: SensitiveActions
    ) -> None:
        self.settings = settings
        self.ignore = ignore
        self.sensitive = sensitive
        self._ignore_actions = [expand_action(a) for a in ignore.actions]

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
        principal_until = 0 if principal.type == "Root" or made else learning_start(ctx) + learn
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
                and self.sensitive.get(obs.first_event.action) is not None
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


def learning_note(screened: Screened) -> list[str]:
    """Reasons for sensitive actions that alerted although learning (rule 2)."""
    notes = []
    for reason, tuples in screened.unlearned.items():
        whose = "the account" if reason == "account_learning" else "the principal"
        listed = names(short(o.first_event.action) for o in tuples)
        notes.append(
            f"{whose} is still learning, which holds back ordinary novelty, not sensitive "
            f"actions: {listed}"
        )
    return notes
