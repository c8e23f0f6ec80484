"""`replay`/`baseline --jobs N`: files read and extracted in worker processes, claimed and judged
in one, in delivery order; the alerts, the baseline and the summary are those of `--jobs 1`."""

from __future__ import annotations

import fcntl
import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.domain.detector import DetectionSettings, Detector
from cloudtrail_anomaly.domain.extract import Extractor
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.usecases import extract_pool
from cloudtrail_anomaly.usecases import replay as replay_module
from cloudtrail_anomaly.usecases.extract_pool import ObjectRead, extract_in_workers
from cloudtrail_anomaly.usecases.replay import read_and_extract

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "cloudtrail"
CLI = [sys.executable, "-m", "cloudtrail_anomaly.app.cli.main"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate_sample.py"),
            "--out",
            str(where),
            "--scale",
            "0.1",
        ],
        check=True,
        capture_output=True,
    )
    return where


def _tuples(state: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(state) as db:
        return db.execute("SELECT * FROM tuples ORDER BY 1, 2, 3").fetchall()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, bytes, str]:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.encode(), captured.err


def test_demo_trail_gives_the_same_baseline_and_alerts_with_workers(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for jobs in ("1", "2", "3"):
        state = tmp_path / f"state{jobs}.sqlite"
        _run(["baseline", str(demo / "history"), "--state", str(state), "--jobs", jobs], capsys)
        out = tmp_path / f"alerts{jobs}.jsonl"
        code, _, summary = _run(
            [
                "replay",
                str(demo / "live"),
                "--state",
                str(state),
                "--output",
                str(out),
                "--jobs",
                jobs,
            ],
            capsys,
        )
        assert code == 0
        outputs[jobs] = (_tuples(state), out.read_bytes(), summary)
    assert outputs["1"][1].count(b"\n") > 10
    assert outputs["2"] == outputs["1"]
    assert outputs["3"] == outputs["1"]


def test_fixtures_and_failing_objects_give_the_same_output_with_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trail = tmp_path / "trail"
    shutil.copytree(FIXTURES, trail)
    bad = trail / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2024" / "01" / "02"
    bad.mkdir(parents=True)
    stamp = "111122223333_CloudTrail_us-east-1_20240102T0000Z_"
    (bad / f"{stamp}notgzip.json.gz").write_bytes(b"not gzip at all")
    (bad / f"{stamp}truncated.json.gz").write_bytes(gzip.compress(b'{"Records": [{"a"' * 50)[:40])
    (bad / f"{stamp}empty.json.gz").write_bytes(b"")
    (bad / f"{stamp}notjson.json.gz").write_bytes(gzip.compress(b"<html>"))
    (bad / "readme.txt").write_text("not a log")
    argv = ["replay", str(trail), "--learning-days", "0", "--include-suppressed"]
    one = _run([*argv, "--jobs", "1"], capsys)
    two = _run([*argv, "--jobs", "2"], capsys)
    assert b'"alert_id"' in one[1]
    assert "objects_failed.not_gzip: 1" in one[2] and "error:" in one[2]
    assert two == one


def test_workers_return_each_file_in_the_order_given(demo: Path) -> None:
    files = sorted((demo / "live").rglob("*.json.gz"))[:300]
    files.insert(5, demo / "missing.json.gz")
    settings = DetectionSettings()
    local = Detector(MemoryBaseline(), AlertPolicy(), settings)
    expected = [read_and_extract(f, local.extractor, 1 << 30) for f in files]
    got = list(extract_in_workers(files, settings, 1 << 30, 2))
    assert [r.name for r in got] == [f.as_posix() for f in files]
    assert got == expected
    assert got[5].stats["objects_failed.read_error"] == 1 and got[5].extraction is None


def _tagging_extraction(monkeypatch: pytest.MonkeyPatch, log: Path | None = None) -> None:
    """Each read says which process extracted it (a counter named after its pid, which
    travels with the read), and is logged to `log` as it is extracted, in any process."""
    real = replay_module.read_and_extract

    def tagged(path: Path, extractor: Extractor, max_bytes: int) -> ObjectRead:
        read = real(path, extractor, max_bytes)
        read.stats[f"pid.{os.getpid()}"] = 1
        if log is not None:
            with log.open("a") as fh:
                fh.write(f"{path}\n")
        return read

    monkeypatch.setattr(replay_module, "read_and_extract", tagged)


def test_this_process_extracts_too_while_the_next_in_order_is_not_ready(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tagging_extraction(monkeypatch)
    monkeypatch.setattr(extract_pool, "_CHUNK_FILES", 8)
    files = sorted((demo / "live").rglob("*.json.gz"))[:400]
    got = list(extract_in_workers(files, DetectionSettings(), 1 << 30, 2))
    assert [r.name for r in got] == [f.as_posix() for f in files]
    by = {k for r in got for k in r.stats if k.startswith("pid.")}
    assert f"pid.{os.getpid()}" in by  # this process took chunks...
    assert len(by) == 2  # ...and one worker (jobs 2: this process and one worker) the rest


def test_workers_stop_a_few_chunks_ahead_of_a_slow_consumer(
    demo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "extracted.txt"
    _tagging_extraction(monkeypatch, log)
    monkeypatch.setattr(extract_pool, "_CHUNK_FILES", 2)
    monkeypatch.setattr(extract_pool, "_STEAL_FILES", 1)
    files = sorted((demo / "history").rglob("*.json.gz"))[:200]
    reads = extract_in_workers(files, DetectionSettings(), 1 << 30, 3)
    next(reads)
    time.sleep(1.0)  # the consumer is busy: the workers have long finished what they may take
    # Taken and not yet consumed: _CHUNKS_PER_WORKER chunks per process (3 of them), besides
    # the chunk being consumed; 2 files a chunk at most.
    bound = (3 * extract_pool._CHUNKS_PER_WORKER + 1) * 2
    assert len(log.read_text().split()) <= bound
    rest = list(reads)
    assert len(rest) == len(files) - 1 and len(log.read_text().split()) == len(files)


def test_a_stopped_iteration_leaves_no_worker_behind(demo: Path) -> None:
    files = sorted((demo / "history").rglob("*.json.gz"))
    # Children this process already had (another test's pool may have left multiprocessing's
    # resource tracker running) are not this pool's.
    before = set(_children_of(os.getpid()))
    reads = extract_in_workers(files, DetectionSettings(), 1 << 30, 2)
    next(reads)
    assert set(_children_of(os.getpid())) - before  # the workers did start
    reads.close()
    assert not set(_children_of(os.getpid())) - before


def _baseline_with_workers(demo: Path, state: Path, output: int) -> subprocess.Popen[bytes]:
    """`baseline --jobs 3` of the demo in a session of its own, once its two workers run."""
    proc = subprocess.Popen(
        [*CLI, "baseline", str(demo), "--state", str(state), "--jobs", "3"],
        stdout=output,
        stderr=output,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while len(_children_of(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_children_of(proc.pid)) >= 2, "the workers never started"
    return proc


def test_ctrl_c_stops_the_workers_cleanly(demo: Path, tmp_path: Path) -> None:
    # As a terminal does: SIGINT to the whole foreground process group.
    proc = _baseline_with_workers(demo, tmp_path / "s.sqlite", subprocess.PIPE)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the group is left
    assert err.count(b"Traceback") <= 1  # at most the parent's, never one per worker


def test_workers_of_a_killed_run_exit(demo: Path, tmp_path: Path) -> None:
    # The command's own process killed (SIGKILL: the out-of-memory killer picks the largest),
    # while its workers wait for a slot it will never give back.
    proc = _baseline_with_workers(demo, tmp_path / "s.sqlite", subprocess.DEVNULL)
    workers = _children_of(proc.pid)
    os.kill(proc.pid, signal.SIGSTOP)  # it claims nothing more: the workers fill their slots
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if _running(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, "workers outlived the run they worked for"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_the_default_is_the_usable_cpu_count() -> None:
    assert extract_pool.usable_cpus() == len(os.sched_getaffinity(0))


def _children_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(c) for c in text]
    return children


def test_a_worker_killed_ends_the_run_with_a_clear_error_and_what_was_done(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As the out-of-memory killer would: every worker dies at its first file (this process,
    # which takes files too, reads on).
    parent = os.getpid()
    real = replay_module.read_and_extract

    def dies_in_a_worker(path: Path, extractor: Extractor, max_bytes: int) -> ObjectRead:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, extractor, max_bytes)

    monkeypatch.setattr(replay_module, "read_and_extract", dies_in_a_worker)
    state = tmp_path / "s.sqlite"
    code, _, err = _run(
        ["baseline", str(demo / "history"), "--state", str(state), "--jobs", "2"], capsys
    )
    assert code == 1  # exits.INCOMPLETE
    assert (
        "error: a --jobs worker process ended abruptly (killed by SIGKILL: the out-of-memory" in err
    )
    assert "Traceback" not in err
    assert f"{state} holds every object finished" in err and "fewer --jobs" in err
    assert "interrupted; learned" in err  # the summary of what was done


def test_a_worker_killed_while_it_holds_the_lock_ends_the_run(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock the processes take chunks under is never given back: this process must not wait
    # for it for ever, nor stop on it.
    parent = os.getpid()
    real = extract_pool._Shared.take

    def dies_holding_the_lock(self: extract_pool._Shared, max_files: int) -> tuple[int, int] | None:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, max_files)

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("waited for the dead worker's lock")

    monkeypatch.setattr(extract_pool._Shared, "take", dies_holding_the_lock)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        files = sorted((demo / "history").rglob("*.json.gz"))
        with pytest.raises(extract_pool.WorkerDied, match="killed by SIGKILL"):
            list(extract_in_workers(files, DetectionSettings(), 1 << 30, 2))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_worker_that_exits_says_how(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    real = replay_module.read_and_extract

    def exits_in_a_worker(path: Path, extractor: Extractor, max_bytes: int) -> ObjectRead:
        if os.getpid() != parent:
            os._exit(3)
        return real(path, extractor, max_bytes)

    monkeypatch.setattr(replay_module, "read_and_extract", exits_in_a_worker)
    files = sorted((demo / "history").rglob("*.json.gz"))
    with pytest.raises(
        extract_pool.WorkerDied, match=r"\(exited with status 3: its error is above\)"
    ):
        list(extract_in_workers(files, DetectionSettings(), 1 << 30, 2))


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_each_results_pipe_holds_a_chunk_of_results() -> None:
    shared = extract_pool._Shared(get_context("fork"), [], 2)
    workers = extract_pool._Workers(shared, DetectionSettings(), 1 << 30)
    workers.start()
    try:
        sizes = [fcntl.fcntl(w.results.fileno(), fcntl.F_GETPIPE_SZ) for w in workers.live]
    finally:
        workers.close()
    assert len(sizes) == 2
    assert all(size >= extract_pool._RESULT_PIPE_BYTES for size in sizes)


def test_waiting_with_no_worker_left_is_an_error_not_a_hang() -> None:
    shared = extract_pool._Shared(get_context("fork"), [], 1)
    workers = extract_pool._Workers(shared, DetectionSettings(), 1 << 30)
    workers.start()  # nothing to read: it exits at once
    try:
        ready: dict[int, tuple[int, Any]] = {}
        deadline = time.monotonic() + 10
        while workers.live and time.monotonic() < deadline:
            workers.receive(ready, 1.0)
        assert not workers.live and not ready
        with pytest.raises(RuntimeError, match="every worker has exited"):
            workers.receive(ready, None)
    finally:
        workers.close()


def test_this_process_runs_no_thread_for_the_workers(demo: Path) -> None:
    # Results are read here when they are needed: no thread takes the GIL from the claims.
    before = threading.active_count()
    reads = extract_in_workers(
        sorted((demo / "live").rglob("*.json.gz")), DetectionSettings(), 1 << 30, 3
    )
    next(reads)
    during = threading.active_count()
    reads.close()
    assert during == before


def test_workers_blocked_on_a_full_pipe_stop_at_once(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pipes of one page: the workers soon wait to write results this process will never read.
    monkeypatch.setattr(extract_pool, "_RESULT_PIPE_BYTES", 4096)
    before = set(_children_of(os.getpid()))
    files = sorted((demo / "history").rglob("*.json.gz"))
    reads = extract_in_workers(files, DetectionSettings(), 1 << 30, 3)
    next(reads)
    time.sleep(0.5)
    started = time.monotonic()
    reads.close()
    # Each gets a broken pipe and exits: nobody waits for the 10 s after which one is killed.
    assert time.monotonic() - started < 5
    assert not set(_children_of(os.getpid())) - before
