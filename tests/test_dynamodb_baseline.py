"""The DynamoDB adapter's own promises (the shared behaviour is in test_baseline_contract.py):
item layout and TTL type, request counts cold and warm, UnprocessedKeys, throttling, races."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import decode_str
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import (
    PrincipalKey,
    TupleClaim,
    TupleKey,
    TupleState,
    WindowEntry,
)
from cloudtrail_anomaly.domain.policy import AlertPolicy
from cloudtrail_anomaly.domain.window import merge_window
from cloudtrail_anomaly.ports import PendingAlert, Staged
from cloudtrail_anomaly.stores.dynamodb.baseline import BaselineUnavailable, DynamoDbBaseline
from cloudtrail_anomaly.stores.dynamodb.cache import LruCache
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox

from tests.dynamo_tables import BASELINE_TABLE, LEDGER_TABLE

TABLE = BASELINE_TABLE
RESOURCES = Path(__file__).parents[1] / "infra" / "resources.yml"
T0 = 1_700_000_000
ALICE = "arn:aws:iam::111111111111:user/alice"
A = TupleKey("111111111111", ALICE, "iam.amazonaws.com:CreateUser")


class Wrapped:
    """A client that delegates to the real (moto) one, for overriding single operations."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Serialized(Wrapped):
    """Every call atomic, as each DynamoDB request is: moto's backend is not thread-safe."""

    lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(**kwargs: Any) -> Any:
            with self.lock:
                return method(**kwargs)

        return call


def _claim(key: TupleKey, t: int = T0) -> TupleClaim:
    return TupleClaim(key, t, t, t + 90 * 86_400)


def _keys(n: int, action: str = "sts.amazonaws.com:GetCallerIdentity") -> list[TupleKey]:
    return [
        TupleKey("111111111111", f"arn:aws:iam::111111111111:role/r{i}", action) for i in range(n)
    ]


def test_item_layout_and_ttl_is_a_number(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    db.claim([TupleClaim(A, T0, T0 + 5, T0 + 5 + 90 * 86_400)])
    db.observe_principals({A.principal_key: T0})
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"P#111111111111#{ALICE}"}, "sk": {"S": f"A#{A.action}"}}
    )["Item"]
    assert item["expires_at"] == {"N": str(T0 + 5 + 90 * 86_400)}
    assert item["first_seen"] == {"N": str(T0)}
    assert item["last_seen"] == {"N": str(T0 + 5)}
    first = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": f"P#111111111111#{ALICE}"}, "sk": {"S": "#first_seen"}}
    )["Item"]
    assert first["first_seen"] == {"N": str(T0)}
    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_the_tests_tables_are_the_one_the_template_declares(dynamodb: Any) -> None:
    """tests/dynamo_tables.py makes the table infra/resources.yml deploys (the baseline, the
    outbox and the ledger share it): the tests run on its key schema, billing and TTL."""
    template, problems = decode_str(RESOURCES.read_text())
    assert not problems and template is not None
    declared = template["Resources"]["BaselineTable"]["Properties"]
    for table in (BASELINE_TABLE, LEDGER_TABLE):
        made = dynamodb.describe_table(TableName=table)["Table"]
        assert made["KeySchema"] == declared["KeySchema"]
        assert sorted(made["AttributeDefinitions"], key=str) == sorted(
            declared["AttributeDefinitions"], key=str
        )
        assert made["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert declared["TimeToLiveSpecification"] == {
            "AttributeName": ttl["AttributeName"],
            "Enabled": ttl["TimeToLiveStatus"] == "ENABLED",
        }


