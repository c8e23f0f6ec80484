"""The `cloudtrail-anomaly` command on the fixture folder: alerts, summary, exit codes."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main

from tests.builders import ACCOUNT, T0, record
from tests.helpers import (
    FIXTURES,
    STRATUS_FEDERATION,
    STRATUS_LAMBDA,
    STRATUS_PASSWORD,
    fixture_path,
    gz,
)

SEVERITIES = {"informational", "low", "medium", "high", "critical"}
ACTION_FIELDS = {
    "action",
    "event_source",
    "event_name",
    "event_time",
    "region",
    "error_code",
    "source_ip",
    "user_agent",
    "event_id",
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, list[Any], str]:
    """Run the CLI in-process; return its exit code, the alerts it printed, and its stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, [orjson.loads(line) for line in out.splitlines() if line.strip()], err


def summary_count(err: str, name: str) -> int:
    m = re.search(rf"^\s*{re.escape(name)}: ([\d,]+)$", err, re.MULTILINE)
    return int(m.group(1).replace(",", "")) if m else 0


def assert_contract(alert: dict[str, Any]) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", alert["alert_id"])
    assert alert["detector"] in ("new_action", "new_action_burst")
    assert alert["severity"] in SEVERITIES
    assert re.fullmatch(r"\d{12}", alert["account_id"])
    principal = alert["principal"]
    assert {"type", "arn", "name", "session"} <= set(principal)
    assert principal["arn"] and principal["type"]
    assert alert["new_actions"]
    for action in alert["new_actions"]:
        assert set(action) >= ACTION_FIELDS
        assert action["action"].startswith(action["event_source"] + ":")
        assert ISO.match(action["event_time"])
    assert ISO.match(alert["first_event_time"])
    assert ISO.match(alert["last_event_time"])
    assert alert["first_event_time"] <= alert["last_event_time"]
    assert alert["source_objects"]
    assert alert["reasons"]
    assert all(isinstance(r, str) and r for r in alert["reasons"])


def test_replay_prints_alerts_honouring_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts, err = run(capsys, "replay", FIXTURES, "--learning-days", "0")
    assert code == 0
    assert len(alerts) >= 50
    for alert in alerts:
        assert_contract(alert)
    # One alert per principal per object (and detector: a burst follow-up may join it).
    per_object = [
        (a["source_objects"][0], a["account_id"], a["principal"]["arn"], a["detector"])
        for a in alerts
    ]
    assert len(per_object) == len(set(per_object))
    # The API-version suffix is gone from the action, kept in event_name.
    lambda_actions = {
        (e["action"], e["event_name"])
        for a in alerts
        for e in a["new_actions"]
        if e["event_source"] == "lambda.amazonaws.com"
    }
    assert ("lambda.amazonaws.com:AddPermission", "AddPermission20150331v2") in lambda_actions
    # AWS services and service-linked roles are recorded, never alerted.
    assert not [a for a in alerts if a["principal"]["arn"].startswith("service:")]
    assert not [a for a in alerts if "/aws-service-role/" in a["principal"]["arn"]]
    assert summary_count(err, "suppressed_tuples.aws_service") > 0


def test_the_summary_counts_skips_by_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts, err = run(capsys, "replay", FIXTURES, "--learning-days", "0")
    assert code == 0
    assert summary_count(err, "objects_skipped.digest") == 2
    assert summary_count(err, "records_skipped.insight_event") == 2
    assert summary_count(err, "records_skipped.no_event_time") > 0
    assert summary_count(err, "records_skipped.no_valid_account") > 0
    m = re.search(r"^alerts: ([\d,]+)", err, re.MULTILINE)
    assert m is not None
    assert int(m.group(1)) == len(alerts)
    assert re.search(r"^objects: \d+ read", err, re.MULTILINE)
    assert re.search(r"^principals: \d+\s+new tuples: \d+", err, re.MULTILINE)
    assert "error:" not in err


def test_the_same_replay_twice_gives_the_same_alerts(capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = run(capsys, "replay", FIXTURES / "stratus-red-team", "--learning-days", "0")
    _, second, _ = run(capsys, "replay", FIXTURES / "stratus-red-team", "--learning-days", "0")
    assert first
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in second]
    assert first == second


def test_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    code, on_stdout, _ = run(
        capsys, "replay", FIXTURES / "stratus-red-team", "--learning-days", "0", "--output", out
    )
    assert code == 0
    assert on_stdout == []
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    _, expected, _ = run(capsys, "replay", FIXTURES / "stratus-red-team", "--learning-days", "0")
    assert written == expected
    assert written


