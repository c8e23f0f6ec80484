"""scripts/cost.py: docs/cost.md is what docs/cost-figures.json gives, and the arithmetic holds."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cost() -> ModuleType:
    return load_script("cost")


def figures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "docs" / "cost-figures.json").read_text())
    return data


def test_docs_cost_md_is_what_the_figures_give(cost: ModuleType) -> None:
    assert cost.main(["--check"]) == 0


def test_check_fails_on_a_stale_doc(cost: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "cost.md"
    doc.write_text(
        (ROOT / "docs" / "cost.md").read_text().replace("| Lambda GB-seconds |", "| x |", 1)
    )
    assert cost.main(["--check", "--doc", str(doc)]) == 1
    assert cost.main(["--doc", str(doc)]) == 0
    assert cost.main(["--check", "--doc", str(doc)]) == 0


def test_every_measured_figure_names_its_command(cost: ModuleType) -> None:
    measured = figures()["measured"]
    assert all(m["command"] and m["date"] for m in measured.values())
    assert set(measured["dynamodb"]["by_records_per_object"]) == {"10", "100", "1000"}
    assert set(measured["dynamodb_dense"]["by_records_per_object"]) == {"100", "1000"}
    assert all(a["why"] for a in figures()["assumptions"].values())


def test_the_seeds_scan_each_byte_of_a_day_twelve_and_a_half_times(cost: ModuleType) -> None:
    model = cost.Model(figures())
    big = {"name": "big", "accounts": 1, "events_per_day": 10**9}
    _, seeds, derived = model.organization_day(big)
    assert seeds.athena_bytes == pytest.approx(12.5 * derived["gz_gb"] * cost.GB)


def test_price_arithmetic(cost: ModuleType) -> None:
    prices = figures()["prices"]
    usage = cost.Usage(
        gb_seconds=1e6,
        invocations=1e6,
        read_units=1e6,
        write_units=1e6,
        ddb_requests=0,
        s3_gets=1e3,
        sqs_requests=1e6,
        athena_bytes=cost.TB,
    )
    assert usage.dollars(prices) == pytest.approx(
        {"Lambda": 13.3334 + 0.2, "DynamoDB": 0.75, "S3 GET": 0.0004, "SQS": 0.4, "Athena": 5.0}
    )