def test_lookups_are_batched_by_100(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    keys = _keys(250)
    assert db.lookup(keys) == {}
    assert db.request_counts == {"BatchGetItem": 3}


def test_a_warm_container_makes_no_request_for_tuples_it_knows(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    keys = _keys(150)
    db.claim([_claim(k) for k in keys])
    db.observe_principals({k.principal_key: T0 for k in keys})
    before = db.requests
    assert len(db.lookup(keys)) == 150
    assert db.observe_principals({k.principal_key: T0 + 60 for k in keys}) == {
        k.principal_key: T0 for k in keys
    }
    assert db.requests == before
    assert db.cache_hits == 150

    cold = DynamoDbBaseline(dynamodb, TABLE)
    assert len(cold.lookup(keys)) == 150
    assert cold.request_counts == {"BatchGetItem": 2}
    cold.lookup(keys)
    assert cold.request_counts == {"BatchGetItem": 2}


def test_detector_on_a_warm_container_costs_nothing_the_second_time(dynamodb: Any) -> None:
    records = [
        {
            "eventTime": f"2024-06-01T00:0{i}:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "recipientAccountId": "111111111111",
            "userIdentity": {"type": "IAMUser", "arn": ALICE, "accountId": "111111111111"},
        }
        for i, name in enumerate(["ListUsers", "GetUser", "ListRoles"])
    ]
    db = DynamoDbBaseline(dynamodb, TABLE)
    detector = Detector(db, AlertPolicy())
    detector.process(records, "first")
    cold = db.requests
    assert cold > 0
    result = detector.process(records, "second")
    assert db.requests == cold
    assert result.stats["new_tuples"] == 0


def test_unprocessed_keys_are_retried_with_backoff(dynamodb: Any) -> None:
    class Throttled(Wrapped):
        calls = 0

        def batch_get_item(self, RequestItems: Any) -> Any:
            self.calls += 1
            spec = RequestItems[TABLE]
            if self.calls == 1:  # DynamoDB hands back part of the batch under load
                half = spec["Keys"][: len(spec["Keys"]) // 2]
                rest = spec["Keys"][len(half) :]
                resp = self._inner.batch_get_item(RequestItems={TABLE: {**spec, "Keys": half}})
                resp["UnprocessedKeys"] = {TABLE: {"Keys": rest}}
                return resp
            return self._inner.batch_get_item(RequestItems=RequestItems)

    keys = _keys(40)
    DynamoDbBaseline(dynamodb, TABLE).claim([_claim(k) for k in keys])
    sleeps: list[float] = []
    db = DynamoDbBaseline(Throttled(dynamodb), TABLE, sleep=sleeps.append)
    assert len(db.lookup(keys)) == 40
    assert db.request_counts == {"BatchGetItem": 2}
    assert len(sleeps) == 1


def test_keys_that_stay_unprocessed_fail_the_object(dynamodb: Any) -> None:
    class AlwaysThrottled(Wrapped):
        def batch_get_item(self, RequestItems: Any) -> Any:
            return {"Responses": {}, "UnprocessedKeys": RequestItems}

    db = DynamoDbBaseline(
        AlwaysThrottled(dynamodb), TABLE, max_batch_attempts=4, sleep=lambda s: None
    )
    with pytest.raises(BaselineUnavailable, match="unprocessed after 4 attempts"):
        db.lookup(_keys(3))


def test_a_claim_that_fails_after_retries_is_reported_not_swallowed(dynamodb: Any) -> None:
    class Throttling(Wrapped):
        def put_item(self, **kwargs: Any) -> Any:
            if "iam" in kwargs["Item"]["sk"]["S"]:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ProvisionedThroughputExceededException",
                            "Message": "slow",
                        }
                    },
                    "PutItem",
                )
            return self._inner.put_item(**kwargs)

    db = DynamoDbBaseline(Throttling(dynamodb), TABLE)
    ok = TupleKey(
        "111111111111", "arn:aws:iam::111111111111:user/bob", "s3.amazonaws.com:GetObject"
    )
    assert db.claim([_claim(A), _claim(ok)]) == {ok}
    assert db.errors == {"claim.ProvisionedThroughputExceededException": 1}
    assert db.take_failed_claims() == 1
    assert db.take_failed_claims() == 0
    # The retry of the object claims what failed, and nothing twice.
    retry = DynamoDbBaseline(dynamodb, TABLE)
    assert retry.claim([_claim(A), _claim(ok)]) == {A}


def test_a_principals_new_tuples_are_claimed_all_or_nothing(dynamodb: Any) -> None:
    keys = [TupleKey("111111111111", ALICE, f"iam.amazonaws.com:Action{i}") for i in range(5)]
    rival, db = DynamoDbBaseline(dynamodb, TABLE), DynamoDbBaseline(dynamodb, TABLE)
    assert rival.claim([_claim(keys[2])]) == {keys[2]}
    # One transaction for alice's five tuples; the one the rival holds is dropped, and the
    # other four are claimed together.
    assert db.claim([_claim(k) for k in keys]) == set(keys) - {keys[2]}
    assert db.request_counts == {"TransactWriteItems": 2}
    assert db.claim([_claim(k) for k in keys]) == set()
    assert db.lookup(keys)[keys[2]] == TupleState(T0, T0, T0 + 90 * 86_400)


