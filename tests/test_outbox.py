"""The outbox contract, on memory, SQLite and DynamoDB (moto): alerts staged with their claims,
atomically; pending until delivered; never re-opened once delivered or dead-lettered."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import PrincipalKey, TupleClaim, TupleKey, WindowEntry
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import PendingAlert, Staged
from cloudtrail_anomaly.stores.dynamodb.baseline import DynamoDbBaseline
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox
from cloudtrail_anomaly.stores.memory import MemoryBaseline
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline

from tests.dynamo_tables import BASELINE_TABLE

ALICE = "arn:aws:iam::111111111111:user/alice"
A = TupleKey("111111111111", ALICE, "iam.amazonaws.com:CreateUser")
B = TupleKey("111111111111", ALICE, "iam.amazonaws.com:CreateAccessKey")
T0 = 1_700_000_000

# A pair of (baseline, outbox) handles on one store; calling it again gives a new pair on the
# same store, as a restarted process would have.
Open = Callable[[], tuple[Any, Any]]


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    if request.param == "memory":
        shared = MemoryBaseline()
        yield lambda: (shared, shared.outbox)
    elif request.param == "sqlite":

        def sqlite() -> tuple[Any, Any]:
            db = SqliteBaseline(tmp_path / "state.sqlite")
            return db, db

        yield sqlite
    else:
        client = request.getfixturevalue("dynamodb")
        yield lambda: (
            DynamoDbBaseline(client, BASELINE_TABLE, write_concurrency=1),  # moto: one thread
            DynamoDbOutbox(client, BASELINE_TABLE),
        )


def pending(alert_id: str, t: int = T0) -> PendingAlert:
    return PendingAlert(alert_id, t, "high", orjson.dumps({"alert_id": alert_id}))


def claims(*keys: TupleKey) -> list[TupleClaim]:
    return [TupleClaim(k, T0, T0, T0 + 86_400) for k in keys]


def test_claim_stages_the_principals_alert_in_the_same_write(store: Open) -> None:
    baseline, _ = store()
    calls: list[tuple[PrincipalKey, frozenset[TupleKey]]] = []

    def stage(
        pkey: PrincipalKey, won: frozenset[TupleKey], window: Sequence[WindowEntry]
    ) -> Staged:
        calls.append((pkey, won))
        return Staged([pending("a1")])

    assert baseline.claim(claims(A, B), stage) == {A, B}
    assert calls[-1] == (A.principal_key, frozenset({A, B}))
    _, reopened = store()
    assert [p.alert_id for p in reopened.pending()] == ["a1"]


def test_stage_sees_only_the_keys_it_wins(store: Open) -> None:
    baseline, outbox = store()
    baseline.claim(claims(A))
    seen: list[frozenset[TupleKey]] = []
    baseline.claim(claims(A, B), lambda p, won, w: seen.append(won) or Staged([pending("b")]))
    assert seen[-1] == frozenset({B})
    # Nothing new at all: whatever stage says is not written (DynamoDB asks it optimistically,
    # before the transaction tells it the keys are taken; SQLite and memory do not ask).
    assert baseline.claim(claims(A, B), lambda p, won, w: Staged([pending("never")])) == set()
    assert "never" not in [p.alert_id for p in outbox.pending()]


def test_a_failing_stage_claims_nothing(store: Open) -> None:
    """The crash-between-claim-and-alert case: if judging fails, the tuples stay unclaimed, so
    the retry judges and alerts them; nothing is claimed without its alert."""
    baseline, outbox = store()

    def boom(pkey: PrincipalKey, won: frozenset[TupleKey], window: Sequence[WindowEntry]) -> Staged:
        raise RuntimeError("crash while judging")

    with pytest.raises(RuntimeError):
        baseline.claim(claims(A, B), boom)
    again, _ = store()
    assert again.lookup([A, B]) == {}
    assert again.claim(claims(A, B), lambda p, won, w: Staged([pending("retry")])) == {A, B}
    assert [p.alert_id for p in outbox.pending()] == ["retry"]


def test_pending_until_delivered_and_never_reopened(store: Open) -> None:
    _, outbox = store()
    outbox.stage([pending("late", T0 + 10), pending("early", T0)])
    outbox.stage([pending("early", T0)])  # idempotent
    assert [p.alert_id for p in outbox.pending()] == ["early", "late"]
    outbox.record_failure(["early"], "HEC 503")
    (early, _) = outbox.pending()
    assert (early.attempts, early.last_error) == (1, "HEC 503")
    outbox.mark_delivered(["early"])
    outbox.stage([pending("early", T0)])  # a re-detection must not resend a delivered alert
    assert [p.alert_id for p in outbox.pending()] == ["late"]
    outbox.dead_letter("late", "HEC code 6: invalid data format")
    outbox.stage([pending("late", T0 + 10)])
    assert outbox.pending() == []
    (dead, reason) = outbox.dead_letters()[0]
    assert dead.alert_id == "late" and "code 6" in reason


def test_detector_alerts_are_pending_after_a_crash_before_delivery(store: Open) -> None:
    """End to end through the detector: the alert exists in the outbox as soon as the claim
    committed, whether or not anything was ever delivered."""
    baseline, _ = store()
    record = {
        "eventTime": "2023-11-14T22:13:20Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "eventID": "e-1",
        "userIdentity": {"type": "IAMUser", "arn": ALICE, "accountId": "111111111111"},
    }
    detector = Detector(baseline, AlertPolicy(PolicySettings(learning_days=0)))
    result = detector.process([record], "obj-1")
    (alert,) = result.alerts
    # "crash": the process dies here, before any delivery. A new process finds it pending.
    _, outbox = store()
    (staged,) = outbox.pending()
    assert staged.alert_id == alert.alert_id
    assert orjson.loads(staged.document) == alert.to_dict()
    # And replaying the object stages nothing new.
    assert detector.process([record], "obj-1").alerts == []
    assert [p.alert_id for p in outbox.pending()] == [alert.alert_id]


def test_a_lease_lets_one_sender_at_a_time_send_an_alert(store: Open) -> None:
    _, outbox = store()
    outbox.stage([pending("a"), pending("b")])
    assert outbox.lease(["a", "b"], until=1_000.0, now=500.0) == ["a", "b"]
    _, other = store()
    assert other.lease(["a", "b", "gone"], until=1_100.0, now=600.0) == []  # held until 1000
    outbox.record_failure(["a"], "HEC 503")  # a failed attempt gives the lease back
    assert other.lease(["a", "b"], until=1_100.0, now=600.0) == ["a"]
    assert other.lease(["b"], until=2_100.0, now=1_000.0) == ["b"]  # an expired lease
    other.mark_delivered(["b"])
    assert outbox.lease(["b"], until=9_999.0, now=5_000.0) == []  # delivered: never again
