"""Slow novelty (issue 16, rule 14) and the context it weighs (networks, client families), with
positive and negative example events: quiet new actions that add up over days give one
`new_action_slow` follow-up; deploy roles that gain actions by routine do not."""

from __future__ import annotations

from typing import Any

import pytest
from cloudtrail_anomaly.domain.context import agent_family, network_of
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import Severity

from tests.builders import DAY, T0, assumed_role, record, user
from tests.test_policy import KNOWN, LIVE, Run

READS = [
    "iam.amazonaws.com:ListUsers",
    "s3.amazonaws.com:ListBuckets",
    "secretsmanager.amazonaws.com:ListSecrets",
    "sts.amazonaws.com:GetCallerIdentity",
    "lambda.amazonaws.com:ListFunctions",
    "rds.amazonaws.com:DescribeDBInstances",
]
STOLEN = {"sourceIPAddress": "185.220.101.4", "userAgent": "Boto3/1.34.0 Python/3.12.1 Linux/6.1"}


def one_a_day(run: Run, identity: dict[str, Any], n: int, **extra: Any) -> None:
    for day in range(n):
        run.obj([record(READS[day], LIVE + day * DAY, identity, **extra)])


def slow_alerts(run: Run) -> list[Any]:
    return [a for a in run.alerts if a.detector == "new_action_slow"]


APP = assumed_role("reporting-app", "i-0abc")  # a role's session: its credentials can be lifted


def test_stolen_session_credentials_used_for_slow_recon_are_medium() -> None:
    run = Run().history(APP)
    one_a_day(run, APP, 4, **STOLEN)

    (slow,) = slow_alerts(run)
    assert slow.severity is Severity.MEDIUM
    assert len(slow.new_actions) == 4
    text = " | ".join(slow.reasons)
    assert "4 new actions on 4 days within 7 days" in text
    assert "network 185.220.0.0/16" in text and "client sdk-python" in text
    # each day's own alert stayed below medium (the first one low: a new network, rule 15):
    # the follow-up is what an analyst sees
    assert [a.severity for a in run.alerts if a.detector == "new_action"] == [
        Severity.LOW,
        Severity.INFORMATIONAL,
        Severity.INFORMATIONAL,
        Severity.INFORMATIONAL,
    ]
    assert slow.to_dict()["detector"] == "new_action_slow"


def test_the_same_from_the_principals_usual_network_and_client_is_low() -> None:
    run = Run().history(user())
    one_a_day(run, user(), 4)

    (slow,) = slow_alerts(run)
    assert slow.severity is Severity.LOW
    assert "new to the principal" not in " | ".join(slow.reasons)


def test_it_follows_once_not_for_every_further_action() -> None:
    run = Run().history(user())
    one_a_day(run, user(), 6)
    assert len(slow_alerts(run)) == 1


def test_three_quiet_new_actions_are_not_enough() -> None:
    run = Run().history(user())
    one_a_day(run, user(), 3, **STOLEN)
    assert slow_alerts(run) == []


def test_four_in_one_day_are_not_slow() -> None:
    # spread over objects within hours, below the burst threshold: one day is not "slow"
    run = Run().history(user())
    for i in range(4):
        run.obj([record(READS[i], LIVE + i * 3600, user(), **STOLEN)])
    assert slow_alerts(run) == []


def test_spread_wider_than_the_span_does_not_add_up() -> None:
    run = Run().history(user())
    for i in range(4):
        run.obj([record(READS[i], LIVE + i * 3 * DAY, user())])
    assert slow_alerts(run) == []


def test_an_action_that_alerted_above_informational_does_not_count() -> None:
    run = Run().history(user())
    one_a_day(run, user(), 3)
    run.obj([record("cloudtrail.amazonaws.com:StopLogging", LIVE + 3 * DAY, user())])
    assert slow_alerts(run) == []


def test_a_deploy_role_gaining_actions_with_every_release_does_not_page() -> None:
    deploy = assumed_role("deploy", "GitHubActions")
    ci = {"sourceIPAddress": "192.0.2.10", "userAgent": "APN/1.0 HashiCorp/1.0 Terraform/1.7.0"}
    run = Run()
    learner = Detector(run.baseline, run.policy, alerting=False)
    learner.process([record(KNOWN, T0, deploy, **ci)], "history")  # its CI, as always
    writes = [f"lambda.amazonaws.com:Tag{i}" for i in range(40)]
    n = 0
    for release in range(12):  # two releases a week for six weeks, two new actions each
        t = LIVE + release * 3 * DAY + (release % 2) * DAY
        run.obj([record(writes[n], t, deploy, **ci), record(writes[n + 1], t + 60, deploy, **ci)])
        n += 2
    slow = slow_alerts(run)
    # the first weeks after learning give one low follow-up; once its history holds that many
    # new actions, novelty is its routine: nothing more, and nothing at or above medium
    assert all(a.severity.rank < Severity.MEDIUM.rank for a in run.alerts)
    assert len(slow) == 1
    assert slow[0].severity is Severity.LOW


