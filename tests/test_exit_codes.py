"""Every subcommand's exit status and first line of stderr, run as a user runs it (README
"Exit status": 0 ok, 1 the run completed with work left undone, 2 usage or configuration,
130 interrupted)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest

from tests.builders import ACCOUNT, T0, record, user
from tests.helpers import gz

CLI = Path(sys.executable).with_name("cloudtrail-anomaly")


def cli(*argv: str | Path, env: dict[str, str] | None = None, user_id: int | None = None):  # type: ignore[no-untyped-def]
    """Run the installed command; its exit status, stdout and stderr lines."""
    command = [str(CLI), *map(str, argv)]
    if user_id is not None:
        command = [
            "setpriv",
            f"--reuid={user_id}",
            f"--regid={user_id}",
            "--clear-groups",
            *command,
        ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env or _env(), check=False
    )
    return done.returncode, done.stdout, done.stderr.splitlines() or [""]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPLUNK_"))}
    env.update(extra)
    return env


def _trail(root: Path, objects: int, records: int = 4) -> Path:
    """`objects` CloudTrail-named files, each with a new principal doing new things."""
    folder = root / "AWSLogs" / ACCOUNT / "CloudTrail" / "us-east-1" / "2024" / "06" / "01"
    folder.mkdir(parents=True)
    for i in range(objects):
        t = T0 + 60 * i
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(t + 300))
        doc = {
            "Records": [
                record(f"ec2.amazonaws.com:Describe{j}", t + j, user(f"u{i}"), event_id=f"{i}-{j}")
                for j in range(records)
            ]
        }
        (folder / f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}_{i:06d}.json.gz").write_bytes(gz(doc))
    return root


def test_a_clean_replay_exits_0_with_a_labelled_summary(tmp_path: Path) -> None:
    code, out, err = cli("replay", _trail(tmp_path / "t", 2), "--learning-days", "0")
    assert code == 0
    assert err[0] == f"replay {tmp_path / 't'} (done):"
    assert len(out.splitlines()) == 2
    assert "alerts: 2 (" in "\n".join(err)


def test_baseline_labels_its_summary(tmp_path: Path) -> None:
    code, _, err = cli("baseline", _trail(tmp_path / "t", 1), "--state", tmp_path / "s.sqlite")
    assert code == 0
    assert err[0] == f"baseline {tmp_path / 't'} (done; learned, alerts nothing):"


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("replay", tmp_path / "nope")
    assert code == 2
    assert err[0] == f"cloudtrail-anomaly: error: no such file or folder: {tmp_path / 'nope'}"


def test_an_argument_error_exits_2(tmp_path: Path) -> None:
    code, _, err = cli("replay")
    assert code == 2
    assert err[0].startswith("usage: cloudtrail-anomaly replay")


def test_an_empty_folder_warns_that_no_log_objects_were_found(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = cli("replay", tmp_path / "empty")
    assert code == 0
    assert err[0].startswith(
        f"cloudtrail-anomaly: warning: no log objects found in {tmp_path / 'empty'}"
    )


def test_random_bytes_named_gz_are_not_gzip_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "x.json.gz").write_bytes(os.urandom(4096).replace(b"\x1f", b"\x00"))
    code, _, err = cli("replay", tmp_path)
    assert code == 1
    assert err[0] == f"replay {tmp_path} (done):"
    assert f"error: {tmp_path / 'x.json.gz'}: not gzip: named .gz but without a gzip header" in err
    assert err[-1] == "cloudtrail-anomaly: error: 1 object(s) could not be read (listed above)"


def test_splunk_without_its_url_is_a_configuration_error(tmp_path: Path) -> None:
    code, out, err = cli("replay", _trail(tmp_path / "t", 1), "--sink", "splunk")
    assert (code, out) == (2, "")
    assert err[0].startswith("cloudtrail-anomaly: error: --sink splunk: SPLUNK_HEC_URL is not set")


def test_splunk_unreachable_says_it_waits_and_how_long_it_tried(tmp_path: Path) -> None:
    env = _env(
        SPLUNK_HEC_URL="http://127.0.0.1:9",  # discard: nothing listens
        SPLUNK_HEC_TOKEN="00000000-0000-0000-0000-000000000000",
        SPLUNK_HEC_RETRY_BUDGET_SECONDS="2",
    )
    state = tmp_path / "s.sqlite"
    code, out, err = cli(
        "replay", _trail(tmp_path / "t", 1), "--learning-days", "0", "--sink", "splunk",
        "--state", state, env=env,
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err[0].startswith("cloudtrail-anomaly: Splunk HEC not answering; retrying in ")
    assert err[-1].startswith("cloudtrail-anomaly: error: 1 alert(s) not delivered after ")
    assert f"`cloudtrail-anomaly deliver --state {state}`" in err[-1]


def test_deliver_with_nothing_pending_exits_0(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    assert cli("replay", _trail(tmp_path / "t", 1), "--state", state)[0] == 0
    code, _, err = cli("deliver", "--state", state)
    assert code == 0
    assert err[0] == "delivered 0, dead-lettered 0, still pending 0"


def test_explain_of_no_principal_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    cli("baseline", _trail(tmp_path / "t", 1), "--state", state)
    code, _, err = cli("explain", "--state", state, "arn:aws:iam::*:user/nobody")
    assert code == 2
    assert err[0] == (
        f"cloudtrail-anomaly: error: no principal matches 'arn:aws:iam::*:user/nobody' in {state}"
    )


def _explained(state: Path, *argv: str, user_id: int | None = None) -> dict:  # type: ignore[type-arg]
    code, out, err = cli("explain", "--state", state, "--json", *argv, user_id=user_id)
    assert code == 0, err
    (doc,) = orjson.loads(out)
    return doc  # type: ignore[no-any-return]


def test_explain_knows_the_learning_period_the_replay_used(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    trail = _trail(tmp_path / "t", 1)
    assert cli("baseline", trail, "--state", state)[0] == 0
    before = _explained(state, f"arn:aws:iam::{ACCOUNT}:user/u0")
    assert before["learning_days_known"] is False  # no replay yet: this config's, and says so
    code, out, _ = cli("explain", "--state", state, f"arn:aws:iam::{ACCOUNT}:user/u0")
    assert code == 0
    assert "learning_days 15, this config's: the state does not say what its replays used" in out
    assert cli("replay", trail, "--state", state, "--learning-days", "0")[0] == 0
    after = _explained(state, f"arn:aws:iam::{ACCOUNT}:user/u0")
    assert after["learning_days"] == 0
    assert after["learning_days_known"] is True
    assert after["learning_until"] == after["first_seen"]


def test_explain_shows_regions_with_an_action_filter(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    cli("baseline", _trail(tmp_path / "t", 1), "--state", state)
    doc = _explained(state, f"arn:aws:iam::{ACCOUNT}:user/u0", "ec2:Describe0")
    assert doc["regions"] == ["us-east-1"]
    assert [a["action"] for a in doc["actions"]] == ["ec2.amazonaws.com:Describe0"]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="runs explain as another user"
)
def test_explain_reads_a_state_file_it_may_not_write(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="explain-"))  # /tmp: other users may enter it
    try:
        home.chmod(0o755)
        state = home / "s.sqlite"
        cli("baseline", _trail(tmp_path / "t", 1), "--state", state)
        state.chmod(0o644)  # root's: user 65534 may read, not write (nor add -wal/-shm beside it)
        before = state.read_bytes()
        doc = _explained(state, f"arn:aws:iam::{ACCOUNT}:user/u0", user_id=65534)
        assert doc["regions"] == ["us-east-1"]
        assert state.read_bytes() == before
    finally:
        shutil.rmtree(home)


def test_report_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("report", tmp_path / "none.jsonl", "-o", tmp_path / "r.html")
    assert code == 2
    assert err[0].startswith(f"cloudtrail-anomaly: error: {tmp_path / 'none.jsonl'}: ")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "no AWS region: pass --region or set AWS_REGION"),
        ({"AWS_REGION": "eu-west-1"}, "no AWS credentials: set AWS_PROFILE"),
    ],
    ids=["region", "credentials"],
)
def test_backfill_without_aws_set_up_says_what_is_missing_and_creates_nothing(
    tmp_path: Path, env: dict[str, str], missing: str
) -> None:
    state = tmp_path / "s.sqlite"
    isolated = _env(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    code, _, err = cli("backfill", "--bucket", "trail", "--state", state, env=isolated)
    assert code == 2
    assert err[0].startswith(f"cloudtrail-anomaly: error: {missing}")
    assert len(err) == 1
    assert not state.exists()


def test_ctrl_c_prints_one_line_and_the_partial_summary_then_exits_130(tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    trail = _trail(tmp_path / "t", 4000, records=20)
    proc = subprocess.Popen(
        [str(CLI), "replay", str(trail), "--learning-days", "0", "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # a first alert: the replay is under way
    proc.send_signal(signal.SIGINT)
    _, err_text = proc.communicate(timeout=60)
    err = err_text.decode().splitlines()
    assert proc.returncode == 130, err_text
    assert err[0].startswith(
        f"cloudtrail-anomaly: interrupted: {state} holds every object finished"
    )
    assert err[1] == f"replay {trail} (interrupted):"
    assert "Traceback" not in err_text.decode()
    read = int(err[2].split()[1].replace(",", ""))
    assert 0 < read < 4000
    # The state is consistent: every object read has its tuples, and no claim is half done.
    with sqlite3.connect(state) as db:
        principals = db.execute("SELECT count(*) FROM principals WHERE principal != '*'").fetchone()
    assert principals[0] >= read
