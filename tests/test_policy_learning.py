"""Rule 2 (issue 16): learning never hides risk. A learning principal or account still alerts
its sensitive actions at their severity; learning holds back ordinary novelty only, and what it
holds back carries the severity and reasons it would have had."""

from __future__ import annotations

from tests.builders import record, user
from tests.test_policy import LIVE, MIN, Run, only, reasons

STOP, DELETE = "cloudtrail.amazonaws.com:StopLogging", "cloudtrail.amazonaws.com:DeleteTrail"


def test_a_new_user_switching_off_the_trail_alerts_critical_while_learning() -> None:
    run = Run().history()  # the account is old; "mallory" is new: learning

    run.obj([record(STOP, LIVE, user("mallory")), record(DELETE, LIVE + 1, user("mallory"))])

    alert = only(run.alerts)
    assert alert.severity == "critical"
    assert sorted(e.action for e in alert.new_actions) == [STOP, DELETE][::-1]
    assert "the principal is still learning, which holds back ordinary novelty, not sensitive" in (
        reasons(alert)
    )
    assert run.suppressed == []


def test_learning_still_holds_back_ordinary_novelty_with_the_severity_it_would_have_had() -> None:
    run = Run().history()

    run.obj([record("s3.amazonaws.com:ListBuckets", LIVE, user("newcomer"))])

    assert run.alerts == []
    held = only(run.suppressed)
    assert held.suppressed_reason == "learning"
    assert held.severity == "informational"
    assert held.reasons == ["1 new action(s), fewer than 5: informational"]


def test_a_new_account_alerts_its_sensitive_actions_too() -> None:
    run = Run()  # nothing known: the account learns as a whole

    run.obj([record(STOP, LIVE, user("ops")), record("s3.amazonaws.com:ListBuckets", LIVE)])

    alert = only(run.alerts)
    assert [e.action for e in alert.new_actions] == [STOP]
    assert "the account is still learning" in reasons(alert)
    assert only(run.suppressed).suppressed_reason == "account_learning"


def test_suppressed_alerts_carry_the_severity_and_reasons_they_would_have_had() -> None:
    run = Run(sensitive_during_learning=False).history()

    run.obj([record(STOP, LIVE, user("mallory"))])

    assert run.alerts == []
    held = only(run.suppressed)
    assert held.suppressed_reason == "learning"
    assert held.severity == "critical"
    assert "sensitive action cloudtrail:StopLogging (defense-evasion): raised to critical" in (
        held.reasons
    )
    assert held.to_dict()["severity"] == "critical"


def test_after_learning_nothing_changes() -> None:
    run = Run().history()

    run.obj([record(STOP, LIVE + 5 * MIN)])

    alert = only(run.alerts)
    assert alert.severity == "critical"
    assert "learning" not in reasons(alert)
