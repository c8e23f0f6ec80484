"""The EventBridge sink on moto: every alert one event on the bus (at most 10 entries and 256 KB
a call), routed by a rule to a queue as it was sent; entries failed for a passing reason are
sent again, refused ones dead-lettered with EventBridge's reason, a missing bus is a
configuration error, and an unreachable endpoint keeps everything pending. With `Formatted`, the
detail is an OCSF finding. Through the outbox and the Deliverer like every sink."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cloudtrail_anomaly.formats import UnknownFormat
from cloudtrail_anomaly.ports import PendingAlert
from cloudtrail_anomaly.sinks import as_pending
from cloudtrail_anomaly.sinks.eventbridge import (
    DETAIL_TYPE,
    MAX_REQUEST_BYTES,
    SOURCE,
    EventBridgeSink,
    entry_size,
    eventbridge_sink_from_env,
)
from cloudtrail_anomaly.sinks.formatted import Formatted
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests import alert_samples

REGION = "us-east-1"
BUS = "security-alerts"
demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts


def bus_to_queue(pattern: Mapping[str, Any] | None = None) -> tuple[Any, Any, str]:
    """A bus with a rule sending what matches `pattern` to an SQS queue."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="routed")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="alerts",
        EventBusName=BUS,
        EventPattern=json.dumps(pattern or {"source": [SOURCE]}),
    )
    events.put_targets(Rule="alerts", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return events, sqs, url


def routed(sqs: Any, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


class Counting:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[int] = []

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append(len(Entries))
        assert sum(entry_size(e) for e in Entries) <= MAX_REQUEST_BYTES
        return self.client.put_events(Entries=Entries)  # type: ignore[no-any-return]


class Scripted:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        self.calls.append([json.loads(e["Detail"])["alert_id"] for e in Entries])
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, Exception):
            raise answer
        if answer is None:  # all accepted
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}
        return {"Entries": [answer.get(i, {"EventId": "e"}) for i in range(len(Entries))]}


def client_error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutEvents")


def test_every_alert_is_one_event_routed_as_sent_at_most_10_a_call(
    aws: None, emitted_alerts: list[dict[str, Any]]
) -> None:
    events, sqs, url = bus_to_queue()
    pending = as_pending(emitted_alerts[:25])
    counting = Counting(events)
    report = EventBridgeSink(counting, BUS).deliver(pending)
    assert report.delivered == [a.alert_id for a in pending]
    assert (report.dead_lettered, report.pending, report.config_error) == ({}, {}, "")
    assert counting.calls == [10, 10, 5]
    got = routed(sqs, url)
    assert sorted(e["detail"]["alert_id"] for e in got) == sorted(report.delivered)
    first = next(e for e in got if e["detail"]["alert_id"] == pending[0].alert_id)
    assert first["detail"] == json.loads(pending[0].document)
    assert (first["source"], first["detail-type"]) == (SOURCE, DETAIL_TYPE)


def test_a_rule_can_route_on_severity(aws: None, emitted_alerts: list[dict[str, Any]]) -> None:
    events, sqs, url = bus_to_queue(
        {"source": [SOURCE], "detail": {"severity": ["high", "critical"]}}
    )
    pending = as_pending(emitted_alerts)
    EventBridgeSink(events, BUS).deliver(pending)
    expected = {a.alert_id for a in pending if a.severity in ("high", "critical")}
    assert expected and {e["detail"]["alert_id"] for e in routed(sqs, url)} == expected


def test_ocsf_detail_through_formatted(aws: None, emitted_alerts: list[dict[str, Any]]) -> None:
    events, sqs, url = bus_to_queue()
    pending = as_pending(emitted_alerts[:3])
    report = Formatted(EventBridgeSink(events, BUS), "ocsf").deliver(pending)
    assert report.delivered == [a.alert_id for a in pending]
    assert {e["detail"]["class_uid"] for e in routed(sqs, url)} == {2004}


def test_requests_stay_under_256_kb(emitted_alerts: list[dict[str, Any]]) -> None:
    big = [
        PendingAlert(
            f"{n:032x}",
            0,
            "low",
            json.dumps({"alert_id": f"{n:032x}", "pad": "x" * 60_000}).encode(),
        )
        for n in range(9)
    ]
    scripted = Scripted([])
    report = EventBridgeSink(scripted, BUS).deliver(big)
    assert len(report.delivered) == 9
    assert [len(c) for c in scripted.calls] == [4, 4, 1]


