"""The SQLite baseline: what it keeps across runs, racing writers, and state files it refuses.

The behaviour every `Baseline` shares is in test_baseline_contract.py; this file covers what is
particular to one SQLite file shared by processes.
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import (
    PrincipalKey,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import Staged
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline, StateFileError

from tests.builders import ACCOUNT, DAY, T0, record, user
from tests.helpers import fixture_records

FORGET = 90 * DAY
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def key(i: int, principal: str = ALICE) -> TupleKey:
    return TupleKey(ACCOUNT, principal, f"ec2.amazonaws.com:Describe{i}")


def claim(k: TupleKey, first: int = T0, forget: int = FORGET) -> TupleClaim:
    return TupleClaim(k, first, first, first + forget)


# -- persistence ----------------------------------------------------------------------------------


def test_state_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = SqliteBaseline(path)
    entry = WindowEntry(T0, key(1).action, "us-east-1", "evt-1", "")
    staged = Staged(window=[entry], window_expires_at=T0 + 3600)
    assert db.claim([claim(key(1)), claim(key(2), T0 + 10)], lambda p, won, w: staged) == {
        key(1),
        key(2),
    }
    db.refresh([TupleClaim(key(1), T0, T0 + DAY, T0 + DAY + FORGET)])
    pkey = PrincipalKey(ACCOUNT, ALICE)
    db.observe_principals({pkey: T0})
    db.close()

    again = SqliteBaseline(path)
    assert again.lookup([key(1), key(2), key(3)]) == {
        key(1): TupleState(T0, T0 + DAY, T0 + DAY + FORGET),
        key(2): TupleState(T0 + 10, T0 + 10, T0 + 10 + FORGET),
    }
    assert again.observe_principals({pkey: T0 + 500}) == {pkey: T0}
    assert again.window_of(pkey) == [entry]
    assert again.counts() == (2, 1)
    assert [a for a, _ in again.tuples_of(pkey)] == [key(1).action, key(2).action]
    assert again.claim([claim(key(1), T0 + 5)]) == set()
    again.close()


def test_a_replay_after_reopening_alerts_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    name = "stratus-red-team/aws.credential-access.ec2-get-password-data.json.gz"
    policy = AlertPolicy(PolicySettings(learning_days=0))
    first = SqliteBaseline(path)
    assert Detector(first, policy).process(fixture_records(name), name).alerts
    first.close()
    second = SqliteBaseline(path)
    result = Detector(second, policy).process(fixture_records(name), name)
    assert result.alerts == []
    assert result.stats["new_tuples"] == 0
    second.close()


def test_expired_tuple_is_reclaimable(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = SqliteBaseline(path)
    db.claim([claim(key(1), T0, forget=100)])
    db.close()
    db = SqliteBaseline(path)
    assert db.lookup([key(1)]) == {key(1): TupleState(T0, T0, T0 + 100)}  # kept until reclaimed
    assert db.claim([claim(key(1), T0 + 99)]) == set()
    assert db.claim([claim(key(1), T0 + 100)]) == {key(1)}
    assert db.lookup([key(1)])[key(1)] == TupleState(T0 + 100, T0 + 100, T0 + 100 + FORGET)
    db.close()


def test_lookup_beyond_one_statement_of_parameters(tmp_path: Path) -> None:
    db = SqliteBaseline(tmp_path / "state.sqlite")
    keys = [key(i) for i in range(1000)]  # more than 999 parameters in all
    db.claim([claim(k, T0 + i) for i, k in enumerate(keys[::2])])
    found = db.lookup(keys)
    assert set(found) == set(keys[::2])
    assert found[keys[998]].first_seen == T0 + 499
    db.close()


# -- two writers ------------------------------------------------------------------------------------


def _race(path: Path, rounds: int, width: int, seed: int, start: Any, out: Any) -> None:
    """One writer: each round, claim the same `width` new tuples as the other writer."""
    rng = random.Random(seed)
    db = SqliteBaseline(path)
    won: list[list[int]] = []
    for r in range(rounds):
        order = list(range(width))
        rng.shuffle(order)  # different orders make the writers interleave differently
        start.wait()
        claimed = db.claim([claim(key(r * width + i), T0 + r) for i in order])
        won.append(sorted(k.action for k in claimed))
    db.close()
    out.put(won)


def _check_one_winner(results: list[list[list[str]]], rounds: int, width: int) -> None:
    first, second = results
    for r in range(rounds):
        expected = {key(r * width + i).action for i in range(width)}
        a, b = set(first[r]), set(second[r])
        assert not a & b, f"round {r}: both writers claimed {sorted(a & b)}"
        assert a | b == expected, f"round {r}: nobody claimed {sorted(expected - a - b)}"


def _run_threads(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    # Daemons, and barriers with a timeout: a failing writer fails the test, never hangs it.
    threads = [threading.Thread(target=target, args=a, daemon=True) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


def _steps(db: sqlite3.Connection, fn: Callable[[], Any]) -> int:
    """SQLite virtual-machine steps `fn` takes (a progress handler called at every step)."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    db.set_progress_handler(count, 1)
    try:
        fn()
    finally:
        db.set_progress_handler(None, 1)
    return steps


