"""scripts/hec_faults.py: every fault scenario ends with each alert delivered once or
dead-lettered, none pending, no duplicates (but the one at-least-once case it shows)."""

from __future__ import annotations

from types import ModuleType

from tests.helpers import load_script


def load() -> ModuleType:
    return load_script("hec_faults")


def test_every_scenario_delivers_each_alert_once_or_dead_letters_it() -> None:
    script = load()
    rows = script.run_all(12)
    assert [r.name for r in rows if not r.ok] == []
    by_name = {r.name: r for r in rows}
    assert by_name["403 bad token, then fixed"].requests == 1 + 1  # one refused, then one batch
    assert by_name["code 6 on three events"].dead_lettered == 3
    assert by_name["response lost after indexing"].duplicates == 10
    assert sum(r.duplicates for r in rows) == 10
    table = script.render(rows, markdown=True)
    assert table.count("\n") == len(rows) + 1
