"""Rule 13, lineage: a principal that an alerting principal created or empowered inherits that
alert's severity, and has no learning (the mark comes from domain/lineage.py's grants)."""

from __future__ import annotations

from ..lineage import GRANTING_ACTIONS
from ..model import iso
from .grade import Grade, PrincipalContext, short


def grade_lineage(g: Grade, ctx: PrincipalContext) -> None:
    mark = ctx.lineage
    if mark is None:
        return
    what = GRANTING_ACTIONS.get(mark.action.rpartition(":")[2], "empowered")
    g.at_least(
        mark.severity,
        f"{mark.subject.principal} was {what} by {mark.creator} ({short(mark.action)}, "
        f"{iso(mark.event_time)}) whose alert {mark.alert_id} was {mark.severity}: no "
        "learning, and at least that severity",
    )
