"""Each rule of the alert policy called directly (domain/policy/*), no Detector: built inputs,
positive and negative examples per rule. tests/test_policy.py and the rule-family test modules
(test_root, test_lineage, test_slow_novelty, ...) drive the same rules through detection."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from cloudtrail_anomaly.domain.model import (
    DAY,
    Event,
    Mark,
    MarkKind,
    Principal,
    PrincipalKey,
    RoleInfo,
    Severity,
    TupleObservation,
    WindowEntry,
    iso,
)
from cloudtrail_anomaly.domain.policy import (
    AlertPolicy,
    Grade,
    IgnoreSettings,
    PolicySettings,
    PrincipalContext,
)
from cloudtrail_anomaly.domain.policy.context_novelty import grade_context
from cloudtrail_anomaly.domain.policy.count import grade_burst_count, grade_count
from cloudtrail_anomaly.domain.policy.denied import (
    grade_denied_window,
    is_denied,
    note_denied,
    note_denied_in_window,
)
from cloudtrail_anomaly.domain.policy.grade import MAX_NAMED, names, short
from cloudtrail_anomaly.domain.policy.lineage import grade_lineage
from cloudtrail_anomaly.domain.policy.regions import grade_new_regions
from cloudtrail_anomaly.domain.policy.root import SIGNIN, grade_root, is_read_only, root_critical
from cloudtrail_anomaly.domain.policy.screen import Screen, learning_note, learning_start
from cloudtrail_anomaly.domain.policy.sensitive_actions import (
    MAX_SENSITIVE_LINES,
    SensitiveActions,
    grade_sensitive,
)
from cloudtrail_anomaly.domain.policy.slow_novelty import grade_slow
from cloudtrail_anomaly.domain.policy.trust import grade_trust

ACCOUNT = "123456789012"
OTHER = "444455556666"
T0 = 1_717_200_000  # 2024-06-01T00:00:00Z
S = PolicySettings()

ALICE = Principal("IAMUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "alice")
ROOT = Principal("Root", f"arn:aws:iam::{ACCOUNT}:root")
SERVICE = Principal("AWSService", "ec2.amazonaws.com", "ec2.amazonaws.com", is_service=True)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Admin_1"
PERSON = Principal(
    "AssumedRole", f"{ROLE_ARN}#alice@example.com", "AWSReservedSSO_Admin_1", "alice@example.com"
)

LIST_BUCKETS = "s3.amazonaws.com:ListBuckets"
CREATE_BUCKET = "s3.amazonaws.com:CreateBucket"
CREATE_KEY = "iam.amazonaws.com:CreateAccessKey"  # sensitive: persistence, high
CREATE_USER = "iam.amazonaws.com:CreateUser"  # sensitive: persistence, high
STOP_LOGGING = "cloudtrail.amazonaws.com:StopLogging"  # sensitive: defense-evasion, critical


def event(action: str, *, principal: Principal = ALICE, t: int = T0, **kw: Any) -> Event:
    source, _, name = action.rpartition(":")
    return Event(principal, ACCOUNT, action, source, name, kw.pop("region", "us-east-1"), t, **kw)


def obs(action: str, *, t: int = T0, **kw: Any) -> TupleObservation:
    return TupleObservation(event(action, t=t, **kw), t, t)


def context(principal: Principal = ALICE, **kw: Any) -> PrincipalContext:
    """A principal seen for 30 days in an account seen as long: past every learning period."""
    kw.setdefault("first_seen", T0 - 30 * DAY)
    kw.setdefault("account_first_seen", T0 - 30 * DAY)
    return PrincipalContext(principal, ACCOUNT, **kw)


def informational() -> Grade:
    return Grade(Severity.INFORMATIONAL, [])


def entry(
    t: int, action: str = LIST_BUCKETS, severity: str = "informational", ctx: str = ""
) -> WindowEntry:
    return WindowEntry(t, action, "us-east-1", "", "", severity, ctx)


# -- the ladder (grade.py) -------------------------------------------------------------------


def test_at_least_raises_a_lower_grade_and_says_so() -> None:
    g = informational()
    g.at_least("high", "why")
    assert (g.severity, g.reasons) == (Severity.HIGH, ["why: raised to high"])


def test_at_least_never_lowers_and_says_it_was_already_that_loud() -> None:
    g = Grade(Severity.CRITICAL, [])
    g.at_least("medium", "why")
    assert (g.severity, g.reasons) == (Severity.CRITICAL, ["why (already critical)"])


def test_bump_is_one_step_up() -> None:
    g = Grade(Severity.LOW, [])
    g.bump("why")
    assert (g.severity, g.reasons) == (Severity.MEDIUM, ["why: raised from low to medium"])


@pytest.mark.parametrize("level", [Severity.HIGH, Severity.CRITICAL])
def test_bump_stops_at_high_and_only_says_why(level: Severity) -> None:
    g = Grade(level, [])
    g.bump("why")
    assert (g.severity, g.reasons) == (level, ["why"])


def test_names_lists_at_most_max_named_and_counts_the_rest() -> None:
    assert names(["a", "b"]) == "a, b"
    many = [f"n{i}" for i in range(MAX_NAMED + 3)]
    assert names(many) == ", ".join(many[:MAX_NAMED]) + " and 3 more"
    assert short(CREATE_KEY) == "iam:CreateAccessKey"


# -- rules 1 and 2: screening (screen.py) ----------------------------------------------------


def screen(
    ctx: PrincipalContext,
    actions: list[str],
    settings: PolicySettings = S,
    ignore: IgnoreSettings | None = None,
) -> Any:
    screener = Screen(settings, ignore or IgnoreSettings(), SensitiveActions())
    return screener.screen(ctx, [obs(a) for a in actions])


def actions_of(tuples: list[TupleObservation]) -> list[str]:
    return [o.first_event.action for o in tuples]


def test_a_principal_past_learning_alerts() -> None:
    out = screen(context(), [LIST_BUCKETS])
    assert actions_of(out.alerted) == [LIST_BUCKETS]
    assert not out.suppressed and not out.unlearned


def test_an_aws_service_never_alerts_not_even_sensitive_actions() -> None:
    out = screen(context(SERVICE), [LIST_BUCKETS, STOP_LOGGING])
    assert not out.alerted
    assert actions_of(out.suppressed["aws_service"]) == [LIST_BUCKETS, STOP_LOGGING]


def test_an_ignored_account_never_alerts() -> None:
    out = screen(context(), [STOP_LOGGING], ignore=IgnoreSettings(accounts=(ACCOUNT,)))
    assert not out.alerted and list(out.suppressed) == ["ignored_account"]
    other = screen(context(), [STOP_LOGGING], ignore=IgnoreSettings(accounts=(OTHER,)))
    assert actions_of(other.alerted) == [STOP_LOGGING]


def test_an_ignored_role_covers_every_person_behind_it() -> None:
    by_role = screen(context(PERSON), [LIST_BUCKETS], ignore=IgnoreSettings(principals=(ROLE_ARN,)))
    assert list(by_role.suppressed) == ["ignored_principal"]
    other = IgnoreSettings(principals=(f"{ROLE_ARN}#bob@example.com",))
    assert actions_of(screen(context(PERSON), [LIST_BUCKETS], ignore=other).alerted) == [
        LIST_BUCKETS
    ]


def test_ignored_event_sources_and_actions_hold_back_only_their_tuples() -> None:
    ignore = IgnoreSettings(event_sources=("s3.*",), actions=("iam:Create*",))
    out = screen(context(), [LIST_BUCKETS, CREATE_KEY, STOP_LOGGING], ignore=ignore)
    assert actions_of(out.suppressed["ignored_event_source"]) == [LIST_BUCKETS]
    assert actions_of(out.suppressed["ignored_action"]) == [CREATE_KEY]
    assert actions_of(out.alerted) == [STOP_LOGGING]


def test_a_new_principal_is_learning_until_learning_days_after_its_first_sighting() -> None:
    young = context(first_seen=T0 - 14 * DAY)
    assert actions_of(screen(young, [LIST_BUCKETS]).suppressed["learning"]) == [LIST_BUCKETS]
    grown = context(first_seen=T0 - 15 * DAY)
    assert actions_of(screen(grown, [LIST_BUCKETS]).alerted) == [LIST_BUCKETS]


def test_a_newly_seen_account_learns_as_a_whole_unless_turned_off() -> None:
    ctx = context(account_first_seen=T0 - DAY)
    assert list(screen(ctx, [LIST_BUCKETS]).suppressed) == ["account_learning"]
    off = replace(S, account_learning=False)
    assert actions_of(screen(ctx, [LIST_BUCKETS], off).alerted) == [LIST_BUCKETS]


def test_a_sensitive_action_alerts_during_learning_and_says_why() -> None:
    out = screen(context(first_seen=T0 - DAY), [LIST_BUCKETS, CREATE_KEY])
    assert actions_of(out.suppressed["learning"]) == [LIST_BUCKETS]
    assert actions_of(out.alerted) == actions_of(out.unlearned["learning"]) == [CREATE_KEY]
    assert learning_note(out) == [
        "the principal is still learning, which holds back ordinary novelty, not sensitive "
        "actions: iam:CreateAccessKey"
    ]


def test_learning_holds_back_sensitive_actions_too_when_told_to() -> None:
    off = replace(S, sensitive_during_learning=False)
    out = screen(context(first_seen=T0 - DAY), [CREATE_KEY], off)
    assert not out.alerted and not out.unlearned and learning_note(out) == []
    assert actions_of(out.suppressed["learning"]) == [CREATE_KEY]


def test_root_has_no_learning_of_its_own_but_account_learning_holds() -> None:
    new_root = context(ROOT, first_seen=T0)
    assert actions_of(screen(new_root, [LIST_BUCKETS]).alerted) == [LIST_BUCKETS]
    in_new_account = context(ROOT, first_seen=T0, account_first_seen=T0)
    assert list(screen(in_new_account, [LIST_BUCKETS]).suppressed) == ["account_learning"]


def test_a_principal_made_by_an_alerting_one_has_no_learning() -> None:
    subject = PrincipalKey(ACCOUNT, "user/alice")
    mark = Mark(subject, MarkKind.LINEAGE, "x", CREATE_USER, "a1", Severity.HIGH, T0, T0 + DAY)
    made = context(first_seen=T0, account_first_seen=T0, lineage=mark)
    assert actions_of(screen(made, [LIST_BUCKETS]).alerted) == [LIST_BUCKETS]


def test_learning_starts_at_the_roles_creation_when_iam_says() -> None:
    role = Principal("AssumedRole", f"arn:aws:iam::{ACCOUNT}:role/app", "app", "s1")
    created = RoleInfo(f"arn:aws:iam::{ACCOUNT}:role/app", created=T0 - DAY)
    assert learning_start(context(role, first_seen=T0 - 90 * DAY, role=created)) == T0 - DAY
    assert learning_start(context(role, first_seen=T0 - 90 * DAY)) == T0 - 90 * DAY
    # A person behind a shared role is as young as the person, however old the role.
    old_role = RoleInfo(ROLE_ARN, created=T0 - 900 * DAY)
    assert learning_start(context(PERSON, first_seen=T0 - DAY, role=old_role)) == T0 - DAY


# -- rules 4 and 8: the count (count.py) -----------------------------------------------------


def test_fewer_new_actions_than_escalate_at_are_informational() -> None:
    g = grade_count(4, S)
    assert (g.severity, g.reasons) == (
        Severity.INFORMATIONAL,
        ["4 new action(s), fewer than 5: informational"],
    )


def test_escalate_at_new_actions_at_once_are_medium() -> None:
    g = grade_count(5, S)
    assert (g.severity, g.reasons) == (
        Severity.MEDIUM,
        ["5 new actions at once (threshold 5): medium"],
    )


def test_a_burst_starts_at_medium_and_gives_its_span() -> None:
    window = [entry(T0), entry(T0 + 600)]
    g = grade_burst_count(window, S)
    assert g.severity is Severity.MEDIUM
    assert g.reasons == [
        f"2 new actions within 60 min across log objects ({iso(T0)} to {iso(T0 + 600)}; "
        "threshold 5): medium"
    ]


# -- rule 6: sensitive actions (sensitive_actions.py) ----------------------------------------


def test_a_sensitive_action_raises_to_its_severity() -> None:
    g = informational()
    grade_sensitive(g, [LIST_BUCKETS, CREATE_KEY], SensitiveActions(), False, S)
    assert g.severity is Severity.HIGH
    assert g.reasons == ["sensitive action iam:CreateAccessKey (persistence): raised to high"]


def test_ordinary_actions_are_not_sensitive() -> None:
    g = informational()
    grade_sensitive(g, [LIST_BUCKETS, CREATE_BUCKET], SensitiveActions(), False, S)
    assert (g.severity, g.reasons) == (Severity.INFORMATIONAL, [])


def test_the_list_takes_additions_and_removals_globs_included() -> None:
    table = SensitiveActions(add=("s3:List*",), remove=("iam:CreateAccessKey",))
    added = table.get(LIST_BUCKETS)
    assert added is not None and (added.tactic, added.severity) == ("user-defined", "high")
    assert table.get(CREATE_KEY) is None
    assert table.get(CREATE_USER) is not None
    assert SensitiveActions().get(LIST_BUCKETS) is None


def test_sensitive_actions_past_the_line_limit_share_one_reason() -> None:
    extra = [f"x.amazonaws.com:A{i:02}" for i in range(MAX_SENSITIVE_LINES + 3)]
    g = informational()
    grade_sensitive(g, extra, SensitiveActions(add=extra), False, S)
    assert len(g.reasons) == MAX_SENSITIVE_LINES + 1
    assert g.reasons[-1] == "3 more sensitive actions: x:A20, x:A21, x:A22 (already high)"


ATTACH_ROLE_POLICY = "iam.amazonaws.com:AttachRolePolicy"  # privilege-escalation, high
PUT_ROLE_POLICY = "iam.amazonaws.com:PutRolePolicy"  # privilege-escalation, high
STOP_LOGGING = "cloudtrail.amazonaws.com:StopLogging"  # defense-evasion, critical
UPDATE_TRAIL = "cloudtrail.amazonaws.com:UpdateTrail"  # defense-evasion, high


def test_siblings_share_the_service_and_tactic_of_a_high_action() -> None:
    table = SensitiveActions()
    assert PUT_ROLE_POLICY in table.siblings(ATTACH_ROLE_POLICY)
    assert ATTACH_ROLE_POLICY not in table.siblings(ATTACH_ROLE_POLICY)
    # another tactic of the same service, or the same tactic of another service: not siblings
    assert CREATE_KEY not in table.siblings(ATTACH_ROLE_POLICY)  # iam persistence
    assert "eks.amazonaws.com:CreateAccessEntry" not in table.siblings(ATTACH_ROLE_POLICY)
    # a critical action has none (nothing makes switching off the trail routine), nor an
    # ordinary or a user-defined one
    assert table.siblings(STOP_LOGGING) == []
    assert table.siblings(LIST_BUCKETS) == []
    assert SensitiveActions(add=("s3:List*",)).siblings(LIST_BUCKETS) == []


def test_a_power_the_principal_already_exercises_is_medium_not_high() -> None:
    g = informational()
    grade_sensitive(g, [ATTACH_ROLE_POLICY], SensitiveActions(), False, S, {PUT_ROLE_POLICY})
    assert g.severity is Severity.MEDIUM
    assert g.reasons == [
        "sensitive action iam:AttachRolePolicy (privilege-escalation), a power the principal "
        "already exercises (iam:PutRolePolicy) from its usual networks and clients: medium, not "
        "high: raised to medium"
    ]


@pytest.mark.parametrize(
    ("actions", "exercised", "fresh", "root", "settings"),
    [
        # from a network or client new to the principal: the full severity
        ([ATTACH_ROLE_POLICY], {PUT_ROLE_POLICY}, {ATTACH_ROLE_POLICY}, False, S),
        # what it exercises is another kind of power
        ([ATTACH_ROLE_POLICY], {CREATE_KEY}, set(), False, S),
        # the rule off
        ([ATTACH_ROLE_POLICY], {PUT_ROLE_POLICY}, set(), False, replace(S, exercised_power=False)),
        # a critical action is never lowered, even next to a habit of the same tactic
        ([STOP_LOGGING], {UPDATE_TRAIL}, set(), False, S),
        # root's credential grants are critical whatever it did before
        ([CREATE_KEY], {"iam.amazonaws.com:CreateLoginProfile"}, set(), True, S),
    ],
)
def test_a_new_power_keeps_its_severity(
    actions: list[str],
    exercised: set[str],
    fresh: set[str],
    root: bool,
    settings: PolicySettings,
) -> None:
    g = informational()
    table = SensitiveActions()
    grade_sensitive(g, actions, table, root, settings, exercised, fresh)
    hit = table.get(actions[0])
    assert hit is not None
    want = "critical" if root or hit.severity == "critical" else hit.severity
    assert g.severity is Severity(want)
    assert not any("already exercises" in r for r in g.reasons)


# -- rule 7: root in tiers (root.py) ---------------------------------------------------------


def root_grade(*events: Event) -> Grade:
    g = informational()
    grade_root(g, [e.action for e in events], events, S)
    return g


def signin(**kw: Any) -> Event:
    return event(SIGNIN, principal=ROOT, read_only=False, **kw)


def test_root_sign_in_with_mfa_is_medium() -> None:
    g = root_grade(signin(mfa_used=True))
    assert g.reasons == ["root user console sign-in with MFA: raised to medium"]


@pytest.mark.parametrize(
    ("kw", "how"),
    [
        ({"mfa_used": False}, "without MFA"),
        ({"mfa_used": True, "login_failed": True}, "after a failed attempt"),
        ({"mfa_used": False, "login_failed": True}, "without MFA and after a failed attempt"),
    ],
)
def test_root_sign_in_without_mfa_or_after_a_failure_is_high(kw: dict[str, Any], how: str) -> None:
    g = root_grade(signin(**kw))
    assert (g.severity, g.reasons) == (
        Severity.HIGH,
        [f"root user console sign-in {how}: raised to high"],
    )


def test_root_sign_in_from_a_network_new_to_it_is_high() -> None:
    login = signin(mfa_used=True, source_ip="185.220.1.1")
    g = informational()
    grade_root(g, [SIGNIN], [login], S, {"185.220.0.0/16"})
    assert (g.severity, g.reasons) == (
        Severity.HIGH,
        ["root user console sign-in from network 185.220.0.0/16 new to it: raised to high"],
    )
    usual = informational()
    grade_root(usual, [SIGNIN], [login], S, {"52.99.0.0/16"})
    assert usual.severity is Severity.MEDIUM


def test_root_reads_are_low() -> None:
    g = root_grade(event(LIST_BUCKETS, principal=ROOT))
    assert (g.severity, g.reasons) == (
        Severity.LOW,
        ["new read-only action(s) by the account's root user: s3:ListBuckets: raised to low"],
    )


def test_root_changes_are_high_and_readonly_overrides_the_name() -> None:
    g = root_grade(event(LIST_BUCKETS, principal=ROOT), event(CREATE_BUCKET, principal=ROOT))
    assert g.severity is Severity.HIGH
    assert g.reasons == [
        "new change(s) by the account's root user: s3:CreateBucket: raised to high"
    ]
    # CloudTrail's readOnly wins over what the name suggests, both ways.
    get_that_changes = event("x.amazonaws.com:GetThing", principal=ROOT, read_only=False)
    assert root_grade(get_that_changes).severity is Severity.HIGH
    assert is_read_only("GetThing", False) is False
    assert is_read_only("CreateThing", True) is True
    assert is_read_only("DescribeThing", None) and not is_read_only("PutThing", None)


def test_a_burst_of_root_actions_knows_only_their_names() -> None:
    g = informational()
    grade_root(g, [SIGNIN, CREATE_BUCKET], (), S)
    assert g.severity is Severity.HIGH
    assert g.reasons[0] == "root user console sign-in: raised to medium"


def test_roots_sensitive_actions_on_logs_credentials_or_the_organization_are_critical() -> None:
    for action in (STOP_LOGGING, CREATE_KEY, "organizations.amazonaws.com:LeaveOrganization"):
        g = informational()
        grade_sensitive(g, [action], SensitiveActions(), True, S)
        assert g.severity is Severity.CRITICAL, action
        assert "by the account's root user" in g.reasons[0]


def test_roots_other_sensitive_actions_keep_their_severity() -> None:
    g = informational()
    grade_sensitive(g, [CREATE_USER], SensitiveActions(), True, S)  # created: not a credential
    assert g.severity is Severity.HIGH
    assert g.reasons == ["sensitive action iam:CreateUser (persistence): raised to high"]
    assert not root_critical(CREATE_USER, "persistence")
    assert root_critical(CREATE_KEY, "persistence")


# -- rule 5: the role's trust policy (trust.py) ----------------------------------------------


def trust_grade(role: RoleInfo | None) -> Grade:
    g = informational()
    grade_trust(g, context(role=role), S)
    return g


def test_no_enrichment_no_trust_rule() -> None:
    assert trust_grade(None).reasons == []
    assert trust_grade(RoleInfo("arn", trusted_accounts=(ACCOUNT,))).reasons == []


def test_a_role_a_service_may_assume_is_high() -> None:
    g = trust_grade(RoleInfo("arn", trusted_services=("lambda.amazonaws.com",)))
    assert g.severity is Severity.HIGH
    assert g.reasons[0].startswith("role is assumable by AWS service(s) lambda.amazonaws.com")


def test_a_role_an_unknown_identity_provider_may_assume_is_high() -> None:
    idp = f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"
    g = trust_grade(RoleInfo("arn", trusted_federated=(idp,)))
    assert (g.severity, g.reasons) == (
        Severity.HIGH,
        [f"role is assumable by identity provider(s) not in the allow-list: {idp}: raised to high"],
    )


def test_a_role_federated_through_identity_center_is_not_raised() -> None:
    idp = f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_abc_DO_NOT_DELETE"
    g = trust_grade(RoleInfo("arn", trusted_federated=(idp,)))
    assert (g.severity, g.reasons) == (
        Severity.INFORMATIONAL,
        [f"role is federated through allowed IdP(s) {idp} (already informational)"],
    )


def test_a_role_another_account_may_assume_is_medium() -> None:
    g = trust_grade(RoleInfo("arn", trusted_accounts=(ACCOUNT, OTHER)))
    assert (g.severity, g.reasons) == (
        Severity.MEDIUM,
        [f"role is assumable from other account(s) {OTHER}: raised to medium"],
    )


# -- rule 13: lineage (policy/lineage.py) ----------------------------------------------------


def test_a_principal_made_by_an_alerting_one_inherits_its_severity() -> None:
    mark = Mark(
        PrincipalKey(ACCOUNT, "user/backdoor"),
        MarkKind.LINEAGE,
        f"arn:aws:iam::{ACCOUNT}:user/admin",
        CREATE_KEY,
        "a1",
        Severity.HIGH,
        T0,
        T0 + DAY,
    )
    g = informational()
    grade_lineage(g, context(lineage=mark))
    assert (g.severity, g.reasons) == (
        Severity.HIGH,
        [
            f"user/backdoor was given an access key by arn:aws:iam::{ACCOUNT}:user/admin "
            f"(iam:CreateAccessKey, {iso(T0)}) whose alert a1 was high: no learning, and at "
            "least that severity: raised to high"
        ],
    )


def test_no_lineage_no_raise() -> None:
    g = informational()
    grade_lineage(g, context())
    assert (g.severity, g.reasons) == (Severity.INFORMATIONAL, [])


# -- rule 9: denied attempts (denied.py) -----------------------------------------------------


@pytest.mark.parametrize(
    "code", ["AccessDenied", "Client.UnauthorizedOperation", "Forbidden", "NotAuthorized"]
)
def test_denied_codes(code: str) -> None:
    assert is_denied(code)


@pytest.mark.parametrize("code", ["", "NoSuchEntity", "ThrottlingException"])
def test_other_failures_are_not_denials(code: str) -> None:
    assert not is_denied(code)


def test_denied_new_actions_are_noted_not_raised() -> None:
    g = informational()
    note_denied(g, [LIST_BUCKETS, CREATE_KEY])
    note_denied_in_window(g, [LIST_BUCKETS])
    assert g.severity is Severity.INFORMATIONAL
    assert g.reasons == [
        "2 new action(s) were denied: s3:ListBuckets, iam:CreateAccessKey",
        "1 of the window's new actions were denied: s3:ListBuckets",
    ]
    quiet = informational()
    note_denied(quiet, [])
    note_denied_in_window(quiet, [])
    assert quiet.reasons == []


def test_denied_escalate_at_denied_actions_in_the_window_are_medium() -> None:
    g = informational()
    grade_denied_window(g, {"a", "b", "c"}, S)
    assert (g.severity, g.reasons) == (
        Severity.MEDIUM,
        ["3 new denied actions within 60 min (threshold 3): raised to medium"],
    )
    fewer = informational()
    grade_denied_window(fewer, {"a", "b"}, S)
    assert (fewer.severity, fewer.reasons) == (Severity.INFORMATIONAL, [])


# -- rule 10: a new region (regions.py) ------------------------------------------------------


def test_a_new_action_in_a_new_region_is_one_step_louder() -> None:
    g = informational()
    ctx = context(new_regions=frozenset({"eu-west-1"}))
    grade_new_regions(g, ctx, [obs(LIST_BUCKETS, region="eu-west-1")], S)
    assert (g.severity, g.reasons) == (
        Severity.LOW,
        [
            "first activity of this principal in region(s) eu-west-1: raised from informational to low"
        ],
    )


def test_a_new_region_without_a_new_action_in_it_or_turned_off_is_not() -> None:
    ctx = context(new_regions=frozenset({"eu-west-1"}))
    g = informational()
    grade_new_regions(g, ctx, [obs(LIST_BUCKETS, region="us-east-1")], S)
    assert g.reasons == []
    off = informational()
    grade_new_regions(
        off, ctx, [obs(LIST_BUCKETS, region="eu-west-1")], replace(S, new_region_bump=False)
    )
    assert off.reasons == []


# -- rule 15: a new network or client (context_novelty.py) -----------------------------------


def from_tor() -> TupleObservation:
    return obs(LIST_BUCKETS, source_ip="185.220.1.1", user_agent="aws-cli/2.15.0 Python/3.11")


def test_a_new_action_from_a_new_network_is_one_step_louder() -> None:
    g = informational()
    ctx = context(PERSON, new_contexts=frozenset({"@net:185.220.0.0/16"}), networks_met=1)
    grade_context(g, ctx, [from_tor()], S)
    assert (g.severity, g.reasons) == (
        Severity.LOW,
        [
            "new action(s) from network(s) 185.220.0.0/16 new to the principal (1 new networks "
            "lately): raised from informational to low"
        ],
    )


def test_a_new_network_and_client_together_are_one_step() -> None:
    g = informational()
    ctx = context(PERSON, new_contexts=frozenset({"@net:185.220.0.0/16", "@agent:aws-cli"}))
    grade_context(g, ctx, [from_tor()], S)
    assert g.severity is Severity.LOW and len(g.reasons) == 1
    assert "client(s) aws-cli" in g.reasons[0]


def test_long_term_credentials_from_a_new_network_are_one_more_step() -> None:
    """An IAM user's key (or root) does not move with compute: from a network new to it, a new
    action is raised once for the network and once more for the kind of credentials."""
    g = informational()
    ctx = context(ALICE, new_contexts=frozenset({"@net:185.220.0.0/16"}), networks_met=1)
    grade_context(g, ctx, [from_tor()], S)
    assert g.severity is Severity.MEDIUM
    assert g.reasons[-1] == (
        "the IAM user's credentials were used from network(s) 185.220.0.0/16 new to it: "
        "long-term credentials do not move with compute, so this is how stolen ones look: "
        "raised from low to medium"
    )
    signin = informational()
    login = obs(SIGNIN, source_ip="185.220.1.1")
    grade_context(
        signin, context(ROOT, new_contexts=frozenset({"@net:185.220.0.0/16"})), [login], S
    )
    assert signin.severity is Severity.MEDIUM
    assert signin.reasons[-1].startswith("the root user signed in from network(s) 185.220.0.0/16")


def test_long_term_credentials_are_not_raised_twice_by_a_routine_or_a_client_alone() -> None:
    # New networks are ordinary for this user: neither step.
    routine = informational()
    ctx = context(ALICE, new_contexts=frozenset({"@net:185.220.0.0/16"}), networks_met=3)
    grade_context(routine, ctx, [from_tor()], S)
    assert routine.severity is Severity.INFORMATIONAL
    # Only the client is new: the one step of rule 15, nothing for the credentials.
    client = informational()
    grade_context(
        client, context(ALICE, new_contexts=frozenset({"@agent:aws-cli"})), [from_tor()], S
    )
    assert client.severity is Severity.LOW and len(client.reasons) == 1
    # A role's session from a new network: the one step only.
    role = informational()
    grade_context(
        role, context(PERSON, new_contexts=frozenset({"@net:185.220.0.0/16"})), [from_tor()], S
    )
    assert role.severity is Severity.LOW
    # The rule off.
    off = informational()
    grade_context(
        off,
        context(ALICE, new_contexts=frozenset({"@net:185.220.0.0/16"})),
        [from_tor()],
        replace(S, long_term_new_network=False),
    )
    assert off.severity is Severity.LOW


def test_new_networks_are_ordinary_for_a_principal_that_often_meets_them() -> None:
    g = informational()
    ctx = context(new_contexts=frozenset({"@net:185.220.0.0/16"}), networks_met=3)
    grade_context(g, ctx, [from_tor()], S)
    assert (g.severity, g.reasons) == (
        Severity.INFORMATIONAL,
        [
            "new action(s) from network(s) 185.220.0.0/16 new to the principal, ordinary for it "
            "(3 new networks lately, threshold 3): not raised"
        ],
    )


def test_a_known_network_or_the_rule_off_raises_nothing() -> None:
    known = informational()
    grade_context(known, context(new_contexts=frozenset({"@net:52.99.0.0/16"})), [from_tor()], S)
    assert known.reasons == []
    off = informational()
    ctx = context(new_contexts=frozenset({"@net:185.220.0.0/16"}))
    grade_context(off, ctx, [from_tor()], replace(S, context_novelty=False))
    assert off.reasons == []


# -- rule 14: slow novelty (slow_novelty.py) -------------------------------------------------


def quiet_days(n: int, *, start: int = T0, per_day: int = 1, **kw: Any) -> list[WindowEntry]:
    return [entry(start + d * DAY + i * 60, **kw) for d in range(n) for i in range(per_day)]


def test_quiet_new_actions_adding_up_over_days_give_a_low_follow_up() -> None:
    after = quiet_days(4)
    found = grade_slow(after[:-1], after, S)
    assert found is not None
    g, span = found
    assert g.severity is Severity.LOW and span == after
    assert g.reasons[0].startswith("4 new actions on 4 days within 7 days")
    assert g.reasons[1].startswith("0 new action(s) in the 21 days before them")


def test_slow_novelty_needs_enough_actions_on_enough_days() -> None:
    three = quiet_days(3)
    assert grade_slow(three[:-1], three, S) is None
    one_day = quiet_days(1, per_day=4)
    assert grade_slow(one_day[:-1], one_day, S) is None


def test_slow_novelty_alerts_once_when_the_threshold_is_reached() -> None:
    after = quiet_days(5)
    assert grade_slow(after[:-1], after, S) is None  # the fourth already did


def test_loud_alerts_do_not_count_toward_slow_novelty() -> None:
    after = [*quiet_days(3), entry(T0 + 3 * DAY, severity="medium")]
    assert grade_slow(after[:-1], after, S) is None


def test_a_principal_whose_novelty_is_routine_gets_no_slow_alert() -> None:
    history = quiet_days(4, start=T0 - 20 * DAY)
    after = [*history, *quiet_days(4)]
    assert grade_slow(after[:-1], after, S) is None


def test_slow_novelty_from_a_new_network_is_medium() -> None:
    after = [*quiet_days(3), entry(T0 + 3 * DAY, ctx="network 185.220.0.0/16")]
    found = grade_slow(after[:-1], after, S)
    assert found is not None and found[0].severity is Severity.MEDIUM
    assert "network 185.220.0.0/16" in found[0].reasons[-1]


# -- the combination (alert_policy.py) -------------------------------------------------------


def test_grade_raises_from_the_count_then_bumps_for_a_new_region_last() -> None:
    policy = AlertPolicy()
    ctx = context(new_regions=frozenset({"eu-west-1"}))
    g = policy.grade(ctx, [obs(CREATE_KEY, region="eu-west-1")])
    assert g.severity is Severity.HIGH  # high from rule 6; rule 10 stops at high
    assert g.reasons == [
        "1 new action(s), fewer than 5: informational",
        "sensitive action iam:CreateAccessKey (persistence): raised to high",
        "first activity of this principal in region(s) eu-west-1",
    ]


def test_min_severity_and_learning_until_come_from_the_settings() -> None:
    policy = AlertPolicy(PolicySettings(min_severity="medium", learning_days=2))
    assert policy.min_severity is Severity.MEDIUM
    assert policy.learning_until(T0) == T0 + 2 * DAY
    assert policy.sensitive(CREATE_KEY) is not None and policy.sensitive(LIST_BUCKETS) is None