def test_a_claim_transaction_that_keeps_failing_is_reported(dynamodb: Any) -> None:
    class Conflicting(Wrapped):
        def transact_write_items(self, **kwargs: Any) -> Any:
            n = len(kwargs["TransactItems"])
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}] * n,
                },
                "TransactWriteItems",
            )

    db = DynamoDbBaseline(Conflicting(dynamodb), TABLE, max_batch_attempts=3, sleep=lambda s: None)
    keys = [TupleKey("111111111111", ALICE, f"iam.amazonaws.com:Action{i}") for i in range(3)]
    assert db.claim([_claim(k) for k in keys]) == set()
    assert db.take_failed_claims() == 3
    assert db.request_counts == {"TransactWriteItems": 3}


def test_a_lost_claim_remembers_the_winners_state(dynamodb: Any) -> None:
    winner, loser = DynamoDbBaseline(dynamodb, TABLE), DynamoDbBaseline(dynamodb, TABLE)
    assert winner.claim([_claim(A, T0)]) == {A}
    assert loser.claim([_claim(A, T0 + 10)]) == set()
    before = loser.requests
    assert loser.lookup([A]) == {A: TupleState(T0, T0, T0 + 90 * 86_400)}
    assert loser.requests == before


def test_an_item_past_its_ttl_but_not_yet_deleted_is_new_again(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    db.claim([TupleClaim(A, T0, T0, T0 + 100)])  # DynamoDB may keep it for days after that
    later = DynamoDbBaseline(dynamodb, TABLE)
    assert later.lookup([A])[A].expires_at == T0 + 100
    assert later.claim([_claim(A, T0 + 100)]) == {A}


def test_keys_beyond_dynamodb_limits_are_hashed(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    long = TupleKey(
        "111111111111", "web-identity:idp:" + "x" * 3000, "s3.amazonaws.com:" + "y" * 2000
    )
    assert db.claim([_claim(long)]) == {long}
    assert DynamoDbBaseline(dynamodb, TABLE).lookup([long])[long].first_seen == T0
    assert db.observe_principals({long.principal_key: T0}) == {long.principal_key: T0}


def test_racing_containers_claim_each_tuple_once(dynamodb: Any) -> None:
    keys = _keys(60, "ec2.amazonaws.com:RunInstances")
    containers = [DynamoDbBaseline(Serialized(dynamodb), TABLE) for _ in range(4)]
    start = threading.Barrier(len(containers))

    def run(db: DynamoDbBaseline) -> set[TupleKey]:
        start.wait()
        return db.claim([_claim(k) for k in keys])

    with ThreadPoolExecutor(len(containers)) as pool:
        won = list(pool.map(run, containers))
    assert sum(len(w) for w in won) == len(keys)
    assert set().union(*won) == set(keys)


def test_refresh_is_skipped_when_the_store_is_already_ahead(dynamodb: Any) -> None:
    ahead, behind = DynamoDbBaseline(dynamodb, TABLE), DynamoDbBaseline(dynamodb, TABLE)
    ahead.claim([_claim(A, T0)])
    behind.lookup([A])
    ahead.refresh([_claim(A, T0 + 5 * 86_400)])
    behind.refresh([_claim(A, T0 + 86_400)])  # stale view: the condition keeps the newer one
    assert DynamoDbBaseline(dynamodb, TABLE).lookup([A])[A].last_seen == T0 + 5 * 86_400
    assert behind.lookup([A])[A].last_seen == T0 + 5 * 86_400  # and it learned the newer one


def _stored(dynamodb: Any, keys: list[TupleKey]) -> dict[TupleKey, TupleState]:
    return DynamoDbBaseline(dynamodb, TABLE).lookup(keys)


def test_deferred_refreshes_wait_for_flush_and_go_100_a_transaction(dynamodb: Any) -> None:
    keys = _keys(150)
    DynamoDbBaseline(dynamodb, TABLE).claim([_claim(k) for k in keys])
    # One thread: moto's transactions are not thread-safe (DynamoDB's are).
    db = DynamoDbBaseline(dynamodb, TABLE, write_concurrency=1)
    db.lookup(keys)
    db.hold_refreshes()  # a batch begins
    later = T0 + 8 * 86_400
    for k in keys[:60]:  # one object's refreshes at a time, as the detector hands them over
        db.refresh([_claim(k, later)])
    db.refresh([_claim(keys[0], later + 5)])  # seen again in a later object: held once
    assert db.request_counts == {"BatchGetItem": 2}  # the lookup's: nothing written yet
    assert db.deferred == 60
    assert _stored(dynamodb, keys[:1])[keys[0]].last_seen == T0
    # The cache already has the new state: the detector does not refresh them again.
    assert db.lookup(keys[:1])[keys[0]].last_seen == later + 5
    # 100 or more held: a full transaction is written at once, the rest held on (not sent
    # in a part-full one).
    db.refresh([_claim(k, later) for k in keys[60:]])
    assert db.request_counts == {"BatchGetItem": 2, "TransactWriteItems": 1}
    assert db.deferred == 50
    assert _stored(dynamodb, keys[:1])[keys[0]].last_seen == later + 5  # among the first 100
    db.flush()  # the batch ends: the rest
    assert db.request_counts == {"BatchGetItem": 2, "TransactWriteItems": 2}  # 100 + 50
    assert db.deferred == 0
    stored = _stored(dynamodb, keys)
    assert stored[keys[0]] == TupleState(T0, later + 5, later + 5 + 90 * 86_400)
    assert all(stored[k] == TupleState(T0, later, later + 90 * 86_400) for k in keys[1:])
    db.flush()  # nothing held: no request
    assert db.request_counts == {"BatchGetItem": 2, "TransactWriteItems": 2}


def test_a_deferred_refresh_never_moves_a_tuple_back_or_brings_it_back(dynamodb: Any) -> None:
    keys = _keys(5)
    DynamoDbBaseline(dynamodb, TABLE).claim([_claim(k) for k in keys])
    db = DynamoDbBaseline(dynamodb, TABLE)
    db.lookup(keys)
    db.hold_refreshes()
    # Meanwhile another container saw keys[1] later, and keys[2]'s item expired and is gone.
    DynamoDbBaseline(dynamodb, TABLE).refresh([_claim(keys[1], T0 + 20 * 86_400)])
    dynamodb.delete_item(
        TableName=TABLE,
        Key={
            "pk": {"S": f"P#111111111111#{keys[2].principal}"},
            "sk": {"S": f"A#{keys[2].action}"},
        },
    )
    db.refresh([_claim(k, T0 + 10 * 86_400) for k in keys])
    db.flush()
    stored = _stored(dynamodb, keys)
    assert stored[keys[1]].last_seen == T0 + 20 * 86_400
    assert keys[2] not in stored
    assert {stored[k].last_seen for k in (keys[0], keys[3], keys[4])} == {T0 + 10 * 86_400}
    assert db.lookup([keys[1]])[keys[1]].last_seen == T0 + 20 * 86_400  # learned, no request
    assert db.errors == {}
    # Two transactions (the second without the two that failed their condition), and one
    # update each for those two.
    assert db.request_counts["TransactWriteItems"] == 2
    assert db.request_counts["UpdateItem"] == 2


def test_deferred_refreshes_that_cannot_be_written_are_counted_and_read_again(
    dynamodb: Any,
) -> None:
    class Failing(Wrapped):
        def transact_write_items(self, **kwargs: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "down"}},
                "TransactWriteItems",
            )

    keys = _keys(3)
    DynamoDbBaseline(dynamodb, TABLE).claim([_claim(k) for k in keys])
    db = DynamoDbBaseline(Failing(dynamodb), TABLE)
    db.lookup(keys)
    db.hold_refreshes()
    db.refresh([_claim(k, T0 + 8 * 86_400) for k in keys])
    db.flush()
    assert db.errors == {"refresh.InternalServerError": 3}
    assert _stored(dynamodb, keys)[keys[0]].last_seen == T0
    # Not in the cache any more: the next lookup reads the stored state, so that the next
    # sighting refreshes the tuple again.
    before = db.request_counts["BatchGetItem"]
    assert db.lookup(keys)[keys[0]].last_seen == T0
    assert db.request_counts["BatchGetItem"] == before + 1


