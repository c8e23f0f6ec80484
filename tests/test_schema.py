"""The alert contract as a schema: docs/alert.schema.json is generated from the code and current,
every alert the CLI emits fits it (and `AlertDocument` names every field they have), and the
README's "Alert format" table lists exactly its fields."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import orjson
import pytest
from cloudtrail_anomaly.formats.schema import alert_schema, check_document

from tests import alert_samples

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "docs" / "alert.schema.json"
demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts


def test_the_schema_file_is_generated_from_the_code() -> None:
    assert orjson.loads(SCHEMA_FILE.read_bytes()) == alert_schema()
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "alert_schema.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(orjson.loads(SCHEMA_FILE.read_bytes()))


def test_every_emitted_alert_fits_the_schema_and_names_no_other_field(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    validator = jsonschema.Draft202012Validator(orjson.loads(SCHEMA_FILE.read_bytes()))
    detectors = set()
    for alert in emitted_alerts:
        errors = sorted(validator.iter_errors(alert), key=str)
        assert not errors, (alert["alert_id"], [e.message for e in errors[:3]])
        check_document(alert)  # unknown fields refused: the schema covers the whole alert
        detectors.add(alert["detector"])
    assert detectors == {"new_action", "new_action_burst", "new_action_slow"}
    assert any(a.get("suppressed") for a in emitted_alerts)


def test_an_alert_with_a_field_the_schema_does_not_know_is_refused(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        check_document({**emitted_alerts[0], "surprise": 1})
    broken = {**emitted_alerts[0], "severity": "severe"}
    assert not jsonschema.Draft202012Validator(alert_schema()).is_valid(broken)


def _readme_table_fields() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Alert format", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names: set[str] = set()
    for row in rows:
        first_cell = row.split("|")[1]
        names |= set(re.findall(r"`([a-z_]+)`", first_cell))
    return names


def test_the_readme_alert_table_lists_exactly_the_schema_fields() -> None:
    schema_fields = set(alert_schema()["properties"])
    readme = _readme_table_fields()
    assert readme - schema_fields == set(), "README documents fields the alert does not have"
    assert schema_fields - readme == set(), "fields missing from README's Alert format table"
