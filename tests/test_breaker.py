"""A Splunk outage does not hold detection up: after one failed delivery round an invocation
stops calling the sink (the deliverer's circuit opens), every object is still detected, staged
and recorded, and the alerts wait in the outbox until HEC is back.

The collector is the real local HEC of tests/hec_server.py answering 503 to everything; sleeps
and the monotonic clock of the sink are simulated (FakeTime), so a 30 s retry budget costs
nothing here, but how much of it was spent is exact.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from cloudtrail_anomaly.app.realtime_function import RealtimeFunction
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import DeliveryReport, ObjectRef, PendingAlert
from cloudtrail_anomaly.sinks.splunk_hec import HecSettings, SplunkHecSink
from cloudtrail_anomaly.stores.memory import MemoryBaseline, MemoryLedger
from cloudtrail_anomaly.usecases.deliver import Deliverer
from cloudtrail_anomaly.usecases.ingest import RealtimeProcessor

from tests.builders import T0, record, user
from tests.hec_server import HecServer
from tests.test_realtime import KEY, MemorySource, body
from tests.test_splunk_hec import TOKEN, FakeTime, assert_each_once

BUDGET = 30.0  # the deployed SPLUNK_HEC_RETRY_BUDGET_SECONDS
OBJECTS = 12


def key(n: int) -> str:
    return KEY.replace("T0005Z_abc", f"T00{n:02d}Z_o{n:03d}")


class World:
    """A real-time processor on in-memory stores, its sink a real HEC sink on the local server."""

    def __init__(self, hec: HecServer) -> None:
        self.hec = hec
        self.time = FakeTime()
        self.sink = SplunkHecSink(
            HecSettings(hec.url, TOKEN, retry_budget_seconds=BUDGET),
            sleep=self.time.sleep,
            clock=self.time.clock,
            jitter=lambda: 1.0,
        )
        self.baseline = MemoryBaseline()
        self.ledger = MemoryLedger()
        self.source = MemorySource()
        self.processor = RealtimeProcessor(
            Detector(self.baseline, AlertPolicy(PolicySettings(learning_days=0))),
            self.source,
            self.ledger,
            self.sink,
            outbox=self.baseline.outbox,
            meters=(self.baseline, self.ledger),
        )

    def put(self, n: int) -> ObjectRef:
        """An object in which user n does two things for the first time: one alert."""
        records = [
            record("iam.amazonaws.com:CreateAccessKey", T0 + n, user(f"u{n}")),
            record("iam.amazonaws.com:AttachUserPolicy", T0 + n + 1, user(f"u{n}")),
        ]
        self.source.objects[("b", key(n))] = (f"e{n}", body(records))
        return ObjectRef("b", key(n), f"e{n}")

    def spent(self) -> float:
        """Seconds of retry budget the sink has used so far (its backoff sleeps)."""
        return sum(self.time.sleeps)


@pytest.fixture
def world() -> Iterator[World]:
    with HecServer(TOKEN) as hec:
        hec.faults.busy_first = 10**9  # 503 "Server is busy", for ever
        yield World(hec)


def test_an_outage_costs_one_retry_budget_per_invocation_and_loses_nothing(world: World) -> None:
    refs = [world.put(n) for n in range(OBJECTS)]
    p = world.processor
    p.begin_batch(refs)  # one SQS batch: one invocation
    outcomes = [p.process(ref) for ref in refs]
    report = p.end_batch()

    # Every object was detected, staged and recorded: no message goes back to the queue.
    assert [o.status for o in outcomes] == ["processed"] * OBJECTS
    assert all(len(o.alerts) == 1 for o in outcomes)
    assert report.written == OBJECTS and report.unwritten == 0
    assert {("b", key(n), f"e{n}") for n in range(OBJECTS)} <= set(world.ledger.entries)
    # The sink was tried for one round only: one retry budget, not one per object.
    assert 0 < world.spent() <= BUDGET
    assert len(world.hec.event_requests()) == len(world.time.sleeps) + 1
    first = outcomes[0].delivery
    assert first is not None and first.circuit_opened
    assert "retry budget of 30s spent" in first.circuit_open
    assert all(o.delivery is None and o.delivery_held for o in outcomes[1:])
    # Nothing reached HEC; everything is pending in the outbox.
    assert world.hec.events == []
    ids = sorted(a.alert_id for o in outcomes for a in o.alerts)
    assert sorted(a.alert_id for a in world.baseline.outbox.pending()) == ids

    # HEC is back: one round sends each alert once.
    world.hec.faults.busy_first = 0
    done = Deliverer(world.baseline.outbox, world.sink).deliver_pending()
    assert (done.delivered, done.still_pending, done.circuit_open) == (OBJECTS, 0, "")
    assert_each_once(world.hec, ids)


def test_the_next_invocation_tries_once_again(world: World) -> None:
    p = world.processor
    refs = [world.put(n) for n in range(3)]
    p.begin_batch(refs)
    for ref in refs:
        p.process(ref)
    p.end_batch()
    requests = len(world.hec.event_requests())

    # Still down: the next invocation spends one more round, and only one.
    later = [world.put(n) for n in range(3, 6)]
    spent = world.spent()
    p.begin_batch(later)
    outcomes = [p.process(ref) for ref in later]
    p.end_batch()
    assert outcomes[0].delivery is not None and outcomes[0].delivery.circuit_opened
    assert 0 < world.spent() - spent <= BUDGET
    assert len(world.hec.event_requests()) > requests
    assert len(world.baseline.outbox.pending()) == 6

    # Back up: the invocation after that delivers what is pending, once, even from an object
    # without alerts of its own (the processor knows alerts are waiting).
    world.hec.faults.busy_first = 0
    quiet = ObjectRef("b", key(20), "e20")
    world.source.objects[("b", key(20))] = (
        "e20",
        body([record("iam.amazonaws.com:CreateAccessKey", T0 + 30, user("u0"))]),
    )
    p.begin_batch([quiet])
    outcome = p.process(quiet)
    p.end_batch()
    assert outcome.alerts == [] and outcome.delivery is not None
    assert (outcome.delivery.delivered, outcome.delivery.still_pending) == (6, 0)
    assert world.hec.duplicates() == 0 and len(world.hec.alert_counts()) == 6


def test_a_configuration_error_opens_the_circuit_too(world: World) -> None:
    world.hec.faults.busy_first = 0
    world.hec.token = "the-token-was-rotated"  # every request answers 403 code 4
    refs = [world.put(n) for n in range(4)]
    p = world.processor
    p.begin_batch(refs)
    outcomes = [p.process(ref) for ref in refs]
    p.end_batch()
    assert len(world.hec.requests) == 1  # one request, then nothing more this invocation
    first = outcomes[0].delivery
    assert first is not None and "HTTP 403 code 4" in first.config_error and first.circuit_opened
    assert [bool(o.delivery_held) for o in outcomes] == [False, True, True, True]
    assert len(world.baseline.outbox.pending()) == 4


def test_a_deliverer_once_open_only_counts_until_reset() -> None:
    class Down:
        name = "down"

        def __init__(self) -> None:
            self.calls = 0

        def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
            self.calls += 1
            return DeliveryReport(pending=dict.fromkeys((a.alert_id for a in alerts), "503"))

    outbox = MemoryBaseline().outbox
    outbox.stage([PendingAlert(f"a{i}", T0 + i, "high", b"{}") for i in range(3)])
    sink = Down()
    deliverer = Deliverer(outbox, sink, batch=1)
    first = deliverer.deliver_pending()
    assert sink.calls == 1  # the first batch failed: the other two were not tried
    assert (first.circuit_open, first.circuit_opened, first.still_pending) == ("503", True, 1)
    again = deliverer.deliver_pending()
    assert sink.calls == 1 and again.skipped and not again.circuit_opened
    assert again.circuit_open == "503" and again.still_pending == 1  # counted, not sent
    deliverer.reset()
    deliverer.deliver_pending()
    assert sink.calls == 2


# -- what an operator sees: the metric and the log line of the real-time function ----------------


def sqs_event(refs: Sequence[ObjectRef]) -> dict[str, Any]:
    def message(i: int, ref: ObjectRef) -> dict[str, Any]:
        s3 = {"bucket": {"name": ref.bucket}, "object": {"key": ref.key, "eTag": ref.etag}}
        doc = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": s3}]}
        return {"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": json.dumps(doc)}

    return {"Records": [message(i, ref) for i, ref in enumerate(refs)]}


def test_the_function_reports_the_open_circuit_once_and_finishes_its_batch(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = Metrics(namespace="CloudTrailAnomalyTest", service="breaker-test")
    metrics.clear_metrics()
    function = RealtimeFunction(
        world.processor,
        world.baseline,  # type: ignore[arg-type]  # the function only hands it to metrics
        Logger(service="breaker-test"),
        metrics,
        clock=lambda: T0 + 600.0,
    )
    refs = [world.put(n) for n in range(OBJECTS)]
    event = sqs_event(refs)
    try:
        with function.sqs_batch(event):
            for raw in event["Records"]:
                function.handle_message(SQSRecord(raw), remaining_ms=150_000)
        metric_set = copy.deepcopy(metrics.metric_set)  # clear_metrics empties it in place
    finally:
        metrics.clear_metrics()
    assert metric_set["delivery_circuit_open"]["Value"] == [1.0]
    assert metric_set["deliveries_held"]["Value"] == [1.0] * (OBJECTS - 1)
    assert metric_set["objects"]["Value"] == [1.0] * OBJECTS
    assert 0 < world.spent() <= BUDGET
    logged = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    opened = [r for r in logged if str(r.get("message", "")).startswith("delivery_circuit_open")]
    assert len(opened) == 1 and "retry budget" in opened[0]["reason"]
    assert len(world.baseline.outbox.pending()) == OBJECTS


def test_no_delivery_round_starts_with_less_time_left_than_one_may_take(world: World) -> None:
    """With HEC down, a round may take the retry budget and the timeouts: started with 50 s
    left of the invocation it could time out the whole batch (received again, toward the DLQ).
    Under the reserve the function detects and stages only; the next invocation delivers."""
    function = RealtimeFunction(
        world.processor,
        world.baseline,  # type: ignore[arg-type]  # the function only hands it to metrics
        Logger(service="breaker-reserve-test"),
        metrics := Metrics(namespace="CloudTrailAnomalyTest", service="breaker-reserve-test"),
        clock=lambda: T0 + 600.0,
    )
    refs = [world.put(n) for n in range(3)]
    event = sqs_event(refs)
    # S3's test event first, with the invocation's 170 s ahead; the objects come late.
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": refs[0].bucket}
    event["Records"].insert(
        0, {"messageId": "t", "receiptHandle": "t", "body": json.dumps(test_event)}
    )
    try:
        with function.sqs_batch(event):
            first, *rest = event["Records"]
            function.handle_message(SQSRecord(first), remaining_ms=170_000)
            for raw in rest:
                function.handle_message(SQSRecord(raw), remaining_ms=50_000)
    finally:
        metrics.clear_metrics()  # powertools shares the metric set between instances
    assert world.spent() == 0 and world.hec.event_requests() == []
    assert len(world.baseline.outbox.pending()) == 3


def test_a_short_function_timeout_still_delivers(world: World) -> None:
    """A function whose first message had 60 s keeps half of that, not 70 s: it delivers."""
    world.hec.faults.busy_first = 0  # HEC answers
    function = RealtimeFunction(
        world.processor,
        world.baseline,  # type: ignore[arg-type]  # the function only hands it to metrics
        Logger(service="breaker-short-test"),
        metrics := Metrics(namespace="CloudTrailAnomalyTest", service="breaker-short-test"),
        clock=lambda: T0 + 600.0,
    )
    event = sqs_event([world.put(n) for n in range(2)])
    try:
        with function.sqs_batch(event):
            for raw in event["Records"]:
                function.handle_message(SQSRecord(raw), remaining_ms=60_000)
    finally:
        metrics.clear_metrics()  # powertools shares the metric set between instances
    assert world.baseline.outbox.pending() == []
