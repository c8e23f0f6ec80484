"""The alert policy's settings: what never alerts (`IgnoreSettings`) and how loud the rest is
(`PolicySettings`); docs/alert-policy.md gives every one with its rule and default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IgnoreSettings:
    """Tuples that are recorded but never alerted (so un-ignoring never floods)."""

    principals: tuple[str, ...] = ()  # globs over the baseline key (ARN)
    actions: tuple[
        str, ...
    ] = ()  # globs over eventSource:eventName ("iam:*" = iam.amazonaws.com:*)
    event_sources: tuple[str, ...] = ()  # globs over eventSource
    accounts: tuple[str, ...] = ()  # 12-digit account ids


@dataclass(frozen=True, slots=True)
class PolicySettings:
    learning_days: float = 15.0  # a new principal's tuples are recorded, not alerted
    account_learning: bool = True  # a newly seen account learns as a whole, for learning_days
    escalate_at: int = 5  # the seeds: fewer new actions than this → informational, else medium
    burst_window_minutes: int = 60  # new actions accumulate across objects in this window
    denied_escalate_at: int = 3  # this many new denied actions in the window → at least medium
    new_region_bump: bool = True  # a new action in a region new for the principal: one step up
    # Learning holds back ordinary novelty only: a sensitive action alerts at its severity.
    sensitive_during_learning: bool = True
    # Root in tiers (rule 7): what root does, not that it is root, sets the level.
    root_read_severity: str = "low"  # a read-only/list action
    root_signin_severity: str = "medium"  # a console sign-in with MFA, first try
    root_risky_signin_severity: str = "high"  # ... without MFA, or after a failed attempt
    root_severity: str = "high"  # a mutating action
    root_sensitive_severity: str = "critical"  # a sensitive one on logs, detection, org, creds
    # Lineage (rule 13): what an alerting principal creates or empowers inherits its alert.
    lineage: bool = True
    lineage_hours: float = 24.0  # a principal's alert taints what it grants for this long
    lineage_min_severity: str = "medium"  # alerts at or above this pass lineage on
    # Slow novelty (rule 14): quiet new actions that add up over days give one follow-up.
    slow_novelty: bool = True
    slow_novelty_actions: int = 4  # this many new actions, none alerted at medium or above,
    slow_novelty_days: float = 7.0  # within this many days (event time),
    slow_novelty_min_days: int = 2  # on at least this many distinct (UTC) days
    # A principal with that many new actions in these days before the span gains them by
    # routine (a deploy role with every release): no slow alert.
    slow_novelty_history_days: float = 21.0
    slow_novelty_severity: str = "low"  # the follow-up's severity
    slow_novelty_context_severity: str = "medium"  # ... from a network or client new to it
    # Context novelty (rule 15): a new action from a network or client family new to the
    # principal is one step louder, unless the principal met this many new ones of that kind
    # within the slow-novelty window's days (CI runners, NAT pools: new is ordinary for them).
    context_novelty: bool = True
    context_routine_at: int = 3
    # Long-term credentials (an IAM user's key or password, root) do not move with compute: a
    # new action from a network new to them (and rare for them) is one more step up.
    long_term_new_network: bool = True
    # A high sensitive action is medium for a principal that already exercises a power of the
    # same kind (same service and tactic, e.g. PutRolePolicy before AttachRolePolicy) and
    # takes it from no network or client new to it: it gains no new power (rule 16).
    exercised_power: bool = True
    exercised_power_severity: str = "medium"
    sensitive_actions_add: tuple[str, ...] = ()  # extra sensitive actions (at least high)
    sensitive_actions_remove: tuple[str, ...] = ()  # curated ones to drop
    service_trusted_role_severity: str = "high"  # role assumable by an AWS service (yogisec)
    federated_role_severity: str = "high"  # assumable by an IdP not in the allow-list
    cross_account_role_severity: str = "medium"  # assumable by another AWS account
    # Globs over IdP ARNs / OIDC hosts. IAM Identity Center's own SAML provider is trusted by
    # every AWSReservedSSO_* role: without it, every SSO user's new action would be high.
    allowed_identity_providers: tuple[str, ...] = (
        "arn:aws:iam::*:saml-provider/AWSSSO_*_DO_NOT_DELETE",
    )
    min_severity: str = "informational"  # alerts below it are kept as suppressed, not delivered
