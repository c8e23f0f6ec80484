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
    assert demo and fixtures
    return demo + fixtures
