"""Rule 15, context novelty: new actions from a network or client family new to the principal
raise the alert one step (at most to high), unless the principal meets new ones so often
(`context_routine_at` within the kept window) that a new one is ordinary for it. Long-term
credentials (an IAM user's, root's) used from such a network are raised one more step: unlike a
role's session they do not move with compute, so a new network is how a stolen key looks."""

from __future__ import annotations

from collections.abc import Sequence

from ..context import AGENT_PREFIX, NET_PREFIX, agent_family, network_of
from ..model import Event, TupleObservation
from .grade import Grade, PrincipalContext, names
from .root import SIGNIN
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
    rare_nets: list[str] = []
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
            if kind == "network":
                rare_nets = found
    if rare:
        why = "; ".join(rare)
        g.bump(why)
    if rare_nets and s.long_term_new_network and ctx.principal.type in LONG_TERM:
        signin = any(e.action == SIGNIN for e in events if network_of(e.source_ip) in rare_nets)
        who = LONG_TERM[ctx.principal.type]
        how = f"{who} signed in" if signin else f"{who}'s credentials were used"
        g.bump(
            f"{how} from network(s) {names(rare_nets)} new to it: long-term credentials do not "
            "move with compute, so this is how stolen ones look"
        )


def rare_new_networks(ctx: PrincipalContext, s: PolicySettings) -> frozenset[str]:
    """The networks new to the principal in this object, unless new networks are ordinary for
    it (`context_routine_at`)."""
    if not s.context_novelty or ctx.networks_met >= s.context_routine_at:
        return frozenset()
    return frozenset(c[len(NET_PREFIX) :] for c in ctx.new_contexts if c.startswith(NET_PREFIX))


# Identity types whose credentials are long-term (a key or a password), as reasons name them.
LONG_TERM = {"IAMUser": "the IAM user", "Root": "the root user"}


def came_fresh(e: Event, ctx: PrincipalContext) -> bool:
    """Whether the event came from a network or client family new to the principal."""
    return (
        NET_PREFIX + network_of(e.source_ip) in ctx.new_contexts
        or AGENT_PREFIX + agent_family(e.user_agent) in ctx.new_contexts
    )
