"""The other sinks (JSON Lines file, SNS on moto), the severity floor and the dead-letter stores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import EndpointConnectionError
from cloudtrail_anomaly.domain.model import Severity
from cloudtrail_anomaly.ports import DeliveryReport, PendingAlert
from cloudtrail_anomaly.sinks import MinSeverity, as_pending, with_min_severity
from cloudtrail_anomaly.sinks.dead_letters import (
    DeadLetter,
    JsonLinesDeadLetters,
    MemoryDeadLetters,
    WithDeadLetters,
)
from cloudtrail_anomaly.sinks.jsonl import JsonLinesSink
from cloudtrail_anomaly.sinks.sns import MAX_SUBJECT_CHARS, SnsSink, subject
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.usecases.deliver import Deliverer

from tests.test_splunk_hec import make_alert

REGION = "us-east-1"


def pending(n: int, severity: Severity = Severity.HIGH) -> list[PendingAlert]:
    return [PendingAlert.of(make_alert(i, severity=severity)) for i in range(n)]


# -- JSON Lines file --------------------------------------------------------------------------


def test_jsonl_file_appends_documents_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonLinesSink(path)
    first, second = pending(2), pending(3)[2:]
    assert sink.deliver(first).delivered == [a.alert_id for a in first]
    sink.deliver(second)
    lines = path.read_bytes().splitlines()
    assert lines == [a.document for a in [*first, *second]]
    assert [json.loads(line)["alert_id"] for line in lines] == [
        a.alert_id for a in [*first, *second]
    ]


def test_jsonl_file_that_cannot_be_opened_is_a_configuration_error(tmp_path: Path) -> None:
    alerts = pending(2)
    report = JsonLinesSink(tmp_path / "missing" / "alerts.jsonl").deliver(alerts)
    assert "cannot open" in report.config_error
    assert set(report.pending) == {a.alert_id for a in alerts} and not report.delivered


def test_jsonl_file_through_the_deliverer_sends_each_alert_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    outbox = MemoryOutbox()
    outbox.stage(pending(4))
    sink = JsonLinesSink(path, fsync=False)
    assert Deliverer(outbox, sink).deliver_pending().delivered == 4
    assert Deliverer(outbox, sink).deliver_pending().delivered == 0
    assert len(path.read_bytes().splitlines()) == 4


# -- SNS ---------------------------------------------------------------------------------------


def topic_with_queue() -> tuple[Any, str, Any, str]:
    """An SNS topic with an SQS queue subscribed (SNS envelope, so Subject and attributes show)."""
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return sns, topic, sqs, queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_sns_publishes_each_alert_with_subject_and_attributes(aws: None) -> None:
    sns, topic, sqs, queue_url = topic_with_queue()
    alerts = [make_alert(0), make_alert(1, severity=Severity.CRITICAL)]
    report = SnsSink(sns, topic).deliver(as_pending(alerts))
    assert report.delivered == [a.alert_id for a in alerts]
    messages = received(sqs, queue_url)
    assert [json.loads(m["Message"]) for m in messages] == [a.to_dict() for a in alerts]
    assert messages[1]["Subject"] == ("[CRITICAL] u1 did 1 new action(s) in 123456789012")
    attributes = messages[1]["MessageAttributes"]
    assert attributes["severity"]["Value"] == "critical"
    assert attributes["alert_id"]["Value"] == alerts[1].alert_id
    assert attributes["detector"]["Value"] == "new_action"


def test_sns_missing_topic_is_a_configuration_error(aws: None) -> None:
    sns = boto3.client("sns", region_name=REGION)
    alerts = pending(3)
    missing = f"arn:aws:sns:{REGION}:123456789012:nope"
    report = SnsSink(sns, missing).deliver(alerts)
    assert report.config_error.startswith("SNS NotFound")
    assert set(report.pending) == {a.alert_id for a in alerts}


def test_sns_oversized_alert_is_dead_lettered_and_the_rest_published(aws: None) -> None:
    sns, topic, sqs, queue_url = topic_with_queue()
    small = PendingAlert.of(make_alert(0))
    big = PendingAlert(
        "big", small.first_event_time, "high", orjson.dumps({"alert_id": "big", "x": "y" * 300_000})
    )
    report = SnsSink(sns, topic).deliver([big, small])
    assert "exceeds SNS's 262,144-byte limit" in report.dead_lettered["big"]
    assert report.delivered == [small.alert_id]
    assert len(received(sqs, queue_url)) == 1


class UnreachableSns:
    def __init__(self) -> None:
        self.calls = 0

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")


def test_sns_unreachable_keeps_the_batch_pending_after_one_try() -> None:
    client = UnreachableSns()
    alerts = pending(3)
    report = SnsSink(client, "arn:aws:sns:us-east-1:123456789012:alerts").deliver(alerts)
    assert client.calls == 1 and not report.config_error
    assert set(report.pending) == {a.alert_id for a in alerts}
    assert "SNS unreachable" in next(iter(report.pending.values()))


def test_sns_subject_is_printable_ascii_under_the_limit() -> None:
    doc = {
        "principal": {"name": "ünïcode\nname" + "x" * 200},
        "new_actions": [{}, {}],
        "account_id": "123456789012",
    }
    alert = PendingAlert("id", 0, "medium", orjson.dumps(doc))
    text = subject(alert, doc)
    assert text.startswith("[MEDIUM] ?n?code?name")
    assert len(text) <= MAX_SUBJECT_CHARS and text.isascii() and text.isprintable()


# -- min_severity --------------------------------------------------------------------------------


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        self.seen += [a.alert_id for a in alerts]
        return DeliveryReport(delivered=[a.alert_id for a in alerts])


def test_min_severity_applies_to_any_sink_and_leaves_nothing_pending() -> None:
    low = pending(2, Severity.LOW)
    high = [PendingAlert.of(make_alert(10, severity=Severity.HIGH))]
    critical = [PendingAlert.of(make_alert(11, severity=Severity.CRITICAL))]
    sink = Recording()
    outbox = MemoryOutbox()
    outbox.stage([*low, *high, *critical])
    Deliverer(outbox, with_min_severity(sink, "high")).deliver_pending()
    assert sink.seen == [high[0].alert_id, critical[0].alert_id]
    assert outbox.pending() == []


def test_with_min_severity_without_a_floor_is_the_sink_itself(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "a.jsonl")
    assert with_min_severity(sink, None) is sink and with_min_severity(sink, "") is sink
    floored = with_min_severity(sink, Severity.MEDIUM)
    assert isinstance(floored, MinSeverity) and floored.name == "jsonl"
    with pytest.raises(ValueError):
        with_min_severity(sink, "loud")


# -- dead letters ----------------------------------------------------------------------------------


class Refusing:
    """Dead-letters the alerts whose id is in `refuse`, delivers the rest."""

    name = "refusing"

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        report = DeliveryReport()
        for a in alerts:
            if a.alert_id in self.refuse:
                report.dead_lettered[a.alert_id] = "HTTP 400 code 6 (Invalid data format)"
            else:
                report.delivered.append(a.alert_id)
        return report


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_dead_letters_are_kept_with_sink_reason_time_and_document(
    tmp_path: Path, kind: str
) -> None:
    store = MemoryDeadLetters() if kind == "memory" else JsonLinesDeadLetters(tmp_path / "dl.jsonl")
    alerts = pending(3)
    sink = WithDeadLetters(Refusing({alerts[1].alert_id}), store, clock=lambda: 1_717_300_000)
    report = sink.deliver(alerts)
    assert list(report.dead_lettered) == [alerts[1].alert_id]
    (letter,) = store.letters()
    assert letter == DeadLetter(
        alerts[1], "refusing", "HTTP 400 code 6 (Invalid data format)", 1_717_300_000
    )


def test_the_dead_letter_file_is_one_readable_json_object_a_line(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    alerts = pending(2)
    WithDeadLetters(Refusing({a.alert_id for a in alerts}), JsonLinesDeadLetters(path)).deliver(
        alerts
    )
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["alert"] for d in docs] == [json.loads(a.document) for a in alerts]
    assert {d["sink"] for d in docs} == {"refusing"}
    assert docs[0]["dead_lettered_at"].endswith("Z")


class BrokenStore:
    def put(self, letters: Sequence[DeadLetter]) -> None:
        raise OSError("disk full")

    def letters(self) -> list[DeadLetter]:
        return []


def test_a_dead_letter_the_store_cannot_keep_stays_pending() -> None:
    alerts = pending(2)
    report = WithDeadLetters(Refusing({alerts[0].alert_id}), BrokenStore()).deliver(alerts)
    assert report.dead_lettered == {}
    assert "dead-letter store failed: OSError: disk full" in report.pending[alerts[0].alert_id]
    assert report.delivered == [alerts[1].alert_id]


def test_the_sns_subject_counts_every_new_action_not_the_listed_ones() -> None:
    from cloudtrail_anomaly.ports import PendingAlert
    from cloudtrail_anomaly.sinks.sns import subject

    doc = {
        "principal": {"name": "mallory"},
        "account_id": "123456789012",
        "new_actions": [{"action": f"ec2.amazonaws.com:D{i}"} for i in range(74)],
        "new_actions_total": 577,
    }
    alert = PendingAlert("a1", 0, "critical", b"{}")
    assert "did 577 new action(s)" in subject(alert, doc)
