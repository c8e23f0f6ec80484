"""Rule 10, a new region: a new action in a region the principal (with history) never used
raises the alert one step, at most to high. It comes last but for rule 15, so it bumps what
the others made; a new region seen only with known actions becomes known silently."""

from __future__ import annotations

from collections.abc import Sequence

from ..model import TupleObservation
from .grade import Grade, PrincipalContext, names
from .settings import PolicySettings


def grade_new_regions(
    g: Grade, ctx: PrincipalContext, alerted: Sequence[TupleObservation], s: PolicySettings
) -> None:
    if s.new_region_bump and ctx.new_regions:
        in_new = sorted({o.first_event.region for o in alerted} & ctx.new_regions)
        if in_new:
            why = f"first activity of this principal in region(s) {names(in_new)}"
            g.bump(why)
