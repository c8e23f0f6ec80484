"""Rule 15, context novelty: new actions from a network or client family new to the principal
raise the alert one step (at most to high), unless the principal meets new ones so often
(`context_routine_at` within the kept window) that a new one is ordinary for it."""

from __future__ import annotations

from collections.abc import Sequence

from ..context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from ..model import TupleObservation
from .grade import Grade, PrincipalContext, names
from .settings import PolicySettings


def grade_context(
    g: Grade, ctx: PrincipalContext, alerted: Sequence[TupleObservation], s: PolicySettings
) -> None:
    if not s.context_novelty or not ctx.new_contexts:
        return
    events = [o.first_event for o in alerted]
    nets = sorted(
        {n for e in events if (n := network_of(e.source_ip)) and NET_PREFIX + n in ctx.new_contexts}
    )
    clients = sorted(
        {
            c
            for e in events
            if (c := agent_family(e.user_agent)) and AGENT_PREFIX + c in ctx.new_contexts
        }
    )
    rare: list[str] = []
    for kind, found, met in (
        ("network", nets, ctx.networks_met),
        ("client", clients, ctx.clients_met),
    ):
        if not found:
            continue
        what = f"new action(s) from {kind}(s) {names(found)} new to the principal"
        if met >= s.context_routine_at:
            g.reasons.append(
                f"{what}, ordinary for it ({met} new {kind}s lately, threshold "
                f"{s.context_routine_at}): not raised"
            )
        else:
            rare.append(f"{what} ({met} new {kind}s lately)")
    if rare:
        why = "; ".join(rare)
        g.bump(why)
