"""`replay --sink splunk` and `deliver --sink splunk` against the local HEC server: settings from
the environment, exit 1 with a clear message on a sink configuration error, alerts kept in the
state file until a later `deliver` sends each once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main
from moto import mock_aws

from tests.hec_server import HecServer
from tests.helpers import FIXTURES
from tests.test_splunk_hec import TOKEN

TRAIL = FIXTURES / "stratus-red-team"


@pytest.fixture
def hec(monkeypatch: pytest.MonkeyPatch) -> Iterator[HecServer]:
    for name in (
        "SPLUNK_HEC_URL",
        "SPLUNK_HEC_TOKEN",
        "SPLUNK_HEC_TOKEN_SECRET",
        "SPLUNK_HEC_TOKEN_PARAMETER",
        "SPLUNK_MIN_SEVERITY",
        "CLOUDTRAIL_ANOMALY_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    with HecServer(TOKEN) as server:
        monkeypatch.setenv("SPLUNK_HEC_URL", server.url)
        # Out of budget at the first failure: the CLI sleeps for real.
        monkeypatch.setenv("SPLUNK_HEC_RETRY_BUDGET_SECONDS", "0")
        yield server


def expected_ids(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["replay", str(TRAIL), "--learning-days", "0"]) == 0
    ids = [orjson.loads(line)["alert_id"] for line in capsys.readouterr().out.splitlines()]
    assert ids
    return ids


def test_replay_sends_every_alert_to_splunk_once(
    hec: HecServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = expected_ids(capsys)
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
    code = main(["replay", str(TRAIL), "--learning-days", "0", "--sink", "splunk"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == ""  # alerts went to Splunk, not stdout
    assert hec.alert_counts() == dict.fromkeys(ids, 1)
    assert hec.events[0]["sourcetype"] == "cloudtrail_anomaly:alert"


def test_replay_reads_the_token_from_secrets_manager(
    hec: HecServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = expected_ids(capsys)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SPLUNK_HEC_TOKEN_SECRET": "splunk-hec",
        "SPLUNK_HEC_INDEX": "security",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("secretsmanager").create_secret(Name="splunk-hec", SecretString=TOKEN)
        code = main(["replay", str(TRAIL), "--learning-days", "0", "--sink", "splunk"])
    assert code == 0, capsys.readouterr().err
    assert hec.alert_counts() == dict.fromkeys(ids, 1)
    assert {e["index"] for e in hec.events} == {"security"}


def test_a_bad_token_stops_sending_exits_1_and_deliver_sends_later(
    hec: HecServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ids = expected_ids(capsys)
    state = tmp_path / "state.sqlite"
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", "an-old-token")
    argv = ["replay", str(TRAIL), "--learning-days", "0", "--sink", "splunk", "--state", str(state)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error: sink configuration error: HEC configuration error: HTTP 403 code 4" in err
    assert f"{len(ids)} alert(s) not delivered (kept in {state}" in err
    assert "an-old-token" not in err
    assert len(hec.requests) == 1  # refused once; the replay did not knock at every object
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
    assert main(["deliver", "--state", str(state), "--sink", "splunk"]) == 0
    assert f"delivered {len(ids)}, dead-lettered 0, still pending 0" in capsys.readouterr().err
    assert main(["deliver", "--state", str(state), "--sink", "splunk"]) == 0
    assert hec.alert_counts() == dict.fromkeys(ids, 1)


def test_an_outage_leaves_alerts_in_the_state_file_and_exits_1(
    hec: HecServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    ids = expected_ids(capsys)
    state = tmp_path / "state.sqlite"
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
    hec.faults.busy_first = 1_000
    argv = ["replay", str(TRAIL), "--learning-days", "0", "--sink", "splunk", "--state", str(state)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{len(ids)} alert(s) not delivered (kept in {state}" in err
    assert len(hec.requests) == 2  # one round after the first object, one at the end
    hec.faults.busy_first = 0
    assert main(["deliver", "--state", str(state), "--sink", "splunk"]) == 0
    assert hec.alert_counts() == dict.fromkeys(ids, 1)


def test_an_outage_without_a_state_file_says_the_alerts_are_not_kept(
    hec: HecServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
    hec.faults.busy_first = 1_000
    assert main(["replay", str(TRAIL), "--learning-days", "0", "--sink", "splunk"]) == 1
    assert "not kept: run with --state" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPLUNK_HEC_URL": ""}, "--sink splunk: SPLUNK_HEC_URL is not set"),
        ({}, "--sink splunk: no HEC token: set SPLUNK_HEC_TOKEN_SECRET"),
        (
            {"SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_HEC_GZIP": "yes please"},
            "--sink splunk: SPLUNK_HEC_GZIP=",
        ),
        (
            {"SPLUNK_HEC_TOKEN": TOKEN, "SPLUNK_MIN_SEVERITY": "loud"},
            "--sink splunk: SPLUNK_MIN_SEVERITY=",
        ),
    ],
)
def test_a_sink_misconfigured_in_the_environment_exits_2_naming_the_variable(
    hec: HecServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in (["replay", str(TRAIL)], ["deliver", "--state", str(tmp_path / "s.sqlite")]):
        if command[0] == "deliver":
            (tmp_path / "s.sqlite").touch()
        assert main([*command, "--sink", "splunk"]) == 2  # configuration: nothing was done
        out, err = capsys.readouterr()
        assert f"cloudtrail-anomaly: error: {message}" in err
        assert TOKEN not in err and out == ""
    assert hec.requests == []


def test_output_is_only_for_jsonl(
    hec: HecServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "alerts.jsonl"
    assert main(["replay", str(TRAIL), "--sink", "splunk", "--output", str(output)]) == 2
    assert "--output is for --sink jsonl" in capsys.readouterr().err
    assert not output.exists()