def test_baseline_then_replay_of_the_same_files_alerts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    code, learned, err = run(capsys, "baseline", FIXTURES, "--state", state)
    assert (code, learned) == (0, [])
    assert re.search(r"new tuples: [1-9]", err)
    code, alerts, err = run(capsys, "replay", FIXTURES, "--state", state, "--learning-days", "0")
    assert code == 0
    assert alerts == []
    assert re.search(r"^alerts: 0$", err, re.MULTILINE)
    assert re.search(r"new tuples: 0$", err, re.MULTILINE)


def test_replay_with_state_learns_across_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    first = fixture_path(STRATUS_PASSWORD)
    _, alerts, _ = run(capsys, "replay", first, "--state", state, "--learning-days", "0")
    assert alerts
    _, again, _ = run(capsys, "replay", first, "--state", state, "--learning-days", "0")
    assert again == []


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('[policy]\nlearning_days = "soon"\n', "learning_days"),
        ("[policy]\nlerning_days = 3\n", "lerning_days"),
        ("[polcy]\nlearning_days = 3\n", "polcy"),
        ("[policy\nlearning_days = 3\n", "TOML"),
    ],
    ids=["wrong-type", "unknown-key", "unknown-section", "invalid-toml"],
)
def test_bad_config_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: str, named: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config)
    code, alerts, err = run(capsys, "replay", FIXTURES, "--config", path)
    assert code == 2
    assert alerts == []
    assert err.startswith("cloudtrail-anomaly: error:")
    assert named in err


def test_missing_config_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "replay", FIXTURES, "--config", tmp_path / "nope.toml")
    assert code == 2
    assert "nope.toml" in err


def test_nonexistent_path_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-folder"
    code, alerts, err = run(capsys, "replay", fixture_path(STRATUS_LAMBDA), missing)
    assert code == 2
    assert alerts == []
    assert str(missing) in err


def test_negative_learning_days_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", FIXTURES, "--learning-days", "-1")
    assert code == 2
    assert "--learning-days" in err


def test_unusable_state_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state = tmp_path / "state.sqlite"
    state.write_text("not a database\n" * 100)
    code, _, err = run(capsys, "replay", FIXTURES, "--state", state)
    assert code == 2
    assert str(state) in err


@pytest.mark.parametrize("argv", [[], ["replay"], ["baseline", "x"], ["frobnicate", "x"]])
def test_argument_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_objects_are_reported_and_the_rest_processed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in (STRATUS_LAMBDA, STRATUS_FEDERATION):
        shutil.copy(fixture_path(name), tmp_path)
    good = fixture_path(STRATUS_PASSWORD).read_bytes()
    (tmp_path / "corrupt.json.gz").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.json.gz").write_bytes(b"")
    (tmp_path / "no-records.json").write_bytes(b'{"digestS3Bucket": "x"}')
    (tmp_path / "notes.txt").write_text("not a log")

    code, alerts, err = run(capsys, "replay", tmp_path, "--learning-days", "0")
    assert code == 1  # the run completed, but objects failed
    assert (
        err.splitlines()[-1]
        == "cloudtrail-anomaly: error: 2 object(s) could not be read (listed above)"
    )
    assert {a["principal"]["type"] for a in alerts} == {"IAMUser", "FederatedUser"}
    assert {Path(a["source_objects"][0]).name for a in alerts} == {
        Path(STRATUS_LAMBDA).name,
        Path(STRATUS_FEDERATION).name,
    }
    assert summary_count(err, "objects_failed.corrupt_gzip") == 1
    assert summary_count(err, "objects_failed.no_records") == 1
    assert summary_count(err, "objects_skipped.empty_object") == 1
    assert summary_count(err, "objects_skipped.not_a_log_file") == 1
    assert re.search(r"^error: .*corrupt\.json\.gz: .*gzip", err, re.MULTILINE)
    assert re.search(r"^error: .*no-records\.json: ", err, re.MULTILINE)
    assert re.search(r"^objects: 2 read, 2 skipped, 2 failed$", err, re.MULTILINE)


def test_oversized_object_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(fixture_path(STRATUS_PASSWORD), tmp_path)
    code, alerts, err = run(capsys, "replay", tmp_path, "--max-object-bytes", "1000")
    assert code == 1
    assert alerts == []
    assert summary_count(err, "objects_failed.too_large") == 1


def _delivery(root: Path, stamp: str, uid: str, records: list[Any]) -> Path:
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2024" / "06" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}_{uid}.json.gz"
    path.write_bytes(gz({"Records": records}))
    return path


