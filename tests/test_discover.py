"""`replay`/`baseline` find the same files in a folder as `Path.rglob` + `Path.is_file` would,
links included, however they list it (usecases/replay.py `discover`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cloudtrail_anomaly.usecases.replay import discover


def test_discovery_finds_what_rglob_finds_links_included(tmp_path: Path) -> None:
    root = tmp_path / "trail"
    deep = root / "AWSLogs" / "111111111111" / "CloudTrail" / "us-east-1" / "2026" / "10" / "01"
    deep.mkdir(parents=True)
    (deep / "111111111111_CloudTrail_us-east-1_20261001T0005Z_a.json.gz").write_bytes(b"x")
    (deep / "111111111111_CloudTrail_us-east-1_20261001T0000Z_b.json").write_bytes(b"x")
    (deep / "notes.txt").write_text("not a log")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked.json.gz").write_bytes(b"x")
    (root / "link-to-file.json.gz").symlink_to(elsewhere / "linked.json.gz")
    (root / "link-to-folder").symlink_to(elsewhere, target_is_directory=True)
    (root / "broken.json.gz").symlink_to(tmp_path / "nowhere.json.gz")

    stats: Counter[str] = Counter()
    found = discover([root], stats)
    expected = [p for p in root.rglob("*") if p.is_file() and p.name.endswith((".json", ".gz"))]
    assert sorted(found) == sorted(str(p) for p in expected)
    assert {Path(p).name for p in found} == {
        "111111111111_CloudTrail_us-east-1_20261001T0005Z_a.json.gz",
        "111111111111_CloudTrail_us-east-1_20261001T0000Z_b.json",
        "link-to-file.json.gz",  # a link to a file is read; one to a folder is not descended
    }
    assert stats["objects_skipped.not_a_log_file"] == 1
    # in delivery order: the stamp in the name first
    stamped = [Path(p).name for p in found if "_CloudTrail_" in p]
    assert stamped == sorted(stamped, key=lambda n: n.split("_")[3])
