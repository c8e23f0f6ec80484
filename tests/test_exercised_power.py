"""Issue 16 through the detector: a deploy role that already puts role policies is not paged
at high for attaching one (rule 16, exercised power), while an intruder's chain of new powers
keeps its severity; and a network met minutes ago in another object of the same intrusion is
still new (CloudTrail delivers the objects of a region sweep in any order)."""

from __future__ import annotations

from collections.abc import Collection

from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import Severity, TupleKey, TupleState

from tests.builders import DAY, T0, assumed_role, record, user
from tests.test_policy import LIVE, Run

ATTACH = "iam.amazonaws.com:AttachRolePolicy"
PUT = "iam.amazonaws.com:PutRolePolicy"
CREATE_USER = "iam.amazonaws.com:CreateUser"
CREATE_KEY = "iam.amazonaws.com:CreateAccessKey"
DEPLOY = assumed_role("TerraformDeployRole", "terraform-1a2b")
ELSEWHERE = {"sourceIPAddress": "185.220.101.4", "userAgent": "Boto3/1.34.0 Python/3.12.1"}


def deploy_role_with_a_habit(since: int = T0) -> Run:
    run = Run().history(DEPLOY)
    learner = Detector(run.baseline, run.policy, alerting=False)
    learner.process([record(PUT, since, DEPLOY)], "history")
    return run


def test_a_deploy_role_attaching_a_policy_it_could_already_put_is_medium() -> None:
    run = deploy_role_with_a_habit()
    (alert,) = run.obj([record(ATTACH, LIVE, DEPLOY)]).alerts
    assert alert.severity is Severity.MEDIUM
    assert any("already exercises (iam:PutRolePolicy)" in r for r in alert.reasons)


def test_the_same_from_a_network_and_client_new_to_the_role_stays_high() -> None:
    run = deploy_role_with_a_habit()
    (alert,) = run.obj([record(ATTACH, LIVE, DEPLOY, **ELSEWHERE)]).alerts
    assert alert.severity is Severity.HIGH
    assert not any("already exercises" in r for r in alert.reasons)


def test_a_power_taken_up_lately_is_no_habit() -> None:
    """Put first seen a day before: part of the same change (or intrusion), not a habit."""
    run = deploy_role_with_a_habit(since=LIVE - DAY)
    (alert,) = run.obj([record(ATTACH, LIVE, DEPLOY)]).alerts
    assert alert.severity is Severity.HIGH


def test_an_intruder_s_earlier_step_does_not_make_the_next_one_routine() -> None:
    run = Run().history(user())
    run.obj([record(CREATE_USER, LIVE, user())])
    (alert,) = run.obj([record(CREATE_KEY, LIVE + 300, user())]).alerts
    assert alert.severity is Severity.HIGH


def test_no_lookup_is_spent_on_objects_without_a_new_sensitive_action() -> None:
    run = deploy_role_with_a_habit()
    asked: list[set[str]] = []
    lookup = run.baseline.lookup

    def recording(keys: Collection[TupleKey]) -> dict[TupleKey, TupleState]:
        asked.append({k.action for k in keys})
        return lookup(keys)

    run.baseline.lookup = recording  # type: ignore[method-assign]
    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, DEPLOY)])
    assert not any(PUT in actions for actions in asked)  # only the object's own tuples
    asked.clear()
    run.obj([record(ATTACH, LIVE + 60, DEPLOY)])
    assert [PUT in actions for actions in asked] == [False, True]  # the siblings, once


def test_a_network_met_minutes_ago_in_another_object_is_still_new() -> None:
    """The intruder's discovery sweep lands in one object per region; whichever CloudTrail
    delivers first claims the new network, and the others' actions are still raised for it."""
    run = Run().history(user())
    first = run.obj([record("ec2.amazonaws.com:DescribeVpcs", LIVE, user(), **ELSEWHERE)])
    second = run.obj([record("iam.amazonaws.com:ListUsers", LIVE + 120, user(), **ELSEWHERE)])
    for result in (first, second):
        (alert,) = result.alerts
        text = " | ".join(alert.reasons)
        assert "network(s) 185.220.0.0/16 new to the principal" in text
        assert alert.severity is Severity.MEDIUM  # the network (and client), then a user's key
    # An hour and more later, the network is known: no longer raised.
    (later,) = run.obj(
        [record("s3.amazonaws.com:ListBuckets", LIVE + 2 * 3600, user(), **ELSEWHERE)]
    ).alerts
    assert later.severity is Severity.INFORMATIONAL


def test_networks_met_within_the_hour_still_teach_a_runner_that_new_is_ordinary() -> None:
    """Only the object's own networks are "still new" within the burst window: three NAT pools
    a CI runner met in the last hour still count towards its routine."""
    runner = assumed_role("ci-runner", "i-0abc")
    run = Run().history(runner)
    for i in range(3):  # its known work from a new address each few minutes: no alert
        run.obj(
            [
                record(
                    "ec2.amazonaws.com:DescribeInstances",
                    LIVE + i * 300,
                    runner,
                    sourceIPAddress=f"52.{10 + i}.1.1",
                )
            ]
        )
    assert run.alerts == []
    (alert,) = run.obj(
        [record("s3.amazonaws.com:ListBuckets", LIVE + 1200, runner, sourceIPAddress="52.99.1.1")]
    ).alerts
    assert alert.severity is Severity.INFORMATIONAL
    assert "ordinary for it (3 new networks lately, threshold 3): not raised" in (
        " | ".join(alert.reasons)
    )
