"""Rule 9, denied attempts: new actions that failed as denied are noted, and
`denied_escalate_at` distinct ones within the burst window make the alert at least medium."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .grade import Grade, names, short
from .settings import PolicySettings

_DENIED_MARKERS = ("accessdenied", "unauthorized", "forbidden", "notauthorized")


def is_denied(error_code: str) -> bool:
    code = error_code.lower()
    return any(m in code for m in _DENIED_MARKERS)


def note_denied(g: Grade, denied_actions: Sequence[str]) -> None:
    """A reason naming this object's new actions that were denied (none: no reason)."""
    if denied_actions:
        listed = names(short(a) for a in denied_actions)
        g.reasons.append(f"{len(denied_actions)} new action(s) were denied: {listed}")


def note_denied_in_window(g: Grade, denied_actions: Sequence[str]) -> None:
    """The same for the burst follow-up, over the window's new actions."""
    if denied_actions:
        listed = names(short(a) for a in denied_actions)
        g.reasons.append(f"{len(denied_actions)} of the window's new actions were denied: {listed}")


def grade_denied_window(g: Grade, denied_actions: Collection[str], s: PolicySettings) -> None:
    """At least medium when the window holds `denied_escalate_at` distinct denied actions."""
    if len(denied_actions) >= s.denied_escalate_at:
        g.at_least(
            "medium",
            f"{len(denied_actions)} new denied actions within {s.burst_window_minutes} min "
            f"(threshold {s.denied_escalate_at})",
        )
