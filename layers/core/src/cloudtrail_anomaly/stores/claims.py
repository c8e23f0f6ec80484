"""What every `Baseline` store shares: when a claim wins, and claims grouped by principal (a
principal's claims are all-or-nothing, in one transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.model import PrincipalKey, TupleClaim, TupleState


def claimable(state: TupleState | None, claim: TupleClaim) -> bool:
    """A claim wins over an absent tuple, or one forgotten by the claim's first sighting."""
    return state is None or state.expires_at <= claim.first_seen


def group_by_principal(claims: Sequence[TupleClaim]) -> dict[PrincipalKey, list[TupleClaim]]:
    groups: dict[PrincipalKey, list[TupleClaim]] = {}
    for c in claims:
        groups.setdefault(c.key.principal_key, []).append(c)
    return groups
