"""The severity ladder every rule climbs: a `Grade` (a severity and the reasons for it), the
`PrincipalContext` the rules read, and the phrasing their reasons share.

A rule raises the grade to *at least* its level and says why, or says why and that the alert
was already that loud, so an alert's reasons explain its severity rule by rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..model import Mark, Principal, RoleInfo, Severity, WindowEntry


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
    # Sensitive actions the principal already performs (known before this object) that share a
    # service and tactic with a new sensitive action of it (rule 16, `exercised_power`).
    exercised: frozenset[str] = frozenset()


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

    def bump(self, why: str) -> None:
        """One step up, at most to high (rules 10 and 15), and say so; at high or above, only
        say why."""
        bumped = self.severity.bumped(cap=Severity.HIGH)
        if bumped is not self.severity:
            self.reasons.append(f"{why}: raised from {self.severity} to {bumped}")
            self.severity = bumped
        else:
            self.reasons.append(why)


MAX_NAMED = 10  # names a reason lists before "and N more": reasons stay a line each


def names(listed: Iterable[str]) -> str:
    """The names, comma-separated, at most MAX_NAMED of them and then how many more."""
    shown = list(listed)
    if len(shown) <= MAX_NAMED:
        return ", ".join(shown)
    return ", ".join(shown[:MAX_NAMED]) + f" and {len(shown) - MAX_NAMED} more"


def short(action: str) -> str:
    """`iam:CreateUser` for `iam.amazonaws.com:CreateUser`, as reasons write actions."""
    return action.replace(".amazonaws.com:", ":", 1)
