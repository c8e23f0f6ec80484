"""The real-time function's cold start imports only what its deployed configuration uses.

Issue 18 cut the container's import and build from 0.64 s to 0.47 s by importing the alert
destinations, the enrichment and the Athena pieces only where they are used. Nothing times it
here (docs/benchmarks.md §7 has the figures); this guards the cause: a module-level import that
creeps back would put them on every cold start again. The handler is loaded as Lambda loads it,
in a fresh interpreter, with the environment of the packaged template (Splunk HEC is the
deployed destination, so its sink is expected; the others are not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployed import Packaged, deployed

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(sys.modules)))
"""

# Loaded only by the code that needs them: another destination, the hourly job, local mode.
NOT_ON_THE_REALTIME_COLD_START = (
    "cloudtrail_anomaly.sinks.security_hub",
    "cloudtrail_anomaly.sinks.eventbridge",
    "cloudtrail_anomaly.sinks.sns",
    "cloudtrail_anomaly.formats.asff",
    "cloudtrail_anomaly.athena",
    "cloudtrail_anomaly.usecases.reconcile",
    "cloudtrail_anomaly.usecases.replay",
    "cloudtrail_anomaly.report",
    "cloudtrail_anomaly.stores.sqlite",
    "cloudtrail_anomaly.app.cli",
    "sqlite3",
    "moto",
)


def _cold_start_modules(env: dict[str, str], handler: Path) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(handler)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_deployed_realtime_cold_start_imports_no_unused_destination(
    packaged: Packaged, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with deployed(packaged, tmp_path, monkeypatch) as stack:
        stack.load("realtime")  # unpacks the function's zip as Lambda does
        with stack.environment("realtime"):
            env = dict(os.environ)
    handler = tmp_path / "realtime" / "var" / "task" / "functions" / "realtime" / "handler.py"
    assert handler.is_file()
    # No AWS call happens at cold start: the subprocess has no moto and no real credentials.
    env |= {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "x"}

    modules = _cold_start_modules(env, handler)
    assert "cloudtrail_anomaly.sinks.splunk_hec" in modules  # the deployed destination
    crept = sorted(
        m
        for m in modules
        for unwanted in NOT_ON_THE_REALTIME_COLD_START
        if m == unwanted or m.startswith(unwanted + ".")
    )
    assert crept == []

    # Without a destination configured (alerts to the log), not even the Splunk sink and
    # `requests` load.
    quiet = {k: v for k, v in env.items() if not k.startswith("SPLUNK_HEC_")}
    modules = _cold_start_modules(quiet, handler)
    assert "cloudtrail_anomaly.sinks.splunk_hec" not in modules
    assert "requests" not in modules