def test_observe_principals_reads_before_it_writes(dynamodb: Any) -> None:
    db = DynamoDbBaseline(dynamodb, TABLE)
    keys = {PrincipalKey("111111111111", f"role/r{i}"): T0 + i for i in range(30)}
    db.observe_principals(keys)
    assert db.request_counts == {"BatchGetItem": 1, "UpdateItem": 30}
    later = DynamoDbBaseline(dynamodb, TABLE)
    assert later.observe_principals({k: t + 100 for k, t in keys.items()}) == keys
    assert later.request_counts == {"BatchGetItem": 1}  # all known and earlier: no write


def test_lru_cache_is_bounded() -> None:
    cache: LruCache[int, int] = LruCache(3)
    for i in range(5):
        cache.put(i, i)
    assert cache.get(0) is None
    assert cache.get(2) == 2
    cache.put(5, 5)  # 3 was the least recently used, since 2 was just read
    assert cache.get(3) is None
    assert len(cache) == 3


# -- a claim's burst window and alerts, written in its transaction ---------------------------

E1 = WindowEntry(T0, "iam.amazonaws.com:CreateUser", "us-east-1", "e1", "")
E2 = WindowEntry(T0 + 60, "s3.amazonaws.com:GetObject", "us-east-1", "e2", "")


