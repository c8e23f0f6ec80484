"""The alert policy: whether a principal's new actions become an alert, and how loud.

Pure and separate from detection: the detector finds new tuples, the policy judges them. Every
decision is written into `reasons`, so an analyst can see why an alert has its severity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .model import DAY, Principal, TupleObservation


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True, slots=True)
class PolicySettings:
    learning_days: float = 15.0
    # The seeds: fewer than this many new actions at once is informational.
    escalate_at: int = 5


@dataclass(slots=True)
class Verdict:
    """The policy's judgement of one principal's new tuples in one log object."""

    alerted: list[TupleObservation] = field(default_factory=list)
    suppressed: list[TupleObservation] = field(default_factory=list)
    severity: Severity = Severity.INFORMATIONAL
    reasons: list[str] = field(default_factory=list)
    suppressed_reason: str = ""  # set when nothing is alerted


class AlertPolicy:
    def __init__(self, settings: PolicySettings | None = None) -> None:
        self.settings = settings or PolicySettings()

    def learning_until(self, principal_first_seen: int) -> int:
        return principal_first_seen + int(self.settings.learning_days * DAY)

    def judge(
        self,
        principal: Principal,
        new: Sequence[TupleObservation],
        principal_first_seen: int,
    ) -> Verdict:
        verdict = Verdict()
        if principal.is_service:
            verdict.suppressed = list(new)
            verdict.suppressed_reason = "aws_service"
            return verdict
        until = self.learning_until(principal_first_seen)
        for obs in new:
            (verdict.suppressed if obs.first_seen < until else verdict.alerted).append(obs)
        if not verdict.alerted:
            verdict.suppressed_reason = "learning"
            return verdict
        if verdict.suppressed:
            verdict.reasons.append(
                f"{len(verdict.suppressed)} other new action(s) fell in the principal's "
                f"learning period and were recorded without alerting"
            )
        n = len(verdict.alerted)
        if n < self.settings.escalate_at:
            verdict.severity = Severity.INFORMATIONAL
            verdict.reasons.append(
                f"{n} new action(s), fewer than {self.settings.escalate_at}: informational"
            )
        else:
            verdict.severity = Severity.MEDIUM
            verdict.reasons.append(
                f"{n} new actions at once (threshold {self.settings.escalate_at}): medium"
            )
        return verdict
