"""Rule 7, root in tiers: what the account's root user does, not that it is root, sets the
level. A console sign-in is medium (high without MFA, after a failed attempt, or from a network
new to root), a new read low,
a new change high; a sensitive action on logging, detection, the organization or credentials is
critical (`root_critical`, weighed with the sensitive actions)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from ..context import network_of
from ..lineage import GRANTING_ACTIONS
from ..model import Event
from .grade import Grade, names, short
from .settings import PolicySettings

SIGNIN = "signin.amazonaws.com:ConsoleLogin"
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Query")
# Root's sensitive actions that are critical: logging and detection (defense-evasion), secrets
# and credentials, the organization.
_ROOT_CRITICAL_TACTICS = frozenset({"defense-evasion", "credential-access"})
_CREDENTIAL_GRANTS = frozenset(
    f"iam.amazonaws.com:{name}" for name, what in GRANTING_ACTIONS.items() if "given" in what
)


def is_read_only(event_name: str, read_only: bool | None) -> bool:
    """CloudTrail's readOnly when the record says, else what the name says."""
    if read_only is not None:
        return read_only
    return event_name.startswith(_READ_PREFIXES)


def root_critical(action: str, tactic: str) -> bool:
    """Whether a sensitive action (of that tactic) is critical when root does it."""
    return (
        tactic in _ROOT_CRITICAL_TACTICS
        or action in _CREDENTIAL_GRANTS
        or action.startswith("organizations.amazonaws.com:")
    )


def grade_root(
    g: Grade,
    actions: Iterable[str],
    events: Sequence[Event],
    s: PolicySettings,
    new_networks: Collection[str] = (),
) -> None:
    """The root user's new actions: a sign-in, reads, changes. `events`: the first events of
    the actions when known (the burst follow-up knows only the names); `new_networks`: the
    networks (context.network_of) new to root in this object, where that is rare for it."""
    by_action = {e.action: e for e in events}
    listed = list(dict.fromkeys(actions))
    signin = by_action.get(SIGNIN)
    if SIGNIN in listed:
        risks = []
        if signin is not None and signin.mfa_used is False:
            risks.append("without MFA")
        if signin is not None and signin.login_failed:
            risks.append("after a failed attempt")
        if signin is not None and network_of(signin.source_ip) in new_networks:
            risks.append(f"from network {network_of(signin.source_ip)} new to it")
        if risks:
            g.at_least(
                s.root_risky_signin_severity, f"root user console sign-in {' and '.join(risks)}"
            )
        else:
            how = " with MFA" if signin is not None and signin.mfa_used else ""
            g.at_least(s.root_signin_severity, f"root user console sign-in{how}")
    others = [a for a in listed if a != SIGNIN]
    changes = [
        a
        for a in others
        if not is_read_only(
            a.rpartition(":")[2], by_action[a].read_only if a in by_action else None
        )
    ]
    if changes:
        g.at_least(
            s.root_severity,
            f"new change(s) by the account's root user: {names(short(a) for a in changes)}",
        )
    elif others:
        g.at_least(
            s.root_read_severity,
            f"new read-only action(s) by the account's root user: "
            f"{names(short(a) for a in others)}",
        )
