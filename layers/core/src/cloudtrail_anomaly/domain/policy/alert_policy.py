"""The alert policy: whether a principal's new actions become an alert, and how loud.

Pure and separate from detection: the detector finds and claims new tuples, the policy judges
them. Judging has two steps. `screen` decides per tuple whether it may alert at all (screen.py:
AWS services, ignore lists, learning periods): a screened-out tuple is still recorded in the
baseline, so un-ignoring or the end of learning never floods. `grade` gives the alert its
severity from independent rules (a module each), each of which writes its reason, so the alert
says why it is as loud as it is. docs/alert-policy.md describes every rule and its settings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from ..model import DAY, Event, Severity, TupleObservation, WindowEntry
from ..sensitive import SensitiveAction
from . import slow_novelty
from .context_novelty import came_fresh, grade_context, rare_new_networks
from .count import grade_burst_count, grade_count
from .denied import grade_denied_window, is_denied, note_denied, note_denied_in_window
from .grade import Grade, PrincipalContext
from .lineage import grade_lineage
from .regions import grade_new_regions
from .root import grade_root
from .screen import Screen, Screened, learning_note
from .sensitive_actions import SensitiveActions, grade_sensitive
from .settings import IgnoreSettings, PolicySettings
from .trust import grade_trust


class AlertPolicy:
    def __init__(
        self, settings: PolicySettings | None = None, ignore: IgnoreSettings | None = None
    ) -> None:
        self.settings = s = settings or PolicySettings()
        self.ignore = ignore or IgnoreSettings()
        self._sensitive = SensitiveActions(s.sensitive_actions_add, s.sensitive_actions_remove)
        self._screen = Screen(s, self.ignore, self._sensitive)
        self.min_severity = Severity(s.min_severity)

    # -- screening ---------------------------------------------------------------------------

    def learning_until(self, first_seen: int) -> int:
        return first_seen + int(self.settings.learning_days * DAY)

    def screen(self, ctx: PrincipalContext, new: Sequence[TupleObservation]) -> Screened:
        return self._screen.screen(ctx, new)

    def learning_note(self, screened: Screened) -> list[str]:
        """Reasons for sensitive actions that alerted although learning (rule 2)."""
        return learning_note(screened)

    # -- grading -----------------------------------------------------------------------------

    def sensitive(self, action: str) -> SensitiveAction | None:
        return self._sensitive.get(action)

    def sensitive_siblings(self, action: str) -> list[str]:
        """The sensitive actions whose exercise makes `action` no new power (rule 16); none
        when `exercised_power` is off."""
        return self._sensitive.siblings(action) if self.settings.exercised_power else []

    def grade(self, ctx: PrincipalContext, alerted: Sequence[TupleObservation]) -> Grade:
        """The per-object alert: the count sets the base, the other rules raise it; a new
        region, then a new network or client, bump the result."""
        s = self.settings
        g = grade_count(len(alerted), s)
        actions = [o.first_event.action for o in alerted]
        events = [o.first_event for o in alerted]
        self._weigh(g, ctx, actions, events, {e.action for e in events if came_fresh(e, ctx)})
        note_denied(
            g, [o.first_event.action for o in alerted if is_denied(o.first_event.error_code)]
        )
        grade_denied_window(g, {e.action for e in ctx.window if is_denied(e.error_code)}, s)
        grade_new_regions(g, ctx, alerted, s)
        grade_context(g, ctx, alerted, s)
        return g

    def grade_burst(self, ctx: PrincipalContext, window: Sequence[WindowEntry]) -> Grade:
        """The follow-up alert when a principal's new actions, spread over several objects,
        reach the threshold within the window (the seeds' "5 or more new actions"). It weighs
        what the single-object alert weighs, over the whole window: sensitive actions, root,
        the role's trust policy and denied attempts."""
        s = self.settings
        g = grade_burst_count(window, s)
        fresh = {e.action for e in window if e.context}  # came with a new network or client
        self._weigh(g, ctx, dict.fromkeys(e.action for e in window), fresh=fresh)
        denied = list(dict.fromkeys(e.action for e in window if is_denied(e.error_code)))
        note_denied_in_window(g, denied)
        grade_denied_window(g, denied, s)
        return g

    def grade_slow(
        self, before: Sequence[WindowEntry], after: Sequence[WindowEntry]
    ) -> tuple[Grade, list[WindowEntry]] | None:
        """Rule 14's follow-up, if this object's entries make one (slow_novelty.py)."""
        return slow_novelty.grade_slow(before, after, self.settings)

    def _weigh(
        self,
        g: Grade,
        ctx: PrincipalContext,
        actions: Iterable[str],
        events: Sequence[Event] = (),
        fresh: Collection[str] = (),
    ) -> None:
        """The rules an alert and a burst share: sensitive actions, root, the trust policy,
        lineage. `events`: the first events of the actions, when known (not for a burst);
        `fresh`: the actions that came from a network or client new to the principal."""
        s = self.settings
        root = ctx.principal.type == "Root"
        grade_sensitive(g, actions, self._sensitive, root, s, ctx.exercised, fresh)
        if root:
            grade_root(g, actions, events, s, rare_new_networks(ctx, s))
        grade_trust(g, ctx, s)
        grade_lineage(g, ctx)
