"""One behavioural contract for every `Baseline`: memory, SQLite, and DynamoDB (on moto).

Each test gets a `stores` factory: `stores(n)` returns n handles on ONE store, as n workers
(Lambda containers, CLI processes) would hold them: separate SQLite connections, separate
DynamoDB adapters with their own caches. The memory store has one handle, shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_anomaly.domain.model import (
    PrincipalKey,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from cloudtrail_anomaly.domain.window import (
    MAX_WINDOW_BYTES,
    MAX_WINDOW_ENTRIES,
    encode_window,
    merge_window,
)
from cloudtrail_anomaly.ports import Staged
from cloudtrail_anomaly.stores.dynamodb.baseline import DynamoDbBaseline
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline

from tests.dynamo_tables import BASELINE_TABLE

Stores = Callable[[int], list[Any]]

A = TupleKey("111111111111", "arn:aws:iam::111111111111:user/alice", "iam.amazonaws.com:CreateUser")
B = TupleKey("111111111111", "arn:aws:iam::111111111111:user/alice", "s3.amazonaws.com:GetObject")
C = TupleKey("222222222222", "arn:aws:iam::222222222222:role/ci", "iam.amazonaws.com:CreateUser")
T0 = 1_700_000_000
FORGET = 90 * 86_400


def claim(key: TupleKey, first: int, last: int | None = None, forget: int = FORGET) -> TupleClaim:
    last = first if last is None else last
    return TupleClaim(key, first, last, last + forget)


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "memory":
        shared = MemoryBaseline()
        yield lambda n: [shared] * n
    elif request.param == "sqlite":
        opened: list[SqliteBaseline] = []

        def sqlite(n: int) -> list[Any]:
            opened.extend(SqliteBaseline(tmp_path / "state.sqlite") for _ in range(n))
            return opened[-n:]

        yield sqlite
        for db in opened:
            db.close()
    else:
        client = request.getfixturevalue("dynamodb")
        # One writer thread: moto is not thread-safe (DynamoDB is; the threaded path is
        # tested in test_dynamodb_baseline.py through a serializing client).
        yield lambda n: [
            DynamoDbBaseline(client, BASELINE_TABLE, write_concurrency=1) for _ in range(n)
        ]


def test_lookup_returns_only_stored_keys(stores: Stores) -> None:
    (db,) = stores(1)
    assert db.lookup([A, B]) == {}
    assert db.claim([claim(A, T0, T0 + 60)]) == {A}
    assert db.lookup([A, B]) == {A: TupleState(T0, T0 + 60, T0 + 60 + FORGET)}
    assert db.lookup([]) == {}


def test_lookup_of_many_keys(stores: Stores) -> None:
    (db,) = stores(1)
    keys = [
        TupleKey("111111111111", f"arn:aws:iam::111111111111:user/u{i}", "sts:X")
        for i in range(250)
    ]
    assert db.claim([claim(k, T0 + i) for i, k in enumerate(keys)]) == set(keys)
    (other,) = stores(1)
    found = other.lookup([*keys, C])
    assert len(found) == 250
    assert found[keys[137]].first_seen == T0 + 137


def test_claim_is_idempotent(stores: Stores) -> None:
    (db,) = stores(1)
    assert db.claim([claim(A, T0), claim(C, T0)]) == {A, C}
    assert db.claim([claim(A, T0), claim(C, T0)]) == set()
    assert db.claim([claim(A, T0 + 3600)]) == set()  # still known: not expired by then
    assert db.lookup([A])[A].first_seen == T0


def test_two_workers_claiming_the_same_tuple_one_wins(stores: Stores) -> None:
    first, second = stores(2)
    won_first = first.claim([claim(A, T0), claim(B, T0)])
    won_second = second.claim([claim(A, T0 + 5), claim(B, T0 + 5), claim(C, T0 + 5)])
    assert won_first == {A, B}
    assert won_second == {C}
    assert first.lookup([A])[A].first_seen == T0


def test_expired_tuple_is_returned_and_can_be_reclaimed_by_event_time(stores: Stores) -> None:
    first, second = stores(2)
    assert first.claim([claim(A, T0, forget=100)]) == {A}
    # Expired by event time but still stored: lookup returns it as it is.
    assert second.lookup([A]) == {A: TupleState(T0, T0, T0 + 100)}
    assert second.claim([claim(A, T0 + 99)]) == set()  # before expiry: still known
    assert second.claim([claim(A, T0 + 100)]) == {A}  # at expiry: forgotten, new again
    assert first.claim([claim(A, T0 + 100)]) == set()  # the reclaim is claimed once too
    assert first.lookup([A])[A] == TupleState(T0 + 100, T0 + 100, T0 + 100 + FORGET)


def test_refresh_moves_forward_only(stores: Stores) -> None:
    first, second = stores(2)
    first.claim([claim(A, T0, T0 + 10)])
    second.refresh([claim(A, T0, T0 + 86_400)])
    (fresh,) = stores(1)
    assert fresh.lookup([A])[A] == TupleState(T0, T0 + 86_400, T0 + 86_400 + FORGET)
    first.refresh([claim(A, T0, T0 + 50)])  # older: changes nothing
    (fresh,) = stores(1)
    assert fresh.lookup([A])[A] == TupleState(T0, T0 + 86_400, T0 + 86_400 + FORGET)


def test_refresh_takes_the_maximum_of_each_attribute(stores: Stores) -> None:
    (db,) = stores(1)
    db.claim([claim(A, T0, T0, forget=FORGET)])
    # A later sighting under a shorter forget period: last_seen moves, expires_at does not.
    db.refresh([TupleClaim(A, T0, T0 + 500, T0 + 500 + 10)])
    (fresh,) = stores(1)
    assert fresh.lookup([A])[A] == TupleState(T0, T0 + 500, T0 + FORGET)


def test_refresh_never_creates_a_tuple(stores: Stores) -> None:
    (db,) = stores(1)
    db.refresh([claim(B, T0)])
    (fresh,) = stores(1)
    assert fresh.lookup([B]) == {}
    assert fresh.claim([claim(B, T0)]) == {B}


def test_observe_principals_keeps_the_earliest_sighting(stores: Stores) -> None:
    first, second = stores(2)
    alice, ci = A.principal_key, C.principal_key
    assert first.observe_principals({alice: T0 + 100}) == {alice: T0 + 100}
    assert second.observe_principals({alice: T0 + 50, ci: T0}) == {alice: T0 + 50, ci: T0}
    assert second.observe_principals({alice: T0 + 80}) == {alice: T0 + 50}
    (fresh,) = stores(1)
    assert fresh.observe_principals({alice: T0 + 999, ci: T0 + 1}) == {alice: T0 + 50, ci: T0}
    assert fresh.observe_principals({}) == {}


def test_observe_principals_account_rows(stores: Stores) -> None:
    (db,) = stores(1)
    account = PrincipalKey("111111111111", "*")
    assert db.observe_principals({account: T0, A.principal_key: T0 + 1}) == {
        account: T0,
        A.principal_key: T0 + 1,
    }


E1 = WindowEntry(T0, "iam.amazonaws.com:CreateUser", "us-east-1", "e1", "")
E2 = WindowEntry(T0 + 600, "iam.amazonaws.com:AttachUserPolicy", "us-east-1", "e2", "")
E3 = WindowEntry(T0 + 4000, "s3.amazonaws.com:GetObject", "eu-west-1", "e3", "AccessDenied")


class WindowStage:
    """A `Stage` that adds `entries` to the principal's window and records every call."""

    def __init__(self, *entries: WindowEntry, fail: bool = False) -> None:
        self.entries = entries
        self.fail = fail
        self.calls: list[tuple[PrincipalKey, frozenset[TupleKey], list[WindowEntry]]] = []

    def __call__(
        self, pkey: PrincipalKey, won: frozenset[TupleKey], window: Sequence[WindowEntry]
    ) -> Staged:
        self.calls.append((pkey, won, list(window)))
        if self.fail:
            raise RuntimeError("died while judging")
        after = merge_window(window, self.entries, 3600)
        return Staged(window=after, window_expires_at=after[-1].event_time + 3600)

    @property
    def seen(self) -> list[WindowEntry]:
        """The window the last call was given."""
        return self.calls[-1][2]


