"""Alerts as the CLI emits them, for the tests of the formats built on them (CIM, the schema,
OCSF, ASFF, the report): the demo's synthetic organization trail (small scale, its scenarios
all there, bursts included) and every fixture trail with no learning (real attack trails:
sensitive actions, MITRE techniques), suppressed ones included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main

from tests.builders import ACCOUNT, DAY, T0, assumed_role, record
from tests.helpers import gz

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--scale", "0.1")
FIXTURES = ROOT / "tests" / "fixtures" / "cloudtrail"


def _replay(argv: list[str], out: Path) -> list[dict[str, Any]]:
    code = main([*argv, "--output", str(out)])
    assert code == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def write_demo_alerts(where: Path) -> Path:
    """`make demo` at a tenth of its volume: the sample trail, a baseline of its history, the
    alerts of its live part in `where/alerts.jsonl`."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_sample.py"), "--out", str(where), *SMALL],
        check=True,
        capture_output=True,
    )
    state = where / "state.sqlite"
    assert main(["baseline", str(where / "history"), "--state", str(state)]) == 0
    out = where / "alerts.jsonl"
    assert main(["replay", str(where / "live"), "--state", str(state), "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def demo_alerts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_alerts(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def emitted_alerts(
    demo_alerts_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Every alert of the demo and of the fixture trails (suppressed ones too)."""
    demo = [orjson.loads(line) for line in demo_alerts_file.read_bytes().splitlines()]
    where = tmp_path_factory.mktemp("fixtures")
    fixtures = _replay(
        ["replay", str(FIXTURES), "--learning-days", "0", "--include-suppressed"],
        where / "alerts.jsonl",
    )
    slow = _replay(["replay", str(_slow_recon_trail(where / "slow"))], where / "slow.jsonl")
    assert demo and fixtures and any(a["detector"] == "new_action_slow" for a in slow)
    return demo + fixtures + slow


def _slow_recon_trail(where: Path) -> Path:
    """A role's session credentials used from a new network for one new read a day over four
    days, a month after its usual work: the quiet new actions add up to a `new_action_slow`
    follow-up (the demo's slow recon uses an IAM user's key, caught on its first day)."""
    app = assumed_role("reporting-app", "i-0abc")
    stolen = {"sourceIPAddress": "185.220.101.4", "userAgent": "Boto3/1.34.0 Python/3.12.1"}
    objects = [[record("ec2.amazonaws.com:DescribeInstances", T0, app)]]
    for day, action in enumerate(
        (
            "iam.amazonaws.com:ListUsers",
            "secretsmanager.amazonaws.com:ListSecrets",
            "lambda.amazonaws.com:ListFunctions20150331",
            "rds.amazonaws.com:DescribeDBInstances",
        )
    ):
        objects.append([record(action, T0 + (30 + day) * DAY, app, **stolen)])
    where.mkdir(parents=True)
    for i, records in enumerate(objects):
        stamp = records[0]["eventTime"].replace("-", "").replace(":", "")[:13]
        name = f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}Z_slow{i}.json.gz"
        (where / name).write_bytes(gz({"Records": records}))
    return where
