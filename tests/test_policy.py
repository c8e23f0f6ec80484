"""The alert policy (issue 3), rule by rule, driven through `Detector` + `MemoryBaseline` with
literal CloudTrail records: each rule has a positive and a negative case, and every severity
decision must be explained by the alert's `reasons`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main as cli_main
from cloudtrail_anomaly.domain.alerts import Alert
from cloudtrail_anomaly.domain.detector import DetectionSettings, Detector, ObjectResult
from cloudtrail_anomaly.domain.model import PrincipalKey, RoleInfo, TupleKey, iso
from cloudtrail_anomaly.domain.policy import AlertPolicy, IgnoreSettings, PolicySettings
from cloudtrail_anomaly.ports import Enricher
from cloudtrail_anomaly.stores.memory import MemoryBaseline, StaticEnrichment

from tests.builders import (
    ACCOUNT,
    DAY,
    OTHER_ACCOUNT,
    SSO_ROLE,
    T0,
    assumed_role,
    aws_service,
    record,
    root,
    service_linked_role,
    sso,
    user,
)
from tests.helpers import gz

MIN = 60
LIVE = T0 + 30 * DAY  # well after the history's first sighting: learning is over
DESCRIBE = [
    "ec2.amazonaws.com:DescribeVpcs",
    "ec2.amazonaws.com:DescribeSubnets",
    "ec2.amazonaws.com:DescribeVolumes",
    "ec2.amazonaws.com:DescribeSnapshots",
    "ec2.amazonaws.com:DescribeImages",
    "ec2.amazonaws.com:DescribeKeyPairs",
    "ec2.amazonaws.com:DescribeAddresses",
]
KNOWN = "ec2.amazonaws.com:DescribeInstances"  # every principal's history holds this action


def denied(action: str, t: int, identity: dict[str, Any] | None = None) -> dict[str, Any]:
    return record(
        action, t, identity, errorCode="AccessDenied", errorMessage="User is not authorized"
    )


class Run:
    """One deployment: a baseline, a policy, a detector; objects go through `obj`."""

    def __init__(
        self,
        baseline: MemoryBaseline | None = None,
        *,
        ignore: IgnoreSettings | None = None,
        enricher: Enricher | None = None,
        detection: DetectionSettings | None = None,
        **policy: Any,
    ) -> None:
        self.baseline = baseline or MemoryBaseline()
        self.policy = AlertPolicy(PolicySettings(**policy), ignore)
        self.detection = detection
        self.detector = Detector(self.baseline, self.policy, detection, enricher=enricher)
        self.results: list[ObjectResult] = []
        self._n = 0

    def history(self, *identities: dict[str, Any], account: str = ACCOUNT) -> Run:
        """What a `baseline` backfill leaves: each principal did KNOWN in us-east-1 at T0."""
        learner = Detector(self.baseline, self.policy, self.detection, alerting=False)
        for ident in identities or (user(),):
            learner.process([record(KNOWN, T0, ident, account=account)], "history")
        return self

    def obj(self, records: Iterable[dict[str, Any]], source: str = "") -> ObjectResult:
        self._n += 1
        result = self.detector.process(list(records), source or f"object-{self._n}")
        self.results.append(result)
        return result

    @property
    def alerts(self) -> list[Alert]:
        return [a for r in self.results for a in r.alerts]

    @property
    def suppressed(self) -> list[Alert]:
        return [a for r in self.results for a in r.suppressed]


def only(alerts: list[Alert]) -> Alert:
    assert len(alerts) == 1, [a.to_dict() for a in alerts]
    return alerts[0]


def actions(alert: Alert) -> list[str]:
    return sorted(e.action for e in alert.new_actions)


def reasons(alert: Alert) -> str:
    return " | ".join(alert.reasons)


# -- 1. ignore lists ----------------------------------------------------------------------------

SCANNER = user("scanner-bot")
HEALTH = "health.amazonaws.com:DescribeEvents"


@pytest.mark.parametrize(
    ("ignore", "ignored_record", "reason"),
    [
        (
            IgnoreSettings(principals=("arn:aws:iam::*:user/scanner-*",)),
            record("iam.amazonaws.com:ListUsers", LIVE, SCANNER),
            "ignored_principal",
        ),
        (
            IgnoreSettings(actions=("iam:List*",)),
            record("iam.amazonaws.com:ListUsers", LIVE),
            "ignored_action",
        ),
        (
            IgnoreSettings(actions=("iam.amazonaws.com:ListUsers",)),
            record("iam.amazonaws.com:ListUsers", LIVE),
            "ignored_action",
        ),
        (
            IgnoreSettings(event_sources=("health.*",)),
            record(HEALTH, LIVE),
            "ignored_event_source",
        ),
        (
            IgnoreSettings(accounts=(OTHER_ACCOUNT,)),
            record(
                "iam.amazonaws.com:ListUsers",
                LIVE,
                user("alice", OTHER_ACCOUNT),
                account=OTHER_ACCOUNT,
            ),
            "ignored_account",
        ),
    ],
)
def test_ignored_tuples_are_recorded_not_alerted_and_unignoring_does_not_flood(
    ignore: IgnoreSettings, ignored_record: dict[str, Any], reason: str
) -> None:
    account = ignored_record["recipientAccountId"]
    identity = ignored_record["userIdentity"]
    run = Run(ignore=ignore).history(identity, account=account)

    run.obj([ignored_record])

    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == reason
    arn = identity["arn"]
    action = f"{ignored_record['eventSource']}:{ignored_record['eventName']}"
    assert TupleKey(account, arn, action) in run.baseline.tuples
    # Removing the ignore entry: the recorded tuple is known, so it does not alert...
    unignored = Run(run.baseline)
    unignored.obj([{**ignored_record, "eventTime": "2024-07-15T00:00:00Z", "eventID": "again"}])
    assert unignored.alerts == []
    # ...while a genuinely new action of the same principal does.
    unignored.obj([record("s3.amazonaws.com:ListBuckets", LIVE + DAY, identity, account=account)])
    assert actions(only(unignored.alerts)) == ["s3.amazonaws.com:ListBuckets"]


def test_ignore_lists_leave_everything_else_alerting() -> None:
    ignore = IgnoreSettings(
        principals=("arn:aws:iam::*:user/scanner-*",),
        actions=("iam:List*",),
        event_sources=("health.amazonaws.com",),
        accounts=(OTHER_ACCOUNT,),
    )
    run = Run(ignore=ignore).history(user("alice"), user("scanner"))

    # Near misses of every entry: another user, another IAM verb, another source, this account.
    run.obj(
        [
            record("iam.amazonaws.com:GetUser", LIVE, user("scanner")),
            record("iam.amazonaws.com:GetUser", LIVE),
            record("healthlake.amazonaws.com:ListFHIRDatastores", LIVE),
        ]
    )

    alerted = sorted((a.principal.name, *actions(a)) for a in run.alerts)
    assert alerted == [
        ("alice", "healthlake.amazonaws.com:ListFHIRDatastores", "iam.amazonaws.com:GetUser"),
        ("scanner", "iam.amazonaws.com:GetUser"),
    ]
    assert run.suppressed == []


def test_ignore_only_some_tuples_of_an_object_alerts_the_rest() -> None:
    run = Run(ignore=IgnoreSettings(actions=("iam:List*",))).history()

    run.obj(
        [record("iam.amazonaws.com:ListRoles", LIVE), record("iam.amazonaws.com:GetRole", LIVE)]
    )

    assert actions(only(run.alerts)) == ["iam.amazonaws.com:GetRole"]
    assert actions(only(run.suppressed)) == ["iam.amazonaws.com:ListRoles"]


def test_ignored_principal_exact_role_arn_covers_every_person_of_a_per_session_role() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}"
    run = Run(ignore=IgnoreSettings(principals=(role_arn,))).history(sso("alice"), sso("bob"))

    run.obj([record("iam.amazonaws.com:GetUser", LIVE, sso("alice"))])
    run.obj([record("iam.amazonaws.com:GetUser", LIVE, sso("bob"))])

    assert run.alerts == []
    assert {a.suppressed_reason for a in run.suppressed} == {"ignored_principal"}
    # An ignore entry for one person (the key the alert shows) spares only that person.
    one = Run(ignore=IgnoreSettings(principals=(role_arn + "#alice",))).history(
        sso("alice"), sso("bob")
    )
    one.obj([record("iam.amazonaws.com:GetUser", LIVE, sso("alice"))])
    one.obj([record("iam.amazonaws.com:GetUser", LIVE, sso("bob"))])
    assert only(one.alerts).principal.session == "bob"


# -- 2. learning ------------------------------------------------------------------------------


def test_new_principal_learns_for_learning_days_from_its_first_sighting() -> None:
    run = Run().history(user("alice"))  # the account is known since T0
    newcomer = user("newcomer")

    run.obj([record(KNOWN, LIVE, newcomer)])
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE + 14 * DAY, newcomer)])
    assert run.alerts == []
    assert {a.suppressed_reason for a in run.suppressed} == {"learning"}

    run.obj([record("s3.amazonaws.com:GetBucketAcl", LIVE + 15 * DAY + 1, newcomer)])
    assert actions(only(run.alerts)) == ["s3.amazonaws.com:GetBucketAcl"]
    # What the principal learned is known: it never alerts later.
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE + 20 * DAY, newcomer)])
    assert len(run.alerts) == 1


def test_learning_days_zero_alerts_at_once() -> None:
    run = Run(learning_days=0)

    run.obj([record(KNOWN, LIVE)])

    assert actions(only(run.alerts)) == [KNOWN]
    assert run.suppressed == []


def test_learning_after_backfill_counts_from_the_historys_first_sighting() -> None:
    run = Run()
    # A backfill of history from T0 to T0+20d: nothing alerts, every tuple is recorded.
    learner = Detector(run.baseline, run.policy, alerting=False)
    learner.process([record(KNOWN, T0)], "history-1")
    learner.process([record("s3.amazonaws.com:ListBuckets", T0 + 20 * DAY)], "history-2")
    assert run.baseline.principals[PrincipalKey(ACCOUNT, user()["arn"])] == T0

    # Live: 21 days after the first sighting, though only one day after the last history.
    run.obj([record("s3.amazonaws.com:GetBucketAcl", T0 + 21 * DAY)])
    assert actions(only(run.alerts)) == ["s3.amazonaws.com:GetBucketAcl"]


def test_backfill_where_a_principal_appears_late_keeps_it_learning() -> None:
    run = Run().history(user("alice"))  # the account is known since T0
    Detector(run.baseline, run.policy, alerting=False).process(
        [record(KNOWN, LIVE - 3 * DAY, user("bob"))], "history"
    )

    run.obj([record("s3.amazonaws.com:GetBucketAcl", LIVE, user("bob"))])

    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == "learning"


def _role_enricher(created: int | None, **trust: tuple[str, ...]) -> StaticEnrichment:
    arn = f"arn:aws:iam::{ACCOUNT}:role/deploy"
    return StaticEnrichment(roles={arn: RoleInfo(arn, created, **trust)})


def test_young_role_createdate_restarts_learning_for_a_role_seen_long_ago() -> None:
    # The role was deleted and re-created under the same name 2 days ago: young again.
    run = Run(enricher=_role_enricher(created=LIVE - 2 * DAY)).history(assumed_role())

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])

    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == "learning"


def test_old_role_createdate_ends_learning_for_a_role_first_seen_recently() -> None:
    # A dormant role, created a year ago, acts for the first time in a known account: it is
    # not a young role, so its new actions alert (the seeds: "role younger than learning_days").
    enricher = _role_enricher(created=LIVE - 365 * DAY)
    run = Run(enricher=enricher).history(user("alice"))

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])

    alert = only(run.alerts)
    assert alert.role_created == LIVE - 365 * DAY
    # Without IAM's CreateDate the role learns from its first sighting.
    plain = Run().history(user("alice"))
    plain.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])
    assert plain.alerts == []
    assert only(plain.suppressed).suppressed_reason == "learning"


def test_newly_seen_account_learns_as_a_whole_even_for_old_roles() -> None:
    enricher = _role_enricher(created=LIVE - 365 * DAY)
    run = Run(enricher=enricher)  # no history at all: the account is new

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])
    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == "account_learning"

    run.obj([record("s3.amazonaws.com:GetBucketAcl", LIVE + 16 * DAY, assumed_role())])
    assert actions(only(run.alerts)) == ["s3.amazonaws.com:GetBucketAcl"]

    # account_learning = false: the old role alerts at once.
    off = Run(enricher=enricher, account_learning=False)
    off.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])
    assert actions(only(off.alerts)) == ["s3.amazonaws.com:ListBuckets"]


def test_a_new_person_behind_an_old_sso_role_still_learns() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}"
    enricher = StaticEnrichment(roles={role_arn: RoleInfo(role_arn, created=LIVE - 365 * DAY)})
    run = Run(enricher=enricher).history(sso("alice"))

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, sso("newhire"))])
    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == "learning"

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, sso("alice"))])
    assert only(run.alerts).principal.session == "alice"


# -- 3. AWS service principals and service-linked roles ---------------------------------------


@pytest.mark.parametrize("identity", [aws_service(), service_linked_role()], ids=["svc", "slr"])
def test_aws_service_principals_are_recorded_not_alerted(identity: dict[str, Any]) -> None:
    run = Run(learning_days=0)

    run.obj([record(a, LIVE, identity) for a in DESCRIBE])

    assert run.alerts == []
    assert only(run.suppressed).suppressed_reason == "aws_service"
    assert len(run.baseline.tuples) == len(DESCRIBE) + 1  # + the @region pseudo-tuple


def test_an_ordinary_role_named_like_a_service_alerts() -> None:
    run = Run(learning_days=0)

    run.obj([record(KNOWN, LIVE, assumed_role("elasticloadbalancing-service", "lb"))])

    assert actions(only(run.alerts)) == [KNOWN]


# -- 4. count ---------------------------------------------------------------------------------


def test_fewer_than_five_new_actions_are_informational() -> None:
    run = Run().history()

    run.obj([record(a, LIVE) for a in DESCRIBE[:4]])

    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert "4 new action(s), fewer than 5: informational" in alert.reasons


def test_five_new_actions_at_once_are_medium() -> None:
    run = Run().history()

    run.obj([record(a, LIVE) for a in DESCRIBE[:5]])

    alert = only(run.alerts)
    assert alert.severity == "medium"
    assert "5 new actions at once (threshold 5): medium" in alert.reasons
    assert alert.detector == "new_action"


def test_count_threshold_is_configurable() -> None:
    run = Run(escalate_at=3).history()

    run.obj([record(a, LIVE) for a in DESCRIBE[:3]])

    assert only(run.alerts).severity == "medium"


# -- 5. trust policy (IAM enrichment) ---------------------------------------------------------


def _trust_alert(enricher: StaticEnrichment | None, **policy: Any) -> Alert:
    run = Run(enricher=enricher, **policy).history(assumed_role())
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])
    return only(run.alerts)


def test_role_assumable_by_an_aws_service_is_high() -> None:
    alert = _trust_alert(_role_enricher(None, trusted_services=("lambda.amazonaws.com",)))

    assert alert.severity == "high"
    assert "role is assumable by AWS service(s) lambda.amazonaws.com" in reasons(alert)
    assert "raised to high" in reasons(alert)


def test_role_federated_through_an_unlisted_idp_is_high() -> None:
    idp = f"arn:aws:iam::{ACCOUNT}:saml-provider/Shadow"
    alert = _trust_alert(
        _role_enricher(None, trusted_federated=(idp,)),
        allowed_identity_providers=("arn:aws:iam::*:saml-provider/Okta",),
    )

    assert alert.severity == "high"
    assert f"identity provider(s) not in the allow-list: {idp}: raised to high" in reasons(alert)


def test_role_federated_through_an_allowed_idp_is_not_raised() -> None:
    idp = f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"
    alert = _trust_alert(
        _role_enricher(None, trusted_federated=(idp,)),
        allowed_identity_providers=("arn:aws:iam::*:saml-provider/Okta",),
    )

    assert alert.severity == "informational"
    assert f"role is federated through allowed IdP(s) {idp} (already informational)" in (
        alert.reasons
    )


def test_sso_roles_federated_through_identity_center_are_allowed_by_default() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}"
    idp = f"arn:aws:iam::{ACCOUNT}:saml-provider/AWSSSO_1a2b3c4d5e6f7a8b_DO_NOT_DELETE"
    role = RoleInfo(role_arn, LIVE - 365 * DAY, trusted_federated=(idp,))
    run = Run(enricher=StaticEnrichment(roles={role_arn: role})).history(sso("alice"))

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, sso("alice"))])

    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert f"role is federated through allowed IdP(s) {idp} (already informational)" in (
        alert.reasons
    )


def test_role_assumable_from_another_account_is_medium_but_its_own_account_is_not() -> None:
    alert = _trust_alert(_role_enricher(None, trusted_accounts=(OTHER_ACCOUNT, ACCOUNT)))
    assert alert.severity == "medium"
    assert f"role is assumable from other account(s) {OTHER_ACCOUNT}: raised to medium" in (
        alert.reasons
    )

    own = _trust_alert(_role_enricher(None, trusted_accounts=(ACCOUNT,)))
    assert own.severity == "informational"
    assert "assumable from other account" not in reasons(own)


def test_without_enrichment_the_trust_policy_plays_no_part() -> None:
    alert = _trust_alert(None)

    assert alert.severity == "informational"
    assert "assumable" not in reasons(alert)
    assert alert.role_created is None


def test_trust_severities_are_configurable() -> None:
    alert = _trust_alert(
        _role_enricher(None, trusted_accounts=(OTHER_ACCOUNT,)), cross_account_role_severity="high"
    )

    assert alert.severity == "high"


# -- 6. sensitive actions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "severity", "tactic"),
    [
        ("iam.amazonaws.com:CreateAccessKey", "high", "persistence"),
        ("iam.amazonaws.com:PutRolePolicy", "high", "privilege-escalation"),
        ("ec2.amazonaws.com:ModifySnapshotAttribute", "high", "exfiltration"),
        ("secretsmanager.amazonaws.com:GetSecretValue", "high", "credential-access"),
        ("lambda.amazonaws.com:UpdateFunctionCode20150331v2", "high", "persistence"),
        ("cloudtrail.amazonaws.com:StopLogging", "critical", "defense-evasion"),
        ("guardduty.amazonaws.com:DeleteDetector", "critical", "defense-evasion"),
        ("organizations.amazonaws.com:LeaveOrganization", "critical", "defense-evasion"),
    ],
)
def test_one_new_sensitive_action_is_at_least_high(action: str, severity: str, tactic: str) -> None:
    run = Run().history()

    run.obj([record(action, LIVE)])

    alert = only(run.alerts)
    assert alert.severity == severity
    short = alert.new_actions[0].action.replace(".amazonaws.com:", ":")
    assert f"sensitive action {short} ({tactic}): raised to {severity}" in alert.reasons


def test_sensitive_action_among_many_raises_the_count_rule() -> None:
    run = Run().history()

    run.obj([record(a, LIVE) for a in [*DESCRIBE[:5], "iam.amazonaws.com:CreateLoginProfile"]])

    alert = only(run.alerts)
    assert alert.severity == "high"
    assert alert.reasons[0] == "6 new actions at once (threshold 5): medium"
    assert "sensitive action iam:CreateLoginProfile (persistence): raised to high" in alert.reasons


def test_everyday_actions_are_not_sensitive() -> None:
    run = Run().history()

    run.obj(
        [
            record("sts.amazonaws.com:AssumeRole", LIVE),
            record("ec2.amazonaws.com:RunInstances", LIVE),
            record("kms.amazonaws.com:Decrypt", LIVE),
        ]
    )

    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert "sensitive" not in reasons(alert)


@pytest.mark.parametrize(
    "added",
    [("dynamodb:DeleteTable",), ("dynamodb:Delete*",), ("dynamodb.amazonaws.com:DeleteTable",)],
)
def test_user_added_sensitive_actions_short_full_or_glob(added: tuple[str, ...]) -> None:
    run = Run(sensitive_actions_add=added).history()

    run.obj([record("dynamodb.amazonaws.com:DeleteTable", LIVE)])
    run.obj([record("dynamodb.amazonaws.com:DescribeTable", LIVE)])

    first, second = run.alerts
    assert first.severity == "high"
    assert "sensitive action dynamodb:DeleteTable (user-defined): raised to high" in first.reasons
    assert second.severity == "informational"


@pytest.mark.parametrize("removed", [("iam:CreateAccessKey",), ("iam:Create*",)])
def test_user_removed_sensitive_actions_short_or_glob(removed: tuple[str, ...]) -> None:
    run = Run(sensitive_actions_remove=removed).history()

    run.obj([record("iam.amazonaws.com:CreateAccessKey", LIVE)])
    run.obj([record("iam.amazonaws.com:AttachUserPolicy", LIVE)])

    trimmed, kept = run.alerts
    assert trimmed.severity == "informational"
    assert "sensitive" not in reasons(trimmed)
    assert kept.severity == "high"


# -- 7. root ----------------------------------------------------------------------------------


def test_new_read_only_action_by_root_is_low_and_a_change_is_high() -> None:
    # Rule 7 in tiers (tests/test_root.py has the rest): what root does sets the level.
    run = Run().history(root())

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, root())])
    run.obj([record("s3.amazonaws.com:CreateBucket", LIVE + MIN, root(), readOnly=False)])

    read, change = run.alerts
    assert read.severity == "low"
    assert "new read-only action(s) by the account's root user: s3:ListBuckets: raised to low" in (
        read.reasons
    )
    assert change.severity == "high"
    assert "new change(s) by the account's root user: s3:CreateBucket: raised to high" in (
        change.reasons
    )


def test_root_does_not_learn_but_a_new_account_does() -> None:
    run = Run().history(user("alice"))  # the account is known; its root user never acted

    run.obj([record("organizations.amazonaws.com:DescribeOrganization", LIVE, root())])
    alert = only(run.alerts)
    assert alert.severity == "low"
    assert "by the account's root user" in reasons(alert)

    new_account = Run()
    new_account.obj([record("s3.amazonaws.com:ListBuckets", LIVE, root())])
    assert new_account.alerts == []
    assert only(new_account.suppressed).suppressed_reason == "account_learning"
    # A new IAM user in a known account does learn.
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, user("newcomer"))])
    assert only(run.suppressed).suppressed_reason == "learning"


def test_same_action_by_an_iam_user_is_not_raised() -> None:
    run = Run().history()

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE)])

    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert "root" not in reasons(alert)


# -- 8. burst window --------------------------------------------------------------------------


def _bursts(run: Run) -> list[Alert]:
    return [a for a in run.alerts if a.detector == "new_action_burst"]


def test_new_actions_across_objects_and_regions_within_the_window_burst_once() -> None:
    run = Run().history()
    objects = [
        [record(DESCRIBE[0], LIVE), record(DESCRIBE[1], LIVE + MIN)],
        [record(DESCRIBE[2], LIVE + 20 * MIN, region="eu-west-1")],
        [record(DESCRIBE[3], LIVE + 40 * MIN, region="ap-southeast-2")],
        [record(DESCRIBE[4], LIVE + 59 * MIN)],  # the 5th within 60 min
        [record(DESCRIBE[5], LIVE + 70 * MIN)],  # still >= 5 in the window: no second burst
    ]
    for records in objects:
        run.obj(records)

    burst = only(_bursts(run))
    assert actions(burst) == sorted(DESCRIBE[:5])
    assert {e.region for e in burst.new_actions} == {"us-east-1", "eu-west-1", "ap-southeast-2"}
    assert burst.severity == "medium"
    assert burst.reasons[0].startswith("5 new actions within 60 min across log objects")
    assert "threshold 5): medium" in burst.reasons[0]
    assert burst.source_objects == ["object-4"]
    # The regular per-object alerts are still there, each at its own severity.
    assert [len(a.new_actions) for a in run.alerts if a.detector == "new_action"] == [
        2,
        1,
        1,
        1,
        1,
    ]


def test_replaying_the_same_objects_emits_no_second_burst() -> None:
    run = Run().history()
    objects = [[record(a, LIVE + i * 5 * MIN)] for i, a in enumerate(DESCRIBE[:5])]
    for records in objects:
        run.obj(records)
    assert len(_bursts(run)) == 1
    alerts_before = len(run.alerts)

    for records in objects:
        run.obj(records)

    assert len(run.alerts) == alerts_before


def test_new_actions_spread_beyond_the_window_do_not_burst() -> None:
    run = Run().history()
    run.obj([record(a, LIVE) for a in DESCRIBE[:3]])
    run.obj([record(a, LIVE + 61 * MIN) for a in DESCRIBE[3:5]])  # event time, not arrival

    assert _bursts(run) == []
    assert {a.severity for a in run.alerts} == {"informational"}


def test_the_window_follows_event_time_and_is_configurable() -> None:
    run = Run(burst_window_minutes=180).history()
    run.obj([record(a, LIVE) for a in DESCRIBE[:3]])
    run.obj([record(a, LIVE + 150 * MIN) for a in DESCRIBE[3:5]])

    burst = only(_bursts(run))
    assert "within 180 min" in burst.reasons[0]


def test_one_object_with_five_new_actions_is_medium_itself_and_no_burst_follows() -> None:
    run = Run().history()
    run.obj([record(DESCRIBE[0], LIVE - MIN)])
    run.obj([record(a, LIVE) for a in DESCRIBE[1:6]])

    assert _bursts(run) == []
    assert run.alerts[-1].severity == "medium"


def test_burst_with_a_sensitive_action_is_high_and_says_why() -> None:
    run = Run().history()
    for i, a in enumerate([*DESCRIBE[:4], "iam.amazonaws.com:CreateAccessKey"]):
        run.obj([record(a, LIVE + i * MIN)])

    burst = only(_bursts(run))
    assert burst.severity == "high"
    assert "sensitive action iam:CreateAccessKey (persistence): raised to high" in burst.reasons


def test_burst_by_a_service_trusted_role_is_high_and_says_why() -> None:
    enricher = _role_enricher(None, trusted_services=("ec2.amazonaws.com",))
    run = Run(enricher=enricher).history(assumed_role())
    for i, a in enumerate(DESCRIBE[:5]):
        run.obj([record(a, LIVE + i * MIN, assumed_role())])

    burst = only(_bursts(run))
    assert burst.severity == "high"
    assert any(
        r.startswith("role is assumable by AWS service(s) ec2.amazonaws.com")
        and r.endswith("raised to high")
        for r in burst.reasons
    )
    # The same burst by a role nobody else may assume stays at the burst's medium.
    plain = Run().history(assumed_role())
    for i, a in enumerate(DESCRIBE[:5]):
        plain.obj([record(a, LIVE + i * MIN, assumed_role())])
    assert only(_bursts(plain)).severity == "medium"
    assert "assumable" not in reasons(only(_bursts(plain)))


def test_burst_counts_the_windows_denied_attempts() -> None:
    run = Run().history()
    for i, a in enumerate(DESCRIBE[:5]):
        make = denied if i < 3 else record
        run.obj([make(a, LIVE + i * MIN)])

    burst = only(_bursts(run))
    assert burst.severity == "medium"
    assert (
        "3 of the window's new actions were denied: " + ", ".join(_short_names(DESCRIBE[:3]))
        in burst.reasons
    )
    assert "3 new denied actions within 60 min (threshold 3) (already medium)" in burst.reasons

    allowed = Run().history()
    for i, a in enumerate(DESCRIBE[:5]):
        allowed.obj([record(a, LIVE + i * MIN)])
    assert "denied" not in reasons(only(_bursts(allowed)))


def _short_names(full: list[str]) -> list[str]:
    return [a.replace(".amazonaws.com:", ":") for a in full]


def test_bursts_are_per_principal() -> None:
    run = Run().history(user("alice"), user("bob"))
    for i, a in enumerate(DESCRIBE[:5]):
        who = user("alice") if i % 2 else user("bob")
        run.obj([record(a, LIVE + i * MIN, who)])

    assert _bursts(run) == []


# -- 9. denied attempts -----------------------------------------------------------------------


def test_a_new_denied_action_still_alerts_and_says_it_was_denied() -> None:
    run = Run().history()

    run.obj([denied("iam.amazonaws.com:ListRoles", LIVE)])

    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert "1 new action(s) were denied: iam:ListRoles" in alert.reasons
    assert alert.new_actions[0].error_code == "AccessDenied"


def test_three_new_denied_actions_within_the_window_are_at_least_medium() -> None:
    run = Run().history()
    run.obj([denied("iam.amazonaws.com:ListRoles", LIVE)])
    run.obj(
        [
            denied("s3.amazonaws.com:ListBuckets", LIVE + 10 * MIN),
            record(
                "ec2.amazonaws.com:DescribeVpcs",
                LIVE + 10 * MIN,
                errorCode="Client.UnauthorizedOperation",
            ),
        ]
    )

    alert = run.alerts[-1]
    assert alert.severity == "medium"
    assert "2 new action(s) were denied" in reasons(alert)
    assert "3 new denied actions within 60 min (threshold 3): raised to medium" in alert.reasons


def test_two_denied_or_denials_outside_the_window_are_not_raised() -> None:
    run = Run().history()
    run.obj([denied("iam.amazonaws.com:ListRoles", LIVE)])
    run.obj([denied("s3.amazonaws.com:ListBuckets", LIVE + 10 * MIN)])
    run.obj([denied("ec2.amazonaws.com:DescribeVpcs", LIVE + 2 * 60 * MIN)])
    # Errors that are not denials do not count.
    run.obj(
        [
            record(a, LIVE + 2 * 60 * MIN + i, errorCode="ThrottlingException")
            for i, a in enumerate(DESCRIBE[:2])
        ]
    )

    assert {a.severity for a in run.alerts} == {"informational"}
    assert "denied actions within" not in " ".join(reasons(a) for a in run.alerts)


# -- 10. new region ---------------------------------------------------------------------------


def test_new_action_in_a_new_region_is_raised_one_step() -> None:
    run = Run().history()

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, region="ap-northeast-3")])

    alert = only(run.alerts)
    assert alert.severity == "low"
    assert (
        "first activity of this principal in region(s) ap-northeast-3: "
        "raised from informational to low"
    ) in alert.reasons


def test_new_region_is_a_modifier_not_an_alert() -> None:
    run = Run().history()

    run.obj([record(KNOWN, LIVE, region="ap-northeast-3")])  # known action, new region

    assert run.alerts == []
    assert TupleKey(ACCOUNT, user()["arn"], "@region:ap-northeast-3") in run.baseline.tuples


def test_new_region_needs_history_and_can_be_switched_off() -> None:
    fresh = Run(learning_days=0)  # a principal without history has no "usual" region
    fresh.obj([record("s3.amazonaws.com:ListBuckets", LIVE, region="ap-northeast-3")])
    assert only(fresh.alerts).severity == "informational"
    assert "region" not in reasons(only(fresh.alerts))

    off = Run(new_region_bump=False).history()
    off.obj([record("s3.amazonaws.com:ListBuckets", LIVE, region="ap-northeast-3")])
    assert only(off.alerts).severity == "informational"


def test_new_region_bump_stops_at_high() -> None:
    run = Run().history()
    run.obj([record("iam.amazonaws.com:CreateAccessKey", LIVE, region="ap-northeast-3")])
    run.obj([record("cloudtrail.amazonaws.com:StopLogging", LIVE, region="sa-east-1")])

    high, critical = run.alerts
    assert high.severity == "high"
    assert "first activity of this principal in region(s) ap-northeast-3" in high.reasons
    assert critical.severity == "critical"


# -- 11. per-session baselines behind shared roles --------------------------------------------


def test_each_person_behind_an_sso_role_has_their_own_baseline() -> None:
    run = Run().history(sso("alice@example.com"), sso("bob@example.com"))
    run.obj([record("iam.amazonaws.com:GetUser", LIVE, sso("alice@example.com"))])
    run.obj([record("iam.amazonaws.com:GetUser", LIVE + MIN, sso("bob@example.com"))])
    run.obj([record("iam.amazonaws.com:GetUser", LIVE + 2 * MIN, sso("alice@example.com"))])

    first, second = run.alerts
    assert (first.principal.session, second.principal.session) == (
        "alice@example.com",
        "bob@example.com",
    )
    assert second.principal.key.endswith(f"{SSO_ROLE}#bob@example.com")


def test_other_roles_keep_one_baseline_for_all_sessions() -> None:
    run = Run().history(assumed_role("deploy", "ci-1"))
    run.obj([record("iam.amazonaws.com:GetUser", LIVE, assumed_role("deploy", "ci-1"))])
    run.obj([record("iam.amazonaws.com:GetUser", LIVE + MIN, assumed_role("deploy", "ci-2"))])

    alert = only(run.alerts)
    assert alert.principal.key == f"arn:aws:iam::{ACCOUNT}:role/deploy"


def test_per_session_roles_are_configurable() -> None:
    detection = DetectionSettings(per_session_roles=("deploy",))
    run = Run(detection=detection).history(
        assumed_role("deploy", "ci-1"), assumed_role("deploy", "ci-2")
    )
    run.obj([record("iam.amazonaws.com:GetUser", LIVE, assumed_role("deploy", "ci-1"))])
    run.obj([record("iam.amazonaws.com:GetUser", LIVE + MIN, assumed_role("deploy", "ci-2"))])

    assert [a.principal.session for a in run.alerts] == ["ci-1", "ci-2"]


# -- 12. min_severity -------------------------------------------------------------------------


def test_alerts_below_min_severity_are_kept_as_suppressed_with_the_reason() -> None:
    run = Run(min_severity="medium").history()
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE)])
    run.obj([record(a, LIVE + DAY) for a in DESCRIBE[:5]])

    delivered = only(run.alerts)
    assert delivered.severity == "medium"
    held = only(run.suppressed)
    assert held.severity == "informational"
    assert held.suppressed_reason == "below_min_severity"
    assert held.to_dict()["suppressed"] is True
    assert held.reasons == ["1 new action(s), fewer than 5: informational"]


def test_default_min_severity_delivers_everything() -> None:
    run = Run().history()
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE)])

    assert only(run.alerts).severity == "informational"
    assert run.suppressed == []


def test_min_severity_applies_to_bursts_too() -> None:
    run = Run(min_severity="high").history()
    for i, a in enumerate(DESCRIBE[:5]):
        run.obj([record(a, LIVE + i * MIN)])

    assert run.alerts == []
    assert [a.detector for a in run.suppressed].count("new_action_burst") == 1


# -- every alert explains itself --------------------------------------------------------------


def test_every_alert_has_a_reason_naming_its_severity() -> None:
    run = Run(enricher=_role_enricher(None, trusted_services=("ec2.amazonaws.com",))).history(
        user(), root(), assumed_role()
    )
    run.obj([record(a, LIVE) for a in DESCRIBE[:5]])
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, root())])
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, assumed_role())])
    run.obj([record("iam.amazonaws.com:PutRolePolicy", LIVE, region="eu-north-1")])

    assert len(run.alerts) == 4
    for alert in run.alerts:
        assert any(str(alert.severity) in r for r in alert.reasons), alert.reasons


def test_severity_never_depends_on_object_order_within_an_object() -> None:
    records = [record(a, LIVE + i) for i, a in enumerate(DESCRIBE[:5])]
    a, b = Run().history(), Run().history()
    a.obj(records)
    b.obj(list(reversed(records)))

    assert replace(only(a.alerts), source_objects=[]) == replace(only(b.alerts), source_objects=[])


# -- explain: what the baseline knows about a principal ----------------------------------------


def test_explain_shows_first_last_seen_learning_and_window(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    log = tmp_path / "trail.json.gz"
    log.write_bytes(
        gz(
            {
                "Records": [
                    record(KNOWN, T0),
                    record(KNOWN, T0 + 3 * DAY),
                    record("s3.amazonaws.com:ListBuckets", T0 + DAY, region="eu-west-1"),
                ]
            }
        )
    )
    state = tmp_path / "s.sqlite"
    assert cli_main(["baseline", str(log), "--state", str(state)]) == 0
    capsysbinary.readouterr()

    assert cli_main(["explain", "--state", str(state), "*:user/alice", "--json"]) == 0
    (doc,) = orjson.loads(capsysbinary.readouterr().out)
    assert doc["principal"] == user()["arn"]
    assert doc["first_seen"] == iso(T0)
    assert doc["learning_until"] == iso(T0 + 15 * DAY)
    assert doc["regions"] == ["eu-west-1", "us-east-1"]
    by_action = {a["action"]: a for a in doc["actions"]}
    assert by_action[KNOWN]["last_seen"] == iso(T0 + 3 * DAY)
    assert set(by_action) == {KNOWN, "s3.amazonaws.com:ListBuckets"}
    assert doc["window"] == {"count": 0, "threshold": 5, "minutes": 60, "actions": []}

    assert cli_main(["explain", "--state", str(state), "*:user/alice", "iam:CreateUser"]) == 0
    assert b"iam.amazonaws.com:CreateUser: never seen" in capsysbinary.readouterr().out
    assert (
        cli_main(["explain", "--state", str(state), "*:user/nobody"]) == 2
    )  # no match: a usage error (exit table)


# -- enrichment on the alert -----------------------------------------------------------------


def test_alerts_and_bursts_carry_the_accounts_name_and_owner_suppressed_ones_do_not() -> None:
    enricher = StaticEnrichment(
        accounts={ACCOUNT: "payments-prod"}, owners={ACCOUNT: "payments-team@example.com"}
    )
    run = Run(enricher=enricher).history()
    for i, a in enumerate(DESCRIBE[:5]):
        run.obj([record(a, LIVE + i * MIN)])
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, user("newcomer"))])  # learning

    assert {a.detector for a in run.alerts} == {"new_action", "new_action_burst"}
    for alert in run.alerts:
        doc = alert.to_dict()
        assert (doc["account_name"], doc["account_owner"]) == (
            "payments-prod",
            "payments-team@example.com",
        )
    learning = only(run.suppressed).to_dict()
    assert (learning["account_name"], learning["account_owner"]) == (None, None)
    # Unknown to Organizations: null, not an empty string.
    plain = Run(enricher=StaticEnrichment()).history()
    plain.obj([record(DESCRIBE[0], LIVE)])
    assert only(plain.alerts).to_dict()["account_owner"] is None
