"""The burst follow-up and enrichment under retries (issue 14, item 3), on every baseline.

A principal's claim may be tried more than once: DynamoDB runs its transaction again after a
`TransactionConflict`, and an object whose processing died before its claim committed is
delivered again. Staging is pure, so every try judges the same way: the burst window is written
in the claim's own transaction (a try that did not commit left nothing behind), and enrichment
is asked before the claim, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cloudtrail_anomaly.domain.alerts import Alert
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import RoleInfo
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import PendingAlert
from cloudtrail_anomaly.stores.dynamodb.baseline import DynamoDbBaseline
from cloudtrail_anomaly.stores.dynamodb.outbox import DynamoDbOutbox
from cloudtrail_anomaly.stores.memory import MemoryBaseline, MemoryOutbox, StaticEnrichment
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline

from tests.builders import ACCOUNT, T0, assumed_role, record
from tests.dynamo_tables import BASELINE_TABLE

MIN = 60
ACTIONS = [
    "ec2.amazonaws.com:DescribeVpcs",
    "ec2.amazonaws.com:DescribeSubnets",
    "ec2.amazonaws.com:DescribeVolumes",
    "ec2.amazonaws.com:DescribeSnapshots",
    "ec2.amazonaws.com:DescribeImages",
]
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/deploy"


class Crash(Exception):
    """The process dies: nothing after this point happens."""


def objects() -> list[list[dict[str, Any]]]:
    """Four objects of one role, the last of which brings its fifth new action within the
    hour: its per-object alert, then the burst follow-up."""
    ident = assumed_role("deploy", "ci")
    return [
        [record(ACTIONS[0], T0, ident), record(ACTIONS[1], T0 + MIN, ident)],
        [record(ACTIONS[2], T0 + 20 * MIN, ident)],
        [record(ACTIONS[3], T0 + 40 * MIN, ident)],
        [record(ACTIONS[4], T0 + 59 * MIN, ident)],
    ]


class FaultyStore:
    """One store and handles on it, as restarted processes hold them; `crash_next_commit` makes
    the next claim die after judging and staging, before its transaction commits, and
    `conflict_next_commit` makes DynamoDB's next transaction fail once with a conflict."""

    def __init__(self, kind: str, tmp_path: Path, dynamodb: Any = None) -> None:
        self.kind = kind
        self.crash = False
        self.conflict = False
        self.conflicts = 0
        if kind == "memory":
            self._memory = MemoryBaseline(_CrashingOutbox(self))
        elif kind == "sqlite":
            self._path = tmp_path / "state.sqlite"
        else:
            self._client = dynamodb  # conftest's: a moto client with the baseline's table

    def open(self) -> Any:
        if self.kind == "memory":
            return self._memory
        if self.kind == "sqlite":
            return _CrashingSqlite(self._path, self)
        return DynamoDbBaseline(
            _FaultyClient(self._client, self), BASELINE_TABLE, write_concurrency=1
        )

    def pending(self) -> list[PendingAlert]:
        if self.kind == "memory":
            return self._memory.outbox.pending()
        if self.kind == "sqlite":
            return SqliteBaseline(self._path).pending()
        return DynamoDbOutbox(self._client, BASELINE_TABLE).pending()

    def take_crash(self) -> bool:
        crash, self.crash = self.crash, False
        return crash


class _CrashingOutbox(MemoryOutbox):
    def __init__(self, faults: FaultyStore) -> None:
        super().__init__()
        self._faults = faults

    def stage(self, alerts: Sequence[PendingAlert]) -> None:
        if self._faults.take_crash():
            raise Crash("died before the claim was written")
        super().stage(alerts)


class _CrashingSqlite(SqliteBaseline):
    def __init__(self, path: Path, faults: FaultyStore) -> None:
        super().__init__(path)
        self._faults = faults

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        faults = self._faults
        real_stage = self._stage

        def staging(db: Any, alerts: Sequence[PendingAlert]) -> None:
            real_stage(db, alerts)
            if faults.take_crash():
                raise Crash("died before COMMIT")

        self._stage = staging  # type: ignore[method-assign]
        try:
            return super().claim(*args, **kwargs)
        finally:
            del self._stage