# -- rule 15: context novelty -----------------------------------------------------------------


def test_a_new_action_from_a_new_network_is_one_step_louder() -> None:
    run = Run().history(APP)
    (alert,) = run.obj([record(READS[0], LIVE, APP, sourceIPAddress="185.220.101.4")]).alerts
    assert alert.severity is Severity.LOW
    assert "network(s) 185.220.0.0/16 new to the principal (0 new networks lately)" in (
        " | ".join(alert.reasons)
    )


def test_an_iam_user_s_key_used_for_slow_recon_is_medium_at_its_first_action() -> None:
    """Long-term credentials from a new network and client: the first quiet read is already
    medium (rule 15 and its long-term step), so the intrusion is caught on day one, not four."""
    run = Run().history(user())
    one_a_day(run, user(), 4, **STOLEN)
    first, *rest = [a for a in run.alerts if a.detector == "new_action"]
    assert first.severity is Severity.MEDIUM
    assert "the IAM user's credentials were used from network(s) 185.220.0.0/16" in (
        " | ".join(first.reasons)
    )
    # the network is known from then on: the next days' reads are quiet again
    assert {a.severity for a in rest} == {Severity.INFORMATIONAL}


def test_a_new_action_from_the_usual_network_and_client_is_not_raised() -> None:
    run = Run().history(user())
    (alert,) = run.obj([record(READS[0], LIVE, user())]).alerts
    assert alert.severity is Severity.INFORMATIONAL
    assert "new to the principal" not in " | ".join(alert.reasons)


def test_a_principal_whose_networks_are_always_new_learns_that_it_is_ordinary() -> None:
    ci = assumed_role("runner", "i-0abc")
    run = Run().history(ci)
    for i in range(3):  # known work from a new NAT address each day: remembered, no alert
        run.obj([record(KNOWN, LIVE + i * DAY, ci, sourceIPAddress=f"52.{10 + i}.1.1")])
    assert run.alerts == []
    (alert,) = run.obj([record(READS[0], LIVE + 4 * DAY, ci, sourceIPAddress="52.99.1.1")]).alerts
    assert alert.severity is Severity.INFORMATIONAL
    assert "ordinary for it (3 new networks lately, threshold 3): not raised" in (
        " | ".join(alert.reasons)
    )


def test_context_novelty_can_be_switched_off() -> None:
    run = Run(context_novelty=False).history(user())
    (alert,) = run.obj([record(READS[0], LIVE, user(), sourceIPAddress="185.220.101.4")]).alerts
    assert alert.severity is Severity.INFORMATIONAL


def test_the_rule_can_be_switched_off() -> None:
    run = Run(slow_novelty=False).history(user())
    one_a_day(run, user(), 4, **STOLEN)
    assert slow_alerts(run) == []


def test_the_threshold_is_configurable() -> None:
    run = Run(slow_novelty_actions=3).history(user())
    one_a_day(run, user(), 3)
    assert len(slow_alerts(run)) == 1


@pytest.mark.parametrize(
    ("ip", "net"),
    [
        ("185.220.101.4", "185.220.0.0/16"),
        ("203.0.113.9", "203.0.0.0/16"),
        ("100.64.1.2", ""),  # carrier-grade NAT
        ("fd00:1234::1", ""),  # unique-local
        ("2a05:d018:1234:5678::1", "2a05:d018:1234::/48"),
        ("10.1.2.3", ""),  # in-VPC / VPC endpoint
        ("lambda.amazonaws.com", ""),  # an AWS service calling
        ("AWS Internal", ""),
    ],
)
def test_network_of(ip: str, net: str) -> None:
    assert network_of(ip) == net


@pytest.mark.parametrize(
    ("ua", "family"),
    [
        ("aws-cli/2.15.0 Python/3.11.6 Linux/6.1", "aws-cli"),
        ("Boto3/1.34.0 md/Botocore#1.34.0 Python/3.12.1", "sdk-python"),
        ("APN/1.0 HashiCorp/1.0 Terraform/1.7.0 (+https://www.terraform.io)", "terraform"),
        ("aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5", "sdk-go"),
        ("console.amazonaws.com", "console"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "browser"),
        ("AWS Internal", ""),
        ("lambda.amazonaws.com", ""),
        ("curl/8.4.0", "curl"),
    ],
)
def test_agent_family(ua: str, family: str) -> None:
    assert agent_family(ua) == family
