"""scripts/evaluate_policy.py: the issue-16 yardstick counts what it says it counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import load_script

DAY = 86400
T0 = 1_790_000_000 - 1_790_000_000 % DAY  # a UTC midnight


@pytest.fixture(scope="module")
def ev() -> ModuleType:
    return load_script("evaluate_policy")


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def alert(
    aid: str,
    principal: str,
    severity: str,
    actions: list[str],
    t: int,
    detector: str = "new_action",
) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "account_id": "111111111111",
        "principal": {"arn": principal},
        "severity": severity,
        "detector": detector,
        "new_actions": [{"action": a} for a in actions],
        "first_event_time": _iso(t),
        "last_event_time": _iso(t),
    }


ATTACK = {
    "kind": "attack",
    "name": "slow",
    "account_id": "111111111111",
    "principal_key": "arn:aws:iam::111111111111:user/etl",
    "actions": ["s:A", "s:B", "s:C"],
    "start": _iso(T0 + 10 * DAY),
}


def test_the_severity_at_the_first_action_is_the_earliest_alert_holding_it(
    ev: ModuleType,
) -> None:
    """A later follow-up that lists the first action again does not count as catching it."""
    user = ATTACK["principal_key"]
    alerts = [
        alert("a1", user, "low", ["s:A"], T0 + 10 * DAY),
        alert("a2", user, "medium", ["s:A", "s:B", "s:C"], T0 + 13 * DAY, "new_action_slow"),
    ]
    got = ev.evaluate([ATTACK], alerts, {}, {}, 15.0).intrusions[0]
    assert got.first_action_severity == "low"
    assert not got.flagged_at_first_action
    assert got.highest_severity == "medium"
    assert got.alerts == 2
    assert got.minutes_to_medium == 3 * 24 * 60

    caught = ev.evaluate([ATTACK], [alert("a3", user, "high", ["s:A"], T0 + 10 * DAY)], {}, {}, 15)
    assert caught.intrusions[0].flagged_at_first_action
    assert caught.intrusions[0].minutes_to_medium == 0


def test_benign_alerts_are_those_at_medium_or_more_that_no_intrusion_claims(
    ev: ModuleType,
) -> None:
    acct = "111111111111"
    role = "arn:aws:iam::111111111111:role/deploy"
    alerts = [
        alert("a1", ATTACK["principal_key"], "high", ["s:A"], T0 + 10 * DAY),  # the intrusion's
        alert("b1", role, "medium", ["iam:CreateRole"], T0 + 20 * DAY),  # benign, counted
        alert("b2", role, "low", ["iam:TagRole"], T0 + 20 * DAY),  # below medium
        # the intruder's principal, but none of its actions and an ordinary detector: benign
        alert("b3", ATTACK["principal_key"], "high", ["x:Y"], T0 + 21 * DAY),
    ]
    # A principal first seen the day before its alert is still learning: its alert is listed
    # apart, and its days are not in the denominator either.
    newcomer = "arn:aws:iam::111111111111:role/new-app"
    alerts.append(alert("c1", newcomer, "high", ["secretsmanager:GetSecretValue"], T0 + 20 * DAY))
    first = {
        (acct, role): T0,
        (acct, ATTACK["principal_key"]): T0,
        (acct, newcomer): T0 + 19 * DAY,
    }
    days = {
        (acct, role): {T0 // DAY + 20, T0 // DAY + 21},
        (acct, ATTACK["principal_key"]): set(),
        (acct, newcomer): {T0 // DAY + 19, T0 // DAY + 20},
    }
    got = ev.evaluate([ATTACK], alerts, first, days, 15.0)
    assert got.benign_at_medium == 2
    assert [line.split()[0] for line in got.benign_at_medium_in_learning] == ["high"]
    assert newcomer in got.benign_at_medium_in_learning[0]
    assert got.active_principal_days == 2
    assert got.benign_at_medium_per_50_principal_days == 50.0


def test_principal_days_start_after_learning_except_for_root(ev: ModuleType) -> None:
    acct = "111111111111"
    user, root = "arn:aws:iam::111111111111:user/new", "arn:aws:iam::111111111111:root"
    d0 = T0 // DAY
    first = {(acct, user): T0, (acct, root): T0}
    days = {(acct, user): {d0, d0 + 1, d0 + 2, d0 + 3}, (acct, root): {d0, d0 + 1}}
    got = ev.evaluate([], [], first, days, 2.0)
    assert got.active_principal_days == 2 + 2  # the user's days 2 and 3; both of root's
    assert got.benign_at_medium_per_50_principal_days == 0.0
    assert ev.evaluate([], [], {}, {}, 2.0).benign_at_medium_per_50_principal_days is None


def test_it_reads_a_generated_trail_and_names_a_missing_input(
    ev: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ev.main([str(tmp_path)]) == 2
    assert "scenarios.json not found" in capsys.readouterr().err

    gen = load_script("generate_sample")
    out = tmp_path / "trail"
    small = ["--accounts", "4", "--history-days", "2", "--live-days", "2", "--scale", "0.1"]
    assert gen.main(["--out", str(out), *small]) == 0
    (out / "alerts.jsonl").write_text("")
    assert ev.main([str(out), "--json", str(tmp_path / "e.json")]) == 0
    report = capsys.readouterr().out
    # Every injected intrusion is listed, none caught (no alerts), and activity was counted.
    doc = json.loads((tmp_path / "e.json").read_text())
    names = {s["name"] for s in json.loads((out / "scenarios.json").read_text())}
    assert {i["name"] for i in doc["intrusions"]} <= names
    assert len(doc["intrusions"]) >= 4
    assert not any(i["flagged_at_first_action"] for i in doc["intrusions"])
    assert doc["active_principal_days"] > 0
    assert "intrusions flagged >= medium at their first action: 0 of" in report
