"""Shared test helpers: fixture files and a baseline that defers its refreshes.

CloudTrail records and identities are built by tests/builders.py.

Imported as `tests.helpers` (tests/ is a package), never through a path hack.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
from cloudtrail_anomaly.domain.model import TupleClaim
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.trail.reader import read_records

FIXTURES = Path(__file__).parent / "fixtures" / "cloudtrail"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(script: str, name: str | None = None) -> ModuleType:
    """`scripts/<script>.py` as a module named `name` (default: `script`). scripts/ is not a
    package; the module is registered in sys.modules, where its dataclasses look it up."""
    spec = importlib.util.spec_from_file_location(name or script, SCRIPTS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# One fixture per notable shape (all under tests/fixtures/cloudtrail/).
STRATUS_FEDERATION = "stratus-red-team/aws.persistence.sts-federation-token.json.gz"
STRATUS_LAMBDA = "stratus-red-team/aws.persistence.lambda-backdoor-function.json.gz"
STRATUS_PASSWORD = "stratus-red-team/aws.credential-access.ec2-get-password-data.json.gz"
TRAILSCRAPER = (
    "trailscraper/111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json.gz"
)
OTRF = "otrf-ec2-proxy-s3-exfil/ec2_proxy_s3_exfiltration_2020-09-14011940.json.gz"
INSIGHT = "aws-docs-examples/cloudtrail-log-file-examples__09.json.gz"
EVENT_VERSION_1_0 = "aws-docs-examples/cloudtrail-log-file-examples__02.json.gz"
SERVICE_EVENT = "aws-docs-examples/non-api-aws-service-events__00.json.gz"
DIGESTS = sorted((FIXTURES / "aws-docs-examples" / "CloudTrail-Digest").glob("*.json.gz"))


def fixture_path(name: str) -> Path:
    return FIXTURES / name


@cache
def fixture_bytes(name: str) -> bytes:
    """The raw (gzipped) bytes of a fixture file; immutable, so caching is safe."""
    return fixture_path(name).read_bytes()


def fixture_records(name: str) -> list[Any]:
    """A fresh copy of a fixture's records (callers may mutate it)."""
    return read_records(io.BytesIO(fixture_bytes(name)))


def log_files() -> list[Path]:
    """Every log object among the fixtures (digests excluded)."""
    return sorted(p for p in FIXTURES.rglob("*.json.gz") if "CloudTrail-Digest" not in p.parts)


def gz(doc: Any) -> bytes:
    return gzip.compress(orjson.dumps(doc))


class DeferringBaseline(MemoryBaseline):
    """A MemoryBaseline that holds refreshes from `hold_refreshes` to `flush`, as the DynamoDB
    one does: outside a batch they are written at once."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.held: list[TupleClaim] = []
        self.flushes = 0

    def refresh(self, updates: Sequence[TupleClaim]) -> None:
        if self.holding:
            self.held += updates
        else:
            super().refresh(updates)

    def hold_refreshes(self) -> None:
        self.holding = True

    @property
    def deferred(self) -> int:
        return len(self.held)

    def flush(self) -> None:
        self.flushes += 1
        self.holding = False
        held, self.held = self.held, []
        if held:
            super().refresh(held)
