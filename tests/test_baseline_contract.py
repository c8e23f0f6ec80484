"""One behavioural contract for every `Baseline`: memory, SQLite, and DynamoDB (on moto).

Each test gets a `stores` factory: `stores(n)` returns n handles on ONE store, as n workers
(Lambda containers, CLI processes) would hold them: separate SQLite connections, separate
DynamoDB adapters with their own caches. The memory store has one handle, shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudtrail_anomaly.aws.dynamodb_baseline import DynamoDbBaseline, create_table
from cloudtrail_anomaly.baseline import MemoryBaseline
from cloudtrail_anomaly.model import PrincipalKey, TupleClaim, TupleKey, TupleState
from cloudtrail_anomaly.sqlite_baseline import SqliteBaseline
from moto import mock_aws

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
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client, "baseline")
            # One writer thread: moto is not thread-safe (DynamoDB is; the threaded path is
            # tested in test_dynamodb_baseline.py through a serializing client).
            yield lambda n: [
                DynamoDbBaseline(client, "baseline", write_concurrency=1) for _ in range(n)
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


def test_append_window_merges_and_drops_entries_older_than_the_window(stores: Stores) -> None:
    from cloudtrail_anomaly.policy import WindowEntry

    first, second = stores(2)
    alice = A.principal_key
    e1 = WindowEntry(T0, "iam.amazonaws.com:CreateUser", "us-east-1", "e1", "")
    e2 = WindowEntry(T0 + 600, "iam.amazonaws.com:AttachUserPolicy", "us-east-1", "e2", "")
    e3 = WindowEntry(T0 + 4000, "s3.amazonaws.com:GetObject", "eu-west-1", "e3", "AccessDenied")
    assert first.append_window(alice, [e1], 3600) == ([], [e1])
    assert second.append_window(alice, [e2, e1], 3600) == ([e1], [e1, e2])
    before, after = first.append_window(alice, [e3], 3600)
    assert before == [e1, e2]
    assert after == [e2, e3]  # e1 is more than an hour before the newest entry
    assert second.append_window(C.principal_key, [], 3600) == ([], [])
