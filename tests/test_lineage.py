"""Rule 13 (issue 16), lineage: a user or role made or empowered by an alerting action (or by a
principal that alerted in the last `lineage_hours`) has no learning period and inherits its
maker's severity, with a reason naming the maker and its alert. Persisted in every store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.lineage import GRANTING_ACTIONS, IAM
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.domain.sensitive import default_sensitive_actions
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline

from tests.builders import assumed_role, record, user
from tests.test_policy import KNOWN, LIVE, MIN, Run, only, reasons

ADMIN = user("admin")
BACKDOOR = user("backdoor")


def iam(name: str, t: int, identity: dict[str, Any], **params: str) -> dict[str, Any]:
    return record(f"{IAM}:{name}", t, identity, readOnly=False, requestParameters=params)


def made_by_alerting_admin(t: int = LIVE) -> list[dict[str, Any]]:
    return [
        iam("CreateUser", t, ADMIN, userName="backdoor"),
        iam("CreateAccessKey", t + 5, ADMIN, userName="backdoor"),
    ]


def backdoor_recon(t: int) -> list[dict[str, Any]]:
    return [
        record("sts.amazonaws.com:GetCallerIdentity", t, BACKDOOR),
        record("iam.amazonaws.com:ListUsers", t + 1, BACKDOOR),
        record("secretsmanager.amazonaws.com:ListSecrets", t + 2, BACKDOOR),
    ]


def test_a_user_made_by_an_alerting_action_has_no_learning_and_inherits_its_severity() -> None:
    run = Run().history(ADMIN)
    run.obj(made_by_alerting_admin())
    maker = only(run.alerts)
    assert maker.severity == "high"

    run.obj(backdoor_recon(LIVE + 10 * MIN))

    alert = run.alerts[-1]
    assert alert.principal.name == "backdoor"
    assert alert.severity == "high"
    assert run.suppressed == []
    line = next(r for r in alert.reasons if "user/backdoor was" in r)
    assert f"by arn:aws:iam::{ADMIN['accountId']}:user/admin" in line
    assert maker.alert_id in line


def test_lineage_within_one_object_is_judged_after_the_maker() -> None:
    run = Run().history(ADMIN)
    run.obj([*made_by_alerting_admin(), *backdoor_recon(LIVE + 60)])
    by_name = {a.principal.name: a for a in run.alerts}
    assert by_name["backdoor"].severity == "high"
    assert by_name["admin"].alert_id in reasons(by_name["backdoor"])


def test_a_user_made_by_a_quiet_principal_learns_as_usual() -> None:
    # A deploy role creating a role (not sensitive, informational) passes nothing on.
    run = Run().history(assumed_role("deploy"))
    run.obj([iam("CreateRole", LIVE, assumed_role("deploy"), roleName="app")])
    assert only(run.alerts).severity == "informational"

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE + MIN, assumed_role("app", "i-1"))])

    assert only(run.suppressed).suppressed_reason == "learning"


def test_a_known_grant_by_a_principal_that_alerted_recently_passes_lineage() -> None:
    run = Run().history(ADMIN)
    learner = Detector(run.baseline, run.policy, alerting=False)
    learner.process([iam("CreateUser", LIVE - 20 * 86_400, ADMIN, userName="old")], "history")
    run.obj([record("cloudtrail.amazonaws.com:StopLogging", LIVE, ADMIN)])  # critical
    run.obj([iam("CreateUser", LIVE + 3600, ADMIN, userName="backdoor")])  # known: no alert
    assert len(run.alerts) == 1

    run.obj(backdoor_recon(LIVE + 2 * 3600))

    assert run.alerts[-1].severity == "critical"
    assert run.alerts[0].alert_id in reasons(run.alerts[-1])


def test_after_lineage_hours_a_grant_passes_nothing() -> None:
    run = Run(lineage_hours=1.0).history(ADMIN)
    learner = Detector(run.baseline, run.policy, alerting=False)
    learner.process([iam("CreateUser", LIVE - 20 * 86_400, ADMIN, userName="old")], "history")
    run.obj([record("cloudtrail.amazonaws.com:StopLogging", LIVE, ADMIN)])
    run.obj([iam("CreateUser", LIVE + 2 * 3600, ADMIN, userName="backdoor")])

    run.obj(backdoor_recon(LIVE + 3 * 3600))

    assert run.suppressed[-1].suppressed_reason == "learning"


def test_a_denied_grant_passes_nothing() -> None:
    run = Run().history(ADMIN)
    denied = iam("CreateUser", LIVE, ADMIN, userName="backdoor")
    denied["errorCode"] = "AccessDenied"
    run.obj([denied])
    run.obj(backdoor_recon(LIVE + MIN))
    assert run.suppressed[-1].suppressed_reason == "learning"


def test_lineage_can_be_switched_off() -> None:
    run = Run(lineage=False).history(ADMIN)
    run.obj(made_by_alerting_admin())
    run.obj(backdoor_recon(LIVE + MIN))
    assert run.suppressed[-1].suppressed_reason == "learning"


def test_lineage_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    policy = AlertPolicy(PolicySettings())
    first = SqliteBaseline(path)
    Detector(first, policy, alerting=False).process([record(KNOWN, LIVE - 30 * 86_400, ADMIN)], "h")
    maker = Detector(first, policy).process(made_by_alerting_admin(), "o1").alerts[0]
    first.close()

    second = SqliteBaseline(path)  # another process, later
    alerts = Detector(second, policy).process(backdoor_recon(LIVE + MIN), "o2").alerts
    second.close()
    assert only(alerts).severity == "high"
    assert maker.alert_id in reasons(alerts[0])


@pytest.mark.parametrize("name", sorted(GRANTING_ACTIONS))
def test_granting_actions_are_iam_calls_that_name_a_user_or_role(name: str) -> None:
    assert name[0].isupper()
    assert not name.startswith(("Detach", "List", "Get", "DeleteUser(", "DeleteRole("))


def test_every_sensitive_iam_grant_to_a_user_or_role_is_a_granting_action() -> None:
    granting_words = ("User", "Role", "AccessKey", "LoginProfile", "AssumeRolePolicy")
    sensitive_iam = {
        a.partition(":")[2]
        for a in default_sensitive_actions()
        if a.startswith(IAM + ":")
        and any(w in a for w in granting_words)
        and not a.endswith(("Group", "GroupPolicy", "InstanceProfile"))
    }
    sensitive_iam -= {"AddRoleToInstanceProfile"}
    assert sensitive_iam <= set(GRANTING_ACTIONS), sensitive_iam - set(GRANTING_ACTIONS)


def test_memory_store_keeps_marks_across_detectors() -> None:
    baseline = MemoryBaseline()
    run = Run(baseline).history(ADMIN)
    run.obj(made_by_alerting_admin())
    again = Run(baseline)
    again.obj(backdoor_recon(LIVE + MIN))
    assert only(again.alerts).severity == "high"
