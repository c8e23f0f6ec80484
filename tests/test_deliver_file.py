"""`--output FILE` and the JSON Lines sink: alerts are appended, never truncated away, and are on
disk (fsynced) before the outbox marks them delivered; once marked, they are never written again,
so a truncated file would lose them for good."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import PendingAlert
from cloudtrail_anomaly.sinks.jsonl import JsonLinesSink
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests.builders import ACCOUNT, T0, record, user
from tests.helpers import gz


def log_file(folder: Path, n: int, *actions: str) -> Path:
    """A CloudTrail file in which user n does `actions`: one alert when they are new."""
    stamp = f"20240601T00{n:02d}Z"
    path = folder / f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}_f{n:03d}.json.gz"
    records = [record(a, T0 + 60 * n + i, user(f"u{n}")) for i, a in enumerate(actions)]
    path.write_bytes(gz({"Records": records}))
    return path


def ids_in(path: Path) -> list[str]:
    return [orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines()]


def stage_without_delivering(state: Path, n: int) -> str:
    """What a killed replay leaves: a claim and its alert committed, the alert not yet written."""
    db = SqliteBaseline(state)
    try:
        detector = Detector(db, AlertPolicy(PolicySettings(learning_days=0)))
        rec = record("iam.amazonaws.com:CreateAccessKey", T0 + 3600 + n, user(f"late{n}"))
        (alert,) = detector.process([rec], f"killed-{n}").alerts
        return alert.alert_id
    finally:
        db.close()


def test_deliver_appends_to_the_file_a_killed_replay_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trail, state, out = tmp_path / "trail", tmp_path / "state.sqlite", tmp_path / "alerts.jsonl"
    trail.mkdir()
    for n in range(3):
        log_file(trail, n, "iam.amazonaws.com:CreateUser")
    argv = ["replay", str(trail), "--state", str(state), "--output", str(out)]
    assert main([*argv, "--learning-days", "0"]) == 0
    written = ids_in(out)
    assert len(written) == 3
    # The replay is killed after two more alerts were staged, before they were written.
    late = [stage_without_delivering(state, n) for n in range(2)]
    capsys.readouterr()

    assert main(["deliver", "--state", str(state), "--output", str(out)]) == 0
    assert "delivered 2," in capsys.readouterr().err
    assert ids_in(out) == written + late  # the earlier lines stay
    # A replay resumed on the same state and file appends too.
    log_file(trail, 9, "iam.amazonaws.com:DeleteUser")
    assert main([*argv, "--learning-days", "0"]) == 0
    assert ids_in(out)[:5] == written + late and len(ids_in(out)) == 6
    assert len(set(ids_in(out))) == 6  # nothing written twice


def test_the_output_is_fsynced_before_the_outbox_marks_it_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, out = tmp_path / "state.sqlite", tmp_path / "alerts.jsonl"
    staged = [stage_without_delivering(state, n) for n in range(3)]
    steps: list[tuple[str, Any]] = []
    real_fsync, real_mark = os.fsync, SqliteBaseline.mark_delivered

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def mark_delivered(self: SqliteBaseline, alert_ids: Sequence[str]) -> None:
        # What is marked delivered must already be in the file, on disk.
        steps.append(("mark", sorted(alert_ids)))
        assert set(alert_ids) <= set(ids_in(out))
        real_mark(self, alert_ids)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(SqliteBaseline, "mark_delivered", mark_delivered)
    assert main(["deliver", "--state", str(state), "--output", str(out)]) == 0
    assert steps == [("fsync", out.stat().st_ino), ("mark", sorted(staged))]


def test_the_help_says_the_file_is_appended_and_fsynced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("replay", "deliver"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "never truncated" in text and "fsynced before they count as delivered" in text


def test_an_output_in_a_missing_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.sqlite"
    stage_without_delivering(state, 0)
    code = main(["deliver", "--state", str(state), "--output", str(tmp_path / "no" / "a.jsonl")])
    assert code == 2
    assert "--output" in capsys.readouterr().err
    assert len(SqliteBaseline(state).pending()) == 1  # still pending for a later deliver


# -- the sink itself: one implementation, stream or path ---------------------------------------


def alert(i: int) -> PendingAlert:
    return PendingAlert(f"id{i:03d}", T0 + i, "high", orjson.dumps({"alert_id": f"id{i:03d}"}))


class RecordingOutbox(MemoryOutbox):
    def __init__(self, steps: list[str]) -> None:
        super().__init__()
        self.steps = steps

    def mark_delivered(self, alert_ids: Sequence[str]) -> None:
        self.steps.append("mark")
        super().mark_delivered(alert_ids)


@pytest.mark.parametrize("form", ["path", "open_stream"])
def test_a_file_is_fsynced_before_delivered_and_appended_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'{"alert_id": "from-before"}\n')
    steps: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        assert os.fstat(fd).st_ino == path.stat().st_ino
        steps.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    outbox = RecordingOutbox(steps)
    outbox.stage([alert(1), alert(2)])
    with path.open("ab") as stream:
        sink = {
            "path": lambda: JsonLinesSink(path),
            "open_stream": lambda: JsonLinesSink(stream),
        }[form]()
        assert isinstance(sink, JsonLinesSink)  # one implementation
        assert Deliverer(outbox, sink).deliver_pending().delivered == 2
    assert steps == ["fsync", "mark"]
    assert ids_in(path) == ["from-before", "id001", "id002"]


def test_streams_that_are_not_files_are_not_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    buffer = io.BytesIO()
    assert JsonLinesSink(buffer).deliver([alert(1)]).delivered == ["id001"]
    read, write = os.pipe()
    with os.fdopen(write, "wb") as pipe, os.fdopen(read, "rb") as reader:
        assert JsonLinesSink(pipe).deliver([alert(2)]).delivered == ["id002"]
        pipe.close()
        assert reader.read() == alert(2).document + b"\n"
    assert calls == []
    assert buffer.getvalue() == alert(1).document + b"\n"


def test_a_failed_write_keeps_the_batch_pending() -> None:
    class Full(io.BytesIO):
        name = "/full/disk.jsonl"

        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    report = JsonLinesSink(Full()).deliver([alert(1)])
    assert report.delivered == [] and not report.config_error
    assert report.pending == {"id001": "cannot write /full/disk.jsonl: No space left on device"}