def test_a_claims_stage_is_given_the_stored_window_and_its_window_is_written_with_it(
    stores: Stores,
) -> None:
    first, second = stores(2)
    stage = WindowStage(E1)
    assert first.claim([claim(A, T0)], stage) == {A}
    assert stage.seen == []
    stage = WindowStage(E2, E1)
    assert second.claim([claim(B, T0 + 600)], stage) == {B}
    assert stage.seen == [E1]
    (fresh,) = stores(1)
    stage = WindowStage(E3)
    assert fresh.claim([claim(A, T0 + 4000, forget=1), claim(C, T0 + 4000)], stage) == {C}
    # C's window was empty. A won nothing: what a store asked about it (DynamoDB asks before
    # its transaction tells it that A is taken) is not written, as the last claim shows.
    assert (C.principal_key, frozenset({C}), []) in stage.calls
    # Without a new window (nothing alerted), the stored one stays as it is.
    key = TupleKey(A.account_id, A.principal, "ec2.amazonaws.com:DescribeVpcs")
    assert fresh.claim([claim(key, T0 + 700)], lambda p, won, w: Staged()) == {key}
    stage = WindowStage(E3)
    key = TupleKey(A.account_id, A.principal, "ec2.amazonaws.com:DescribeSubnets")
    assert fresh.claim([claim(key, T0 + 4000)], stage) == {key}
    assert stage.seen == [E1, E2]


