"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deployed import Packaged, packaged_stack
from tests.trail import BUCKET, ORG

# The deployment the harness runs: an organization trail's bucket (tests/trail.py's), Splunk
# HEC with its token in Secrets Manager, alarms by e-mail; every other parameter its default.
HARNESS_PARAMS = {
    "trailBucket": BUCKET,
    "orgId": ORG,
    "splunkUrl": "https://splunk.example.com:8088",
    "splunkSecret": "cloudtrail-anomaly/hec",
    "alarmEmail": "secops@example.com",
}


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """scripts/build_layers.py's zips and the template osls packages from them (once a run)."""
    return packaged_stack(Path(tmp_path_factory.mktemp("packaged")), HARNESS_PARAMS)