def test_a_lookup_costs_the_same_whatever_the_size_of_the_baseline(tmp_path: Path) -> None:
    """Each key a primary-key search, not a scan of the table: replaying a large organization's
    history must not slow down as the baseline grows."""
    db = SqliteBaseline(tmp_path / "s.sqlite")
    arn = f"arn:aws:iam::{ACCOUNT}:user/u"
    keys = [TupleKey(ACCOUNT, f"{arn}{i}", "s3.amazonaws.com:GetObject") for i in range(20_000)]
    wanted = [keys[5], keys[17], TupleKey(ACCOUNT, f"{arn}-nobody", "s3.amazonaws.com:GetObject")]
    db.claim([TupleClaim(k, T0, T0, T0 + DAY) for k in keys[:100]])
    small = _steps(*_fresh_lookup(db.path, wanted))
    db.claim([TupleClaim(k, T0, T0, T0 + DAY) for k in keys[100:]])
    large = _steps(*_fresh_lookup(db.path, wanted))
    assert db.lookup(wanted).keys() == {keys[5], keys[17]}
    # 200 times the rows, about the same work (a B-tree one level deeper at most).
    assert large < 2 * small


def _fresh_lookup(
    path: str, keys: list[TupleKey]
) -> tuple[sqlite3.Connection, Callable[[], object]]:
    """A lookup by a new instance, whose cache holds nothing yet: what the file's query costs."""
    reader = SqliteBaseline(path)
    return reader._db, lambda: reader.lookup(keys)


def _statements(db: SqliteBaseline, call: Callable[[], object]) -> list[str]:
    seen: list[str] = []
    db._db.set_trace_callback(seen.append)
    try:
        call()
    finally:
        db._db.set_trace_callback(None)
    return seen


def test_a_known_tuple_or_principal_is_read_from_the_file_once(tmp_path: Path) -> None:
    """A replay looks up the same tuples and principals in every object: after the first read,
    this process answers from what it read (issue 18: the claiming process's cost per object)."""
    path = tmp_path / "s.sqlite"
    writer = SqliteBaseline(path)
    writer.claim([claim(key(1)), claim(key(2))])
    pkey = PrincipalKey(ACCOUNT, ALICE)
    writer.observe_principals({pkey: T0})
    db = SqliteBaseline(path)
    assert _statements(db, lambda: db.lookup([key(1), key(2)]))  # read from the file
    assert db.lookup([key(1), key(2)]).keys() == {key(1), key(2)}
    assert _statements(db, lambda: db.lookup([key(1), key(2)])) == []
    assert any("SELECT" in q for q in _statements(db, lambda: db.lookup([key(1), key(3)])))
    assert db.observe_principals({pkey: T0 + DAY}) == {pkey: T0}
    assert _statements(db, lambda: db.observe_principals({pkey: T0 + 2 * DAY})) == []
    # An earlier sighting is still news: written, and what every later call returns.
    assert db.observe_principals({pkey: T0 - DAY}) == {pkey: T0 - DAY}
    assert SqliteBaseline(path).observe_principals({pkey: T0 + DAY}) == {pkey: T0 - DAY}