def test_a_claim_that_does_not_commit_leaves_the_window_as_it_was(stores: Stores) -> None:
    first, second = stores(2)
    first.claim([claim(A, T0)], WindowStage(E1))
    with pytest.raises(RuntimeError):
        second.claim([claim(B, T0 + 600)], WindowStage(E2, fail=True))
    (fresh,) = stores(1)
    retry = WindowStage(E2)
    assert fresh.claim([claim(B, T0 + 600)], retry) == {B}  # unclaimed, and judged afresh
    assert retry.seen == [E1]  # not [E1, E2]: the failed claim left nothing in the window
    check = WindowStage(E3)
    assert fresh.claim([claim(C, T0), claim(A, T0, forget=0)], check) == {C}
    check = WindowStage(E3)
    key = TupleKey(A.account_id, A.principal, "ec2.amazonaws.com:DescribeVpcs")
    fresh.claim([claim(key, T0 + 4000)], check)
    assert check.seen == [E1, E2]


def test_merge_window_dedupes_sorts_and_keeps_the_newest_within_the_window() -> None:
    assert merge_window([], [E1], 3600) == [E1]
    assert merge_window([E1], [E2, E1], 3600) == [E1, E2]
    assert merge_window([E1, E2], [E3], 3600) == [E2, E3]  # E1: over an hour before E3
    assert merge_window([], [], 3600) == []


def test_merge_window_is_bounded_in_entries_and_bytes() -> None:
    many = [
        WindowEntry(T0 + i, f"ec2.amazonaws.com:Describe{i}", "us-east-1", f"e{i}", "")
        for i in range(2000)
    ]
    kept = merge_window([], many, 3600)
    assert kept == many[-MAX_WINDOW_ENTRIES:]
    huge = [
        WindowEntry(T0 + i, "s3.amazonaws.com:" + "\x01" * 300, "r" * 64, f"{i}", "x" * 128)
        for i in range(500)
    ]
    kept = merge_window([], huge, 3600)
    assert 0 < len(kept) < 500 and kept == huge[-len(kept) :]
    assert len(encode_window(kept)) <= MAX_WINDOW_BYTES


def _mark(subject: str, kind: str = "lineage", t: int = T0, alert: str = "a" * 32) -> Any:
    from cloudtrail_anomaly.domain.model import Mark, MarkKind, Severity

    return Mark(
        PrincipalKey("111111111111", subject),
        MarkKind(kind),
        A.principal,
        "iam.amazonaws.com:CreateUser" if kind == "lineage" else "",
        alert,
        Severity.HIGH,
        t,
        t + FORGET,
    )


def test_marks_staged_with_a_claim_are_written_in_its_transaction(stores: Stores) -> None:
    (db,) = stores(1)
    made = _mark("user/backdoor")
    alerted = _mark(A.principal, "alerted")

    db.claim([claim(A, T0)], lambda pkey, won, window: Staged(marks=[alerted, made]))

    (other,) = stores(1)  # another worker sees them
    assert other.marks([made.key, alerted.key, _mark("user/nobody").key]) == {
        made.key: made,
        alerted.key: alerted,
    }


def test_a_claim_that_wins_nothing_writes_no_marks(stores: Stores) -> None:
    (db,) = stores(1)
    db.claim([claim(A, T0)])
    made = _mark("user/backdoor")

    db.claim([claim(A, T0)], lambda pkey, won, window: Staged(marks=[made]))

    assert db.marks([made.key]) == {}


def test_put_marks_replaces_the_stored_mark_of_its_key(stores: Stores) -> None:
    (db,) = stores(1)
    first, second = _mark("role/x", t=T0), _mark("role/x", t=T0 + 60, alert="b" * 32)
    db.put_marks([first])
    db.put_marks([second])
    assert db.marks([first.key]) == {first.key: second}