def test_files_are_processed_in_delivery_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    action = "ec2.amazonaws.com:DescribeInstances"
    # Sorted by name, "aaa" comes first; delivered, "zzz" (03:05) comes before "aaa" (03:10).
    _delivery(tmp_path, "20240601T0310Z", "aaa", [record(action, T0 + 600, event_id="second")])
    _delivery(tmp_path, "20240601T0305Z", "zzz", [record(action, T0 + 300, event_id="first")])
    code, alerts, _ = run(capsys, "replay", tmp_path, "--learning-days", "0")
    assert code == 0
    (alert,) = alerts
    assert alert["new_actions"][0]["event_id"] == "first"
    assert alert["source_objects"][0].endswith("_zzz.json.gz")


def test_delivery_layout_supplies_account_and_region(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = record(identity={"type": "Root"})
    del doc["recipientAccountId"], doc["awsRegion"]
    _delivery(tmp_path, "20240601T0305Z", "abc", [doc])
    code, alerts, err = run(capsys, "replay", tmp_path, "--learning-days", "0")
    assert code == 0
    (alert,) = alerts
    assert alert["account_id"] == ACCOUNT
    assert alert["new_actions"][0]["region"] == "us-east-1"
    assert "objects_unrecognized_name" not in err


def test_include_suppressed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "service.json.gz"
    path.write_bytes(
        gzip.compress(
            orjson.dumps(
                {
                    "Records": [
                        record(identity={"type": "AWSService", "invokedBy": "x.amazonaws.com"})
                    ]
                }
            )
        )
    )
    _, plain, _ = run(capsys, "replay", path, "--learning-days", "0")
    assert plain == []
    _, alerts, _ = run(capsys, "replay", path, "--learning-days", "0", "--include-suppressed")
    (alert,) = alerts
    assert alert["suppressed"] is True
    assert alert["suppressed_reason"] == "aws_service"


def test_summary_goes_to_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        "replay",
        fixture_path(STRATUS_LAMBDA),
        "--learning-days",
        "0",
    )
    assert code == 0
    assert "objects: 1 read" in err


def test_files_named_otherwise_are_ordered_by_their_first_event_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    action = "ec2.amazonaws.com:DescribeInstances"
    # By name "a-export" would come first; its events are the later ones.
    (tmp_path / "a-export.json.gz").write_bytes(
        gz({"Records": [record(action, T0 + 3600, event_id="second")]})
    )
    (tmp_path / "b-export.json").write_bytes(
        orjson.dumps({"Records": [record(action, T0, event_id="first")]})
    )
    code, alerts, err = run(capsys, "replay", tmp_path, "--learning-days", "0")
    assert code == 0
    (alert,) = alerts
    assert alert["new_actions"][0]["event_id"] == "first"
    assert summary_count(err, "objects_unrecognized_name") == 2


def test_random_bytes_named_gz_are_not_gzip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "x.json.gz").write_bytes(bytes(range(7, 256)) * 40)
    code, _, err = run(capsys, "replay", tmp_path)
    assert summary_count(err, "objects_failed.not_gzip") == 1
    assert re.search(r"^error: .*x\.json\.gz: not gzip", err, re.MULTILINE)
    assert code == 1


def test_explain_counts_only_the_burst_windows_minutes(tmp_path: Path) -> None:
    """The stored window reaches back days (slow novelty keeps them); explain's burst window
    is its last burst_window_minutes of activity."""
    from tests.builders import user_record
    from tests.trail import at, log_key, log_object

    day = 86_400
    trail = tmp_path / "trail"
    for n, (t, actions) in enumerate(
        [
            (at(9, 0) - 30 * day, ["sts.amazonaws.com:GetCallerIdentity"]),
            (
                at(9, 0) - 3 * day,
                ["s3.amazonaws.com:ListBuckets", "ec2.amazonaws.com:DescribeVpcs"],
            ),
            (at(9, 0), ["iam.amazonaws.com:ListUsers"]),
        ]
    ):
        key = trail / log_key(t, f"x{n}")
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(log_object([user_record(a, t + i, "alice") for i, a in enumerate(actions)]))
    state = tmp_path / "state.sqlite"
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtrail_anomaly.app.cli.main",
            "replay",
            str(trail),
            "--state",
            str(state),
            "--learning-days",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert replayed.returncode == 0, replayed.stderr
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtrail_anomaly.app.cli.main",
            "explain",
            "--state",
            str(state),
            "*:user/alice",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    (doc,) = json.loads(shown.stdout)
    assert doc["window"]["actions"] == ["iam.amazonaws.com:ListUsers"]
    assert doc["window"]["count"] == 1
