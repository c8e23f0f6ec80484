"""Rule 14, slow novelty: the follow-up when quiet new actions (each alerted below medium) add up
over days, for a principal whose novelty is not routine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..model import DAY, Severity, WindowEntry, iso
from .grade import Grade, names
from .settings import PolicySettings


def grade_slow(
    before: Sequence[WindowEntry], after: Sequence[WindowEntry], s: PolicySettings
) -> tuple[Grade, list[WindowEntry]] | None:
    """The follow-up when new actions that each alerted below medium reach
    `slow_novelty_actions` within `slow_novelty_days`, on at least `slow_novelty_min_days`
    days, with this object's entries (`after`) and not without them (`before`). None for a
    principal whose history before the span already holds that many new actions: novelty is
    its routine. Returns the grade and the span."""
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
        e for e in after if since <= e.event_time < newest - span_s and not e.action.startswith("@")
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
            f"they came from a network or client new to the principal: {names(contexts)}",
        )
    return g, span


def _quiet_span(entries: Sequence[WindowEntry], newest: int, span_s: int) -> list[WindowEntry]:
    """The entries within `span_s` of `newest` whose alert asked no human to look (below
    medium: informational, or low, which rule 15 makes of one new action from a new network)."""
    return [
        e for e in entries if newest - span_s <= e.event_time <= newest and e.severity in _QUIET
    ]


_QUIET = frozenset({Severity.INFORMATIONAL.value, Severity.LOW.value})


def _days(entries: Iterable[WindowEntry]) -> int:
    return len({e.event_time // DAY for e in entries})
