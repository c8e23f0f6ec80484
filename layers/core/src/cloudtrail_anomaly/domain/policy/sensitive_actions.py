"""Rule 6, sensitive actions: a new action in the curated list (domain/sensitive.py, with the
settings' additions and removals) raises the alert to at least its severity; done by the root
user, one on logging, detection, the organization or credentials is critical (rule 7)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from fnmatch import fnmatchcase

from ..model import Severity, max_severity
from ..sensitive import SensitiveAction, default_sensitive_actions, expand_action
from .grade import Grade, names, short
from .root import root_critical
from .settings import PolicySettings

MAX_SENSITIVE_LINES = 20  # sensitive actions with a reason each; the rest share one


class SensitiveActions:
    """The curated list with `sensitive_actions_add` (at least high) and `_remove` applied."""

    def __init__(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        table = default_sensitive_actions()
        for name in remove:
            full = expand_action(name)
            for key in [k for k in table if fnmatchcase(k, full)]:
                del table[key]
        for name in add:
            table[expand_action(name)] = SensitiveAction("user-defined", "high")
        self._exact = {k: v for k, v in table.items() if not _is_glob(k)}
        self._globs = [(k, v) for k, v in table.items() if _is_glob(k)]

    def siblings(self, action: str) -> list[str]:
        """The other listed actions of the same service and tactic as `action` when it is a
        curated high one (e.g. iam:PutRolePolicy for iam:AttachRolePolicy, both privilege
        escalation): what a principal that already does one of them gains nothing new by."""
        hit = self.get(action)
        if hit is None or hit.severity != "high" or hit.tactic == "user-defined":
            return []
        source = action.partition(":")[0]
        return [
            a
            for a, v in self._exact.items()
            if a != action
            and v.tactic == hit.tactic
            and v.severity == "high"
            and a.partition(":")[0] == source
        ]

    def get(self, action: str) -> SensitiveAction | None:
        found = self._exact.get(action)
        if found is None:
            for pattern, value in self._globs:
                if fnmatchcase(action, pattern):
                    return value
        return found


def grade_sensitive(
    g: Grade,
    actions: Iterable[str],
    sensitive: SensitiveActions,
    root: bool,
    s: PolicySettings,
    exercised: Collection[str] = (),
    fresh: Collection[str] = (),
) -> None:
    """Each sensitive action among `actions` raises the grade to its severity (the root user's
    critical ones to `root_sensitive_severity`); past MAX_SENSITIVE_LINES, one line for the rest.
    A high one is medium when the principal already exercises a sibling power (`exercised`,
    `SensitiveActions.siblings`) and the action came from no network or client new to it
    (`fresh`: the actions that did)."""
    hits = [(a, hit) for a in actions if (hit := sensitive.get(a)) is not None]
    for action, hit in hits[:MAX_SENSITIVE_LINES]:
        why = f"sensitive action {short(action)} ({hit.tactic})"
        if root and root_critical(action, hit.tactic):
            g.at_least(
                max_severity(Severity(hit.severity), Severity(s.root_sensitive_severity)),
                f"{why} by the account's root user (logging, detection, organization or "
                "credentials)",
            )
            continue
        have = (
            [a for a in sensitive.siblings(action) if a in exercised]
            if s.exercised_power and action not in fresh
            else []
        )
        if have:
            g.at_least(
                s.exercised_power_severity,
                f"{why}, a power the principal already exercises ({names(short(a) for a in have)}) "
                f"from its usual networks and clients: {s.exercised_power_severity}, not "
                f"{hit.severity}",
            )
        else:
            g.at_least(hit.severity, why)
    rest = hits[MAX_SENSITIVE_LINES:]
    if rest:  # one line for the rest, so that the reasons after them stay in a bounded alert
        level = max_severity(*(Severity(hit.severity) for _, hit in rest))
        listed = names(short(a) for a, _ in rest)
        g.at_least(level, f"{len(rest)} more sensitive actions: {listed}")


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
