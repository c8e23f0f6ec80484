"""scripts/derive_sensitive_actions.py: every candidate of the attack labels is either in the
sensitive list or pruned with a reason, and the script says so when one is neither."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import FIXTURES, load_script

TRAILDISCOVER = FIXTURES / "traildiscover" / "labels.jsonl"
STRATUS = FIXTURES / "stratus-red-team" / "labels.tsv"


@pytest.fixture(scope="module")
def derive() -> ModuleType:
    return load_script("derive_sensitive_actions")


def test_fixture_labels_have_no_gap_and_no_conflict(
    derive: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert derive.main([str(TRAILDISCOVER), str(STRATUS), "--check"]) == 0
    out = capsys.readouterr().out
    assert "LISTED  cloudtrail:StopLogging" in out
    assert "critical" in out
    assert "PRUNED  sts:AssumeRole" in out
    assert "GAP" not in out and "CONFLICT" not in out


def test_an_unlisted_unpruned_candidate_is_a_gap(
    derive: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.jsonl"
    row = {
        "eventSource": "dynamodb.amazonaws.com",
        "eventName": "DeleteBackup",
        "mitreAttackTactics": ["TA0005 - Defense Evasion"],
    }
    discovery = {**row, "eventName": "DescribeBackup", "mitreAttackTactics": ["TA0007 - Discovery"]}
    labels.write_text(json.dumps(row) + "\n" + json.dumps(discovery) + "\n")

    assert derive.main([str(labels), str(STRATUS)]) == 0
    assert derive.main([str(labels), str(STRATUS), "--check"]) == 1
    out = capsys.readouterr().out
    assert "GAP     dynamodb:DeleteBackup" in out
    assert "DescribeBackup" not in out  # Discovery is not a tactic the list draws from


def test_a_listed_action_that_a_prune_pattern_matches_is_a_conflict(
    derive: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(derive, "PRUNED", [*derive.PRUNED, (("iam:Create*",), "too broad")])

    assert derive.main([str(TRAILDISCOVER), str(STRATUS), "--check"]) == 1
    assert "CONFLICT  iam:CreateAccessKey is also pruned: too broad" in capsys.readouterr().out
