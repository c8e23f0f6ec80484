"""Rules 4 and 8, the count: the base severity every other rule raises from.

A principal's new actions in one object set the alert's base (informational, or medium at
`escalate_at` and more); the burst follow-up, when new actions spread over several objects
reach that threshold within the window, starts at medium.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Severity, WindowEntry, iso
from .grade import Grade
from .settings import PolicySettings


def grade_count(n: int, s: PolicySettings) -> Grade:
    """The base of a per-object alert with `n` new actions."""
    if n < s.escalate_at:
        return Grade(
            Severity.INFORMATIONAL,
            [f"{n} new action(s), fewer than {s.escalate_at}: informational"],
        )
    return Grade(Severity.MEDIUM, [f"{n} new actions at once (threshold {s.escalate_at}): medium"])


def grade_burst_count(window: Sequence[WindowEntry], s: PolicySettings) -> Grade:
    """The base of the burst follow-up over the window's new actions (at least one)."""
    return Grade(
        Severity.MEDIUM,
        [
            f"{len(window)} new actions within {s.burst_window_minutes} min across log "
            f"objects ({iso(window[0].event_time)} to {iso(window[-1].event_time)}; "
            f"threshold {s.escalate_at}): medium"
        ],
    )