def _pending(alert_id: str) -> PendingAlert:
    return PendingAlert(alert_id, T0, "high", b"{}")


def test_a_window_another_writer_changed_meanwhile_is_judged_again(dynamodb: Any) -> None:
    """The window is read before the transaction and written only over the version read: a
    rival's window is never overwritten, and the judgement is made again over it."""
    db, rival = DynamoDbBaseline(dynamodb, TABLE), DynamoDbBaseline(dynamodb, TABLE)
    b = TupleKey("111111111111", ALICE, "s3.amazonaws.com:GetObject")
    seen: list[list[WindowEntry]] = []

    def stage(pkey: PrincipalKey, won: frozenset[TupleKey], window: Any) -> Staged:
        seen.append(list(window))
        if len(seen) == 1:  # meanwhile another container claims b for alice, with its window
            rival.claim([_claim(b)], lambda p, k, w: Staged(window=[*w, E2], window_expires_at=1))
        return Staged([_pending("a")], merge_window(window, [E1], 3600), T0 + 3600)

    assert db.claim([_claim(A)], stage) == {A}
    assert seen == [[], [E2]]
    check: list[list[WindowEntry]] = []
    c = TupleKey("111111111111", ALICE, "ec2.amazonaws.com:DescribeVpcs")
    DynamoDbBaseline(dynamodb, TABLE).claim(
        [_claim(c)], lambda p, k, w: check.append(list(w)) or Staged()
    )
    assert check == [[E1, E2]]
    assert [p.alert_id for p in DynamoDbOutbox(dynamodb, TABLE).pending()] == ["a"]


def test_a_principal_claimed_in_several_transactions_is_alerted_in_full_by_the_first(
    dynamodb: Any,
) -> None:
    """More new tuples than one transaction holds: the first transaction carries the alert,
    judged over all of them, so a later transaction that fails loses no report (the retry
    claims the rest and reports it again)."""

    class SecondFails(Wrapped):
        calls = 0

        def transact_write_items(self, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == 2:
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "down"}},
                    "TransactWriteItems",
                )
            return self._inner.transact_write_items(**kwargs)

    keys = [
        TupleKey("111111111111", ALICE, f"ec2.amazonaws.com:Describe{i:03d}") for i in range(250)
    ]
    staged: list[frozenset[TupleKey]] = []

    def stage(pkey: PrincipalKey, won: frozenset[TupleKey], window: Any) -> Staged:
        staged.append(won)
        return Staged([_pending(f"alert-{len(won)}")])

    db = DynamoDbBaseline(SecondFails(dynamodb), TABLE)
    claimed = db.claim([_claim(k) for k in keys], stage)
    assert staged == [frozenset(keys)]  # once: the first transaction, over all 250
    assert [p.alert_id for p in DynamoDbOutbox(dynamodb, TABLE).pending()] == ["alert-250"]
    second = set(keys[88:176])  # 100 items a transaction, 12 kept for alerts, window and marks
    assert claimed == set(keys) - second
    assert db.take_failed_claims() == 88
    retry = DynamoDbBaseline(dynamodb, TABLE)
    assert retry.claim([_claim(k) for k in keys], stage) == second
    assert staged[-1] == second
