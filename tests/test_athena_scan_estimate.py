"""scripts/athena_scan_estimate.py on a small trail: a complete hour scans nothing, missed
objects are what default mode reads, full mode reads the hour's objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import load_script
from tests.trail import DiskBucket, twenty_files


def test_the_estimate_on_a_small_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_script("athena_scan_estimate")
    files = twenty_files(DiskBucket(tmp_path / "live"))
    assert module.main(["--data", str(tmp_path), "--missed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("21 objects,")
    lines = {line.split("  mean")[0].strip(): line for line in out.splitlines() if "  mean" in line}
    assert "mean      0.0 KiB" in lines["default, complete hour (no query)"]
    assert "billed 10.00 MiB" in lines["default, 2 objects missed in the hour"]
    # 08:00-09:00 holds the history object and objects 0..6, 09:00-10:00 objects 7..19.
    sizes = [len(body) for _, body, _ in files]
    assert (
        f"max {sum(sizes[8:]) / 1024:8.1f} KiB" in lines['full, window key ranges ("$path" pruned)']
    )
    assert "backfill --days 90" in out
