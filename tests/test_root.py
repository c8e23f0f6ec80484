"""Rule 7 in tiers (issue 16): root's reads are low, its console sign-in medium (high without
MFA or after a failed attempt), its changes high, and its sensitive actions on logging,
detection, the organization and credentials critical. Positive and negative example events."""

from __future__ import annotations

from typing import Any

from tests.builders import record, root, user
from tests.test_policy import LIVE, MIN, Run, only, reasons

SIGNIN = "signin.amazonaws.com:ConsoleLogin"


def signin(
    t: int, identity: dict[str, Any], *, mfa: str = "Yes", ok: bool = True
) -> dict[str, Any]:
    return record(
        SIGNIN,
        t,
        identity,
        readOnly=False,
        additionalEventData={"LoginTo": "https://console.aws.amazon.com/", "MFAUsed": mfa},
        responseElements={"ConsoleLogin": "Success" if ok else "Failure"},
        **({} if ok else {"errorMessage": "Failed authentication"}),
    )


def test_root_sign_in_with_mfa_is_medium() -> None:
    run = Run().history(root())
    run.obj([signin(LIVE, root())])
    alert = only(run.alerts)
    assert alert.severity == "medium"
    assert "root user console sign-in with MFA: raised to medium" in alert.reasons


def test_root_sign_in_without_mfa_is_high() -> None:
    run = Run().history(root())
    run.obj([signin(LIVE, root(), mfa="No")])
    alert = only(run.alerts)
    assert alert.severity == "high"
    assert "root user console sign-in without MFA: raised to high" in alert.reasons


def test_root_sign_in_after_a_failed_attempt_is_high() -> None:
    run = Run().history(root())
    run.obj([signin(LIVE, root(), ok=False), signin(LIVE + MIN, root())])
    alert = only(run.alerts)
    assert alert.severity == "high"
    assert "after a failed attempt" in reasons(alert)


def test_root_reads_are_low_not_high() -> None:
    run = Run().history(root())
    run.obj(
        [
            record("account.amazonaws.com:GetContactInformation", LIVE, root()),
            record("iam.amazonaws.com:ListMFADevices", LIVE, root()),
        ]
    )
    alert = only(run.alerts)
    assert alert.severity == "low"


def test_root_read_without_a_readonly_flag_is_judged_by_its_name() -> None:
    run = Run().history(root())
    run.obj([record("billing.amazonaws.com:GetBillingPreferences", LIVE, root(), readOnly=None)])
    assert only(run.alerts).severity == "low"


def test_root_changes_are_high() -> None:
    run = Run().history(root())
    run.obj([record("account.amazonaws.com:PutContactInformation", LIVE, root(), readOnly=False)])
    alert = only(run.alerts)
    assert alert.severity == "high"
    assert "new change(s) by the account's root user" in reasons(alert)


def test_root_switching_off_logs_or_making_credentials_is_critical() -> None:
    for action in (
        "cloudtrail.amazonaws.com:UpdateTrail",
        "iam.amazonaws.com:CreateAccessKey",
        "secretsmanager.amazonaws.com:GetSecretValue",
    ):
        run = Run().history(root())
        run.obj([record(action, LIVE, root(), readOnly=False)])
        alert = only(run.alerts)
        assert alert.severity == "critical", action
        assert "by the account's root user (logging, detection, organization or credentials)" in (
            reasons(alert)
        )


def test_root_other_sensitive_actions_stay_as_listed() -> None:
    run = Run().history(root())
    run.obj([record("s3.amazonaws.com:PutBucketPolicy", LIVE, root(), readOnly=False)])
    assert only(run.alerts).severity == "high"


def test_the_same_events_by_an_iam_user_are_not_raised_as_root() -> None:
    run = Run().history()
    run.obj([signin(LIVE, user(), mfa="No"), record("iam.amazonaws.com:ListMFADevices", LIVE)])
    alert = only(run.alerts)
    assert alert.severity == "informational"
    assert "root" not in reasons(alert)


def test_root_tiers_are_configurable() -> None:
    run = Run(root_read_severity="medium", root_signin_severity="high").history(root())
    run.obj([signin(LIVE, root()), record("iam.amazonaws.com:ListUsers", LIVE, root())])
    assert only(run.alerts).severity == "high"
