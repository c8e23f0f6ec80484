"""The detection core over an in-memory baseline: new tuples, learning, forgetting, idempotence."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from cloudtrail_anomaly.domain.detector import DetectionSettings, Detector, ObjectResult
from cloudtrail_anomaly.domain.model import Severity, TupleKey
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.stores.memory import MemoryBaseline

from tests.builders import ACCOUNT, DAY, OTHER_ACCOUNT, T0, assumed_role, record, user
from tests.helpers import FIXTURES, fixture_records

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
# Everyday, non-sensitive actions, so severity comes from the count alone.
DESCRIBE = [
    f"ec2.amazonaws.com:{name}"
    for name in (
        "DescribeInstances",
        "DescribeVolumes",
        "DescribeSubnets",
        "DescribeVpcs",
        "DescribeImages",
        "DescribeSnapshots",
    )
]
X, Y, Z = DESCRIBE[:3]


def make(
    baseline: MemoryBaseline | None = None, learning_days: float = 0.0, **detection: Any
) -> Detector:
    return Detector(
        baseline if baseline is not None else MemoryBaseline(),
        AlertPolicy(PolicySettings(learning_days=learning_days)),
        DetectionSettings(**detection),
    )


def actions(result: ObjectResult) -> list[list[str]]:
    return [[e.action for e in a.new_actions] for a in result.alerts]


# -- new tuples and alerts ------------------------------------------------------------------------


def test_one_alert_per_principal_listing_all_its_new_actions() -> None:
    records = [
        record(X, T0 + 10, event_id="a1", sourceIPAddress="203.0.113.1"),
        record(Y, T0 + 20, event_id="a2"),
        record(X, T0 + 30, event_id="a3", sourceIPAddress="203.0.113.3"),
        record(X, T0 + 5, user("bob"), event_id="b1"),
        record(Y, T0 + 6, user("bob"), event_id="b2"),
    ]
    result = make().process(records, "obj-1")
    assert len(result.alerts) == 2
    by_principal = {a.principal.key: a for a in result.alerts}
    alice = by_principal[ALICE]
    assert alice.detector == "new_action"
    assert [(e.action, e.event_id) for e in alice.new_actions] == [(X, "a1"), (Y, "a2")]
    assert alice.new_actions[0].source_ip == "203.0.113.1"  # the first event's details
    assert (alice.first_event_time, alice.last_event_time) == (T0 + 10, T0 + 20)
    assert alice.source_objects == ["obj-1"]
    assert alice.account_id == ACCOUNT
    bob = by_principal[f"arn:aws:iam::{ACCOUNT}:user/bob"]
    assert [e.event_id for e in bob.new_actions] == ["b1", "b2"]
    assert result.stats["new_tuples"] == 4
    assert result.stats["tuples"] == 4
    assert result.stats["events"] == 5
    assert result.newest_event_time == T0 + 30


def test_only_new_actions_are_listed() -> None:
    baseline = MemoryBaseline()
    make(baseline).process([record(X, T0)], "obj-1")
    result = make(baseline).process([record(X, T0 + 60), record(Y, T0 + 61)], "obj-2")
    assert actions(result) == [[Y]]


def test_each_object_alerts_separately() -> None:
    d = make()
    assert actions(d.process([record(X, T0)], "obj-1")) == [[X]]
    assert actions(d.process([record(Y, T0 + 300)], "obj-2")) == [[Y]]


def test_the_same_action_in_another_account_is_new() -> None:
    d = make()
    d.process([record(X, T0)], "obj-1")
    result = d.process([record(X, T0 + 60, account=OTHER_ACCOUNT)], "obj-2")
    assert [a.account_id for a in result.alerts] == [OTHER_ACCOUNT]


def test_out_of_order_records_keep_the_earliest_event() -> None:
    baseline = MemoryBaseline()
    records = [
        record(X, T0 + 300, event_id="late", region="eu-west-1"),
        record(X, T0 + 100, event_id="early", region="us-east-1"),
        record(X, T0 + 200, event_id="middle"),
    ]
    result = make(baseline).process(records, "obj-1")
    (alert,) = result.alerts
    (event,) = alert.new_actions
    assert (event.event_id, event.region, event.event_time) == ("early", "us-east-1", T0 + 100)
    state = baseline.tuples[TupleKey(ACCOUNT, ALICE, X)]
    assert (state.first_seen, state.last_seen) == (T0 + 100, T0 + 300)


def test_region_alone_never_alerts() -> None:
    d = make()
    d.process([record(X, T0, region="us-east-1")], "obj-1")
    result = d.process([record(X, T0 + 3600, region="ap-southeast-2")], "obj-2")
    assert result.alerts == []
    assert result.stats["new_regions"] == 1


def test_skipped_records_are_counted_and_the_rest_processed() -> None:
    no_time = record(Y, T0)
    del no_time["eventTime"]
    records: list[Any] = [record(X, T0), "junk", None, no_time, record(Z, T0, eventSource=None)]
    result = make().process(records, "obj-1")
    assert actions(result) == [[X]]
    assert result.stats["records"] == 5
    assert result.stats["records_skipped.not_an_object"] == 2
    assert result.stats["records_skipped.no_event_time"] == 1
    assert result.stats["records_skipped.no_action"] == 1


def test_an_object_with_nothing_usable_touches_nothing() -> None:
    baseline = MemoryBaseline()
    result = make(baseline).process([{"eventType": "AwsCloudTrailInsight"}], "obj-1")
    assert result.alerts == []
    assert result.newest_event_time is None
    assert baseline.requests == 0


def test_baseline_mode_records_without_alerting() -> None:
    baseline = MemoryBaseline()
    learner = Detector(baseline, AlertPolicy(PolicySettings(learning_days=0)), alerting=False)
    result = learner.process([record(X, T0), record(Y, T0)], "obj-1")
    assert result.alerts == []
    assert result.stats["new_tuples"] == 2
    assert TupleKey(ACCOUNT, ALICE, X) in baseline.tuples
    assert make(baseline).process([record(X, T0 + 60)], "obj-2").alerts == []


def test_shared_sso_roles_are_baselined_per_session() -> None:
    role = "AWSReservedSSO_AdministratorAccess_1b74cd717d47002b"
    d = make()
    first = d.process([record(X, T0, assumed_role(role, "alice@example.com"))], "obj-1")
    again = d.process([record(X, T0 + 60, assumed_role(role, "bob@example.com"))], "obj-2")
    plain = d.process([record(X, T0 + 120, assumed_role("deploy", "run-2"))], "obj-3")
    plain_again = d.process([record(X, T0 + 180, assumed_role("deploy", "run-3"))], "obj-4")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    assert [a.principal.key for a in first.alerts] == [f"{role_arn}#alice@example.com"]
    assert [a.principal.key for a in again.alerts] == [f"{role_arn}#bob@example.com"]
    assert [a.principal.key for a in plain.alerts] == [f"arn:aws:iam::{ACCOUNT}:role/deploy"]
    assert plain_again.alerts == []  # other roles: one baseline whatever the session


# -- learning and services --------------------------------------------------------------------


def test_a_new_principal_learns_then_alerts() -> None:
    baseline = MemoryBaseline()
    # The account is known since T0, so only alice's own learning period applies.
    make(baseline, 15).process([record(X, T0, user("carol"))], "obj-0")
    start = T0 + 20 * DAY
    first = make(baseline, 15).process([record(X, start), record(Y, start)], "obj-1")
    assert first.alerts == []
    assert first.stats["suppressed_tuples.learning"] == 2
    (suppressed,) = first.suppressed
    assert suppressed.suppressed_reason == "learning"
    assert suppressed.principal.key == ALICE
    assert {e.action for e in suppressed.new_actions} == {X, Y}

    still = make(baseline, 15).process([record(Z, start + 14 * DAY)], "obj-2")
    assert still.alerts == []
    assert still.stats["suppressed_tuples.learning"] == 1

    after = make(baseline, 15).process(
        [record(X, start + 16 * DAY), record(DESCRIBE[3], start + 16 * DAY)], "obj-3"
    )
    assert actions(after) == [[DESCRIBE[3]]]  # X was learned, not forgotten


def test_learning_days_zero_alerts_at_once() -> None:
    assert actions(make(learning_days=0).process([record(X, T0)], "obj-1")) == [[X]]


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"},
        {"accountId": ACCOUNT, "invokedBy": "cloudtrail.amazonaws.com"},
        None,
        "slr",
    ],
    ids=["AWSService", "no-type", "no-identity", "service-linked-role"],
)
def test_service_principals_are_recorded_never_alerted(identity: Any) -> None:
    if identity == "slr":
        identity = assumed_role("AWSServiceRoleForAutoScaling", "AutoScaling")
        identity["sessionContext"]["sessionIssuer"]["arn"] = (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/"
            "AWSServiceRoleForAutoScaling"
        )
    baseline = MemoryBaseline()
    # Enough new actions to be "medium" were it a person.
    records = [record(action, T0, userIdentity=identity) for action in DESCRIBE]
    result = make(baseline).process(records, "obj-1")
    assert result.alerts == []
    assert result.stats["suppressed_tuples.aws_service"] == len(DESCRIBE)
    assert [a.suppressed_reason for a in result.suppressed] == ["aws_service"]
    assert result.stats["new_tuples"] == len(DESCRIBE)  # recorded all the same
    assert len([k for k in baseline.tuples if not k.action.startswith("@")]) == len(DESCRIBE)


def test_a_service_beside_a_person_in_one_object() -> None:
    records = [
        record(X, T0, {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}),
        record(X, T0),
    ]
    result = make().process(records, "obj-1")
    assert [a.principal.key for a in result.alerts] == [ALICE]


# -- forgetting and refresh (event time) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "alerts_again"),
    [
        (90 * DAY - 1, False),
        (90 * DAY, True),  # forgotten after forget_days without a sighting
        (91 * DAY, True),
    ],
)
def test_a_tuple_unseen_for_forget_days_is_new_again(gap: int, alerts_again: bool) -> None:
    d = make()
    assert actions(d.process([record(X, T0, event_id="first")], "obj-1")) == [[X]]
    result = d.process([record(X, T0 + gap, event_id="again")], "obj-2")
    assert (actions(result) == [[X]]) is alerts_again
    assert (result.stats["new_tuples"] == 1) is alerts_again


def test_forget_days_setting() -> None:
    d = make(forget_days=2)
    d.process([record(X, T0)], "obj-1")
    assert d.process([record(X, T0 + DAY)], "obj-2").alerts == []  # refreshed: expires T0+3d
    assert d.process([record(X, T0 + 3 * DAY - 1)], "obj-3").alerts == []
    assert actions(d.process([record(X, T0 + 6 * DAY)], "obj-4")) == [[X]]


def test_regular_use_keeps_a_tuple_known() -> None:
    d = make()
    d.process([record(X, T0)], "obj-1")
    assert d.process([record(X, T0 + 60 * DAY)], "obj-2").alerts == []
    assert d.process([record(X, T0 + 120 * DAY)], "obj-3").alerts == []  # 60 days after last


def test_forgetting_ignores_the_wall_clock() -> None:
    # Events from 2014: were the wall clock used, everything would have expired long ago.
    old = 1_394_000_000
    d = make()
    d.process([record(X, old)], "obj-1")
    assert d.process([record(X, old + 30 * DAY)], "obj-2").alerts == []


@pytest.mark.parametrize(
    ("refresh_days", "quiet", "due"),
    [(0.0, 7 * DAY, 8 * DAY), (1.0, 12 * 3600, 25 * 3600)],  # 0: forget_days / 12 = 7.5 days
)
def test_refresh_only_after_refresh_after_days(refresh_days: float, quiet: int, due: int) -> None:
    baseline = MemoryBaseline()
    d = make(baseline, refresh_after_days=refresh_days)
    key = TupleKey(ACCOUNT, ALICE, X)
    d.process([record(X, T0)], "obj-1")
    assert baseline.tuples[key].last_seen == T0

    soon = d.process([record(X, T0 + quiet)], "obj-2")
    assert soon.stats["tuples_refreshed"] == 0
    assert baseline.tuples[key].last_seen == T0  # not written

    later = d.process([record(X, T0 + due)], "obj-3")
    assert later.stats["tuples_refreshed"] >= 1
    state = baseline.tuples[key]
    assert (state.first_seen, state.last_seen) == (T0, T0 + due)
    assert state.expires_at == T0 + due + 90 * DAY


def test_an_unwritten_sighting_forgets_within_refresh_after_days_of_forget_days() -> None:
    d = make()
    d.process([record(Y, T0 - 100 * DAY)], "the principal, long known")
    d.process([record(X, T0)], "obj-1")  # claimed: expires at T0 + 90 days
    d.process([record(X, T0 + 7 * DAY)], "obj-2")  # 7 < 7.5 days: not written
    last = T0 + 7 * DAY
    assert d.process([record(X, last + 82 * DAY)], "obj-3").alerts == []  # 82.5 days is the bound
    d.process([record(Y, T0 + 180 * DAY)], "the principal, still around")
    # Unseen since obj-3 for 91 days: new again, as forget_days says.
    assert d.process([record(X, last + 82 * DAY + 91 * DAY)], "obj-4").alerts


def test_older_object_does_not_move_last_seen_back() -> None:
    baseline = MemoryBaseline()
    d = make(baseline)
    d.process([record(X, T0 + 10 * DAY)], "new")
    d.process([record(X, T0)], "old, delivered late")
    state = baseline.tuples[TupleKey(ACCOUNT, ALICE, X)]
    assert state.last_seen == T0 + 10 * DAY


# -- idempotence and alert ids -----------------------------------------------------------------


def test_replaying_the_same_records_alerts_nothing() -> None:
    baseline = MemoryBaseline()
    names = [
        "stratus-red-team/aws.credential-access.ec2-get-password-data.json.gz",
        "stratus-red-team/aws.persistence.sts-federation-token.json.gz",
        "panther-rule-tests/aws_cloudtrail_account_discovery.json.gz",
    ]
    first = [make(baseline).process(fixture_records(n), n) for n in names]
    assert sum(len(r.alerts) for r in first) >= 4
    tuples_after_first = dict(baseline.tuples)
    again = [make(baseline).process(fixture_records(n), n) for n in names]
    assert [r.alerts for r in again] == [[], [], []]
    assert sum(r.stats["new_tuples"] for r in again) == 0
    assert baseline.tuples == tuples_after_first


def test_replaying_a_forgotten_and_relearned_history_alerts_nothing() -> None:
    baseline = MemoryBaseline()
    objects = [[record(X, T0)], [record(X, T0 + 100 * DAY)]]
    assert [len(make(baseline).process(o, "o").alerts) for o in objects] == [1, 1]
    assert [len(make(baseline).process(o, "o").alerts) for o in objects] == [0, 0]


def test_alert_id_is_stable_across_runs() -> None:
    records = [record(X, T0), record(Y, T0 + 1), record(X, T0, user("bob"))]
    one = make().process(records, "obj-1")
    two = make().process(list(reversed(records)), "elsewhere")
    assert sorted(a.alert_id for a in one.alerts) == sorted(a.alert_id for a in two.alerts)
    assert len({a.alert_id for a in one.alerts}) == 2
    assert all(len(a.alert_id) == 32 and int(a.alert_id, 16) >= 0 for a in one.alerts)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "other-id"},
        {"t": T0 + 1},
        {"action": Y},
        {"identity": user("mallory")},
        {"account": OTHER_ACCOUNT},
    ],
    ids=["event_id", "time", "action", "principal", "account"],
)
def test_alert_id_differs_for_different_content(change: dict[str, Any]) -> None:
    base = {"action": X, "t": T0, "event_id": "e-1"}
    (a,) = make().process([record(**base)], "obj").alerts
    (b,) = make().process([record(**{**base, **change})], "obj").alerts
    assert a.alert_id != b.alert_id


# -- severity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "severity"),
    [
        (1, Severity.INFORMATIONAL),
        (4, Severity.INFORMATIONAL),
        (5, Severity.MEDIUM),
        (6, Severity.MEDIUM),
    ],
)
def test_severity_follows_the_number_of_new_actions(count: int, severity: Severity) -> None:
    records = [record(a, T0 + i) for i, a in enumerate(DESCRIBE[:count])]
    (alert,) = make().process(records, "obj-1").alerts
    assert len(alert.new_actions) == count
    assert alert.severity is severity
    assert alert.reasons
    assert any(str(count) in reason for reason in alert.reasons)  # says why


# -- real files ---------------------------------------------------------------------------------


def _stratus_labels() -> list[dict[str, str]]:
    with (FIXTURES / "stratus-red-team" / "labels.tsv").open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("row", _stratus_labels(), ids=lambda r: r["technique"])
def test_stratus_techniques_alert_once_per_principal_with_every_action(
    row: dict[str, str],
) -> None:
    result = make().process(fixture_records(f"stratus-red-team/{row['file']}"), row["file"])
    labelled_types = sorted(
        p.split(":")[0] for p in row["principals(type:name x count)"].split(",")
    )
    assert sorted(a.principal.type for a in result.alerts) == labelled_types
    alerted = {f"{e.event_source}:{e.event_name}" for a in result.alerts for e in a.new_actions}
    assert alerted == set(row["eventSource:eventName"].split(","))