class _FaultyClient:
    def __init__(self, inner: Any, faults: FaultyStore) -> None:
        self._inner = inner
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        faults = self._faults
        if faults.take_crash():
            raise Crash("died before the transaction committed")
        if faults.conflict:
            faults.conflict = False
            faults.conflicts += 1
            n = len(kwargs["TransactItems"])
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}] * (n - 1)
                    + [{"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return self._inner.transact_write_items(**kwargs)


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FaultyStore]:
    if request.param == "dynamodb":
        yield FaultyStore("dynamodb", tmp_path, request.getfixturevalue("dynamodb"))
    else:
        yield FaultyStore(request.param, tmp_path)


class CountingEnricher(StaticEnrichment):
    def __init__(self) -> None:
        super().__init__(
            accounts={ACCOUNT: "prod"},
            owners={ACCOUNT: "owner@example.com"},
            roles={ROLE_ARN: RoleInfo(ROLE_ARN, created=T0 - 400 * 86_400)},
        )
        self.calls: dict[str, list[str]] = {
            "role_info": [],
            "account_name": [],
            "account_owner": [],
        }

    def account_name(self, account_id: str) -> str | None:
        self.calls["account_name"].append(account_id)
        return super().account_name(account_id)

    def account_owner(self, account_id: str) -> str | None:
        self.calls["account_owner"].append(account_id)
        return super().account_owner(account_id)

    def role_info(self, role_arn: str) -> RoleInfo | None:
        self.calls["role_info"].append(role_arn)
        return super().role_info(role_arn)


def detector(baseline: Any, enricher: CountingEnricher | None = None) -> Detector:
    return Detector(baseline, AlertPolicy(PolicySettings(learning_days=0)), enricher=enricher)


def bursts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.detector == "new_action_burst"]


def run_until_last(store: FaultyStore) -> list[Alert]:
    alerts: list[Alert] = []
    for n, records in enumerate(objects()[:-1]):
        alerts += detector(store.open()).process(records, f"object-{n}").alerts
    return alerts


def test_a_claim_that_conflicts_once_still_emits_the_burst(tmp_path: Path, dynamodb: Any) -> None:
    store = FaultyStore("dynamodb", tmp_path, dynamodb)
    alerts = run_until_last(store)
    store.conflict = True
    result = detector(store.open()).process(objects()[-1], "object-3")
    assert store.conflicts == 1  # the transaction ran twice
    burst = bursts(result.alerts)
    assert len(burst) == 1
    assert sorted(e.action for e in burst[0].new_actions) == sorted(ACTIONS)
    assert bursts(alerts) == []
    staged = {p.alert_id for p in store.pending()}
    assert burst[0].alert_id in staged


def test_a_redelivery_after_a_crash_before_the_commit_bursts_exactly_once(
    store: FaultyStore,
) -> None:
    alerts = run_until_last(store)
    store.crash = True
    with pytest.raises(Crash):
        detector(store.open()).process(objects()[-1], "object-3")
    # The object is delivered again, to a fresh process.
    retried = detector(store.open()).process(objects()[-1], "object-3")
    alerts += retried.alerts
    assert len(bursts(alerts)) == 1
    assert sorted(e.action for e in bursts(alerts)[0].new_actions) == sorted(ACTIONS)
    # And once more, as a duplicate delivery: nothing new, no second burst.
    again = detector(store.open()).process(objects()[-1], "object-3")
    assert again.alerts == []
    staged = [p.alert_id for p in store.pending()]
    assert bursts(alerts)[0].alert_id in staged
    assert len(staged) == len(set(staged)) == 5  # four per-object alerts and one burst


def test_enrichment_is_asked_once_per_principal_however_often_the_claim_runs(
    tmp_path: Path,
    dynamodb: Any,
) -> None:
    store = FaultyStore("dynamodb", tmp_path, dynamodb)
    run_until_last(store)
    enricher = CountingEnricher()
    store.conflict = True
    result = detector(store.open(), enricher).process(objects()[-1], "object-3")
    assert store.conflicts == 1
    assert {a.detector for a in result.alerts} == {"new_action", "new_action_burst"}
    assert enricher.calls == {
        "role_info": [ROLE_ARN],
        "account_name": [ACCOUNT],
        "account_owner": [ACCOUNT],
    }
    assert all(a.account_name == "prod" for a in result.alerts)
    (alert,) = [a for a in result.alerts if a.detector == "new_action"]
    assert alert.role_created == T0 - 400 * 86_400


def test_enrichment_is_asked_before_the_claim_not_inside_it(store: FaultyStore) -> None:
    """Whatever the store, the claim's staging makes no call: a stage that ran twice (or that
    a crash cut short) never asks twice."""
    enricher = CountingEnricher()
    calls_at_claim: list[int] = []
    baseline = store.open()
    claim: Callable[..., Any] = baseline.claim

    def counting_claim(*args: Any, **kwargs: Any) -> Any:
        calls_at_claim.append(sum(len(c) for c in enricher.calls.values()))
        won = claim(*args, **kwargs)
        calls_at_claim.append(sum(len(c) for c in enricher.calls.values()))
        return won

    baseline.claim = counting_claim
    detector(baseline, enricher).process(objects()[0], "object-0")
    assert calls_at_claim[0] == calls_at_claim[1] == 3  # all before the claim, none during