def test_what_another_process_refreshed_is_never_claimed_again_from_a_stale_read(
    tmp_path: Path,
) -> None:
    """The cache may be behind another writer of the file; the claim, atomic in the file, is
    what decides, so a stale read never alerts twice."""
    path = tmp_path / "s.sqlite"
    a, b = SqliteBaseline(path), SqliteBaseline(path)
    a.claim([claim(key(1), T0, forget=DAY)])
    assert a.lookup([key(1)])[key(1)].expires_at == T0 + DAY
    b.refresh([TupleClaim(key(1), T0, T0 + DAY // 2, T0 + 10 * DAY)])  # b saw it again
    # To a, the tuple looks expired two days later; claiming it is refused all the same.
    assert a.lookup([key(1)])[key(1)].expires_at == T0 + DAY  # stale, as documented
    assert a.claim([claim(key(1), T0 + 2 * DAY, forget=DAY)]) == set()
    assert a.lookup([key(1)])[key(1)].expires_at == T0 + 10 * DAY  # read again after losing


def test_two_connections_claiming_the_same_tuples_exactly_one_wins_each(tmp_path: Path) -> None:
    import queue

    path, rounds, width = tmp_path / "state.sqlite", 150, 20
    start = threading.Barrier(2, timeout=30)
    out: queue.Queue[list[list[str]]] = queue.Queue()
    _run_threads(_race, [(path, rounds, width, seed, start, out) for seed in (1, 2)])
    _check_one_winner([out.get_nowait(), out.get_nowait()], rounds, width)
    db = SqliteBaseline(path)
    assert db.counts()[0] == rounds * width
    db.close()


def test_two_processes_claiming_the_same_tuples_exactly_one_wins_each(tmp_path: Path) -> None:
    path, rounds, width = tmp_path / "state.sqlite", 40, 20
    SqliteBaseline(path).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2, timeout=30)
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, rounds, width, s, start, out)) for s in (3, 4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60), out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _check_one_winner(results, rounds, width)


def test_two_connections_creating_the_same_new_file_both_open_it(tmp_path: Path) -> None:
    # Switching a new file to WAL while another connection creates it used to fail at once
    # with "database is locked" (about 2% of attempts).
    for attempt in range(150):
        path = tmp_path / f"state-{attempt}.sqlite"
        start = threading.Barrier(2, timeout=30)
        errors: list[str] = []

        def opener(
            path: Path = path, start: threading.Barrier = start, errors: list[str] = errors
        ) -> None:
            start.wait()
            try:
                SqliteBaseline(path).close()
            except StateFileError as exc:
                errors.append(str(exc))

        _run_threads(opener, [(), ()])
        assert errors == [], f"attempt {attempt}"


def test_two_detectors_on_one_state_file_alert_once(tmp_path: Path) -> None:
    import queue

    path, rounds = tmp_path / "state.sqlite", 30
    objects = [
        [record(f"ec2.amazonaws.com:Describe{a}", T0 + r, user(f"u{r}")) for a in "ABC"]
        for r in range(rounds)
    ]
    start = threading.Barrier(2, timeout=30)
    out: queue.Queue[list[tuple[int, int]]] = queue.Queue()

    def worker() -> None:
        db = SqliteBaseline(path)
        detector = Detector(db, AlertPolicy(PolicySettings(learning_days=0)))
        seen = []
        for r, records in enumerate(objects):
            start.wait()
            result = detector.process(records, f"obj-{r}")
            seen.append((len(result.alerts), result.stats["claims_lost"]))
        db.close()
        out.put(seen)

    _run_threads(worker, [(), ()])
    first, second = out.get_nowait(), out.get_nowait()
    for r in range(rounds):
        assert first[r][0] + second[r][0] == 1, f"object {r}: {first[r]} / {second[r]}"


# -- state files it refuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"hello, I am a text file\n" * 200,
        bytes(range(256)) * 32,
        b'{"Records": []}',
    ],
    ids=["text", "binary", "json"],
)
def test_non_sqlite_file_is_a_state_file_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as info:
        SqliteBaseline(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content  # left as it was


def test_truncated_state_file_is_a_state_file_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    db = SqliteBaseline(path)
    db.claim([claim(key(i)) for i in range(3000)])
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StateFileError, match="not a usable state file"):
        SqliteBaseline(path)


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE tuples (a, b, c)")
    other.commit()
    other.close()
    with pytest.raises(StateFileError, match="not a cloudtrail-anomaly state file"):
        SqliteBaseline(path)
    other = sqlite3.connect(path)
    names = {r[0] for r in other.execute("SELECT name FROM sqlite_master")}
    other.close()
    assert names == {"tuples"}


def test_state_file_from_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    SqliteBaseline(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(StateFileError, match="version 99"):
        SqliteBaseline(path)


@pytest.mark.parametrize("where", ["a folder", "missing/parent/state.sqlite"])
def test_unopenable_path_is_a_state_file_error(tmp_path: Path, where: str) -> None:
    path = tmp_path / where
    if where == "a folder":
        path.mkdir()
    with pytest.raises(StateFileError):
        SqliteBaseline(path)


def test_zero_byte_file_is_a_new_state(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.touch()
    db = SqliteBaseline(path)
    assert db.claim([claim(key(1))]) == {key(1)}
    db.close()