def test_an_alert_too_big_for_an_event_is_dead_lettered_unsent() -> None:
    huge = PendingAlert(
        "a" * 32, 0, "low", json.dumps({"alert_id": "a" * 32, "pad": "x" * 270_000}).encode()
    )
    scripted = Scripted([])
    report = EventBridgeSink(scripted, BUS).deliver([huge])
    assert scripted.calls == []
    assert "exceeds EventBridge's 262,144-byte limit" in report.dead_lettered["a" * 32]


def test_entries_failed_for_a_passing_reason_are_sent_again(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    pending = as_pending(emitted_alerts[:4])
    throttled = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
    scripted = Scripted([{1: throttled, 3: throttled}, {1: throttled}, None])
    sleeps: list[float] = []
    report = EventBridgeSink(scripted, BUS, sleep=sleeps.append).deliver(pending)
    ids = [a.alert_id for a in pending]
    assert sorted(report.delivered) == sorted(ids)
    assert scripted.calls == [ids, [ids[1], ids[3]], [ids[3]]]  # index 1 of the retry: ids[3]
    assert len(sleeps) == 2 and report.counters["retries"] == 2


def test_entries_still_failing_after_the_attempts_stay_pending(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    pending = as_pending(emitted_alerts[:2])
    internal = {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"}
    scripted = Scripted([{0: internal}] * 4)
    report = EventBridgeSink(scripted, BUS, sleep=lambda _: None).deliver(pending)
    assert report.delivered == [pending[1].alert_id]
    assert report.pending == {
        pending[0].alert_id: "EventBridge InternalFailure: oops (after 4 attempts)"
    }


def test_an_entry_eventbridge_refuses_is_dead_lettered_with_its_reason(
    aws: None, emitted_alerts: list[dict[str, Any]]
) -> None:
    events, sqs, url = bus_to_queue()
    good = as_pending(emitted_alerts[:2])
    malformed = PendingAlert("b" * 32, 0, "high", b"{not json")
    report = EventBridgeSink(events, BUS).deliver([good[0], malformed, good[1]])
    assert report.delivered == [a.alert_id for a in good]
    assert report.dead_lettered == {
        "b" * 32: "EventBridge refused the event: EventBridge MalformedDetail: Detail is malformed."
    }
    assert len(routed(sqs, url)) == 2


def test_a_missing_bus_is_a_configuration_error(
    aws: None, emitted_alerts: list[dict[str, Any]]
) -> None:
    pending = as_pending(emitted_alerts[:15])
    scripted = Scripted(
        [client_error("ResourceNotFoundException", f"Event bus {BUS} does not exist.")]
    )
    report = EventBridgeSink(scripted, BUS).deliver(pending)
    assert len(scripted.calls) == 1
    assert report.config_error.startswith("EventBridge ResourceNotFoundException")
    assert set(report.pending) == {a.alert_id for a in pending} and report.delivered == []


def test_an_unreachable_eventbridge_keeps_everything_pending(
    emitted_alerts: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client(
        "events",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    pending = as_pending(emitted_alerts[:12])
    report = EventBridgeSink(client, BUS).deliver(pending)
    assert report.delivered == []
    assert set(report.pending) == {a.alert_id for a in pending}
    assert any(r.startswith("EventBridge unreachable") for r in report.pending.values())


def test_through_the_outbox(aws: None, emitted_alerts: list[dict[str, Any]]) -> None:
    events, sqs, url = bus_to_queue()
    outbox = MemoryOutbox()
    outbox.stage(as_pending(emitted_alerts[:12]))
    done = Deliverer(outbox, EventBridgeSink(events, BUS)).deliver_pending()
    assert (done.delivered, done.dead_lettered, done.still_pending) == (12, 0, 0)
    assert len(routed(sqs, url)) == 12


def test_the_deployment_turns_the_sink_on_from_the_environment() -> None:
    def client(service: str) -> object:
        assert service == "events"
        return object()

    assert eventbridge_sink_from_env({}, client) is None
    plain = eventbridge_sink_from_env({"EVENTBRIDGE_BUS_NAME": BUS}, client)
    assert isinstance(plain, EventBridgeSink) and plain.bus_name == BUS
    ocsf = eventbridge_sink_from_env({"EVENTBRIDGE_BUS_NAME": BUS, "ALERT_FORMAT": "ocsf"}, client)
    assert isinstance(ocsf, Formatted) and ocsf.format_name == "ocsf"
    with pytest.raises(UnknownFormat, match="unknown alert format 'xml'"):
        eventbridge_sink_from_env({"EVENTBRIDGE_BUS_NAME": BUS, "ALERT_FORMAT": "xml"}, client)
