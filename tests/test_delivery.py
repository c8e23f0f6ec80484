"""Deliverer: outbox → sink, nothing lost, nothing sent twice once delivered."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.domain.detector import Detector
from cloudtrail_anomaly.domain.model import Severity
from cloudtrail_anomaly.domain.policy import AlertPolicy, PolicySettings
from cloudtrail_anomaly.ports import DeliveryReport, PendingAlert
from cloudtrail_anomaly.sinks import MinSeverity
from cloudtrail_anomaly.sinks.jsonl import JsonLinesSink
from cloudtrail_anomaly.stores.memory import MemoryOutbox
from cloudtrail_anomaly.stores.sqlite import SqliteBaseline
from cloudtrail_anomaly.usecases.deliver import Deliverer

T0 = 1_700_000_000


def alert(i: int, severity: str = "high") -> PendingAlert:
    return PendingAlert(f"id{i:03d}", T0 + i, severity, orjson.dumps({"alert_id": f"id{i:03d}"}))


class ScriptedSink:
    """Answers each call with the next scripted behaviour: 'ok', 'down', 'config', or
    ('dead', alert_id)."""

    name = "scripted"

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.calls: list[list[str]] = []
        self.received: list[str] = []

    def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
        ids = [a.alert_id for a in alerts]
        self.calls.append(ids)
        step = self.script.pop(0) if self.script else "ok"
        report = DeliveryReport()
        if step == "ok":
            report.delivered = ids
            self.received += ids
        elif step == "down":
            report.pending = dict.fromkeys(ids, "HEC 503 busy")
        elif step == "config":
            report.pending = dict.fromkeys(ids, "HEC 403 invalid token")
            report.config_error = "HEC 403 invalid token"
        elif isinstance(step, tuple) and step[0] == "dead":
            report.dead_lettered = {step[1]: "HEC code 6"}
            report.delivered = [i for i in ids if i != step[1]]
            self.received += report.delivered
        return report


def test_everything_pending_is_delivered_once_in_event_time_order() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(i) for i in (3, 1, 2)])
    sink = ScriptedSink([])
    done = Deliverer(outbox, sink, batch=2).deliver_pending()
    assert sink.received == ["id001", "id002", "id003"]
    assert (done.delivered, done.still_pending) == (3, 0)
    assert Deliverer(outbox, sink).deliver_pending().delivered == 0
    assert sink.received == ["id001", "id002", "id003"]  # never sent again


def test_an_outage_keeps_alerts_pending_and_the_next_call_sends_them() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(1), alert(2)])
    sink = ScriptedSink(["down"])
    done = Deliverer(outbox, sink).deliver_pending()
    assert (done.delivered, done.still_pending) == (0, 2)
    assert len(sink.calls) == 1  # no tight retry loop inside one call
    assert {a.attempts for a in outbox.pending()} == {1}
    late = Deliverer(outbox, ScriptedSink(["down"]), clock=lambda: T0 + 3600.0).deliver_pending()
    assert late.oldest_pending_age_s == 3600.0 - 1  # alert 1 happened at T0 + 1
    assert Deliverer(outbox, sink).deliver_pending().delivered == 2
    assert sink.received == ["id001", "id002"]


def test_a_configuration_error_stops_at_once_and_keeps_everything() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(i) for i in range(5)])
    sink = ScriptedSink(["config"])
    done = Deliverer(outbox, sink, batch=2).deliver_pending()
    assert done.config_error == "HEC 403 invalid token"
    assert len(sink.calls) == 1
    assert len(outbox.pending()) == 5


def test_a_bad_event_is_dead_lettered_and_the_rest_delivered() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(1), alert(2), alert(3)])
    sink = ScriptedSink([("dead", "id002")])
    done = Deliverer(outbox, sink).deliver_pending()
    assert (done.delivered, done.dead_lettered, done.still_pending) == (2, 1, 0)
    (dead, reason) = outbox.dead_letters()[0]
    assert dead.alert_id == "id002" and reason == "HEC code 6"


def test_min_severity_filters_per_sink_without_leaving_alerts_pending() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(1, "informational"), alert(2, "high"), alert(3, "medium")])
    sink = ScriptedSink([])
    Deliverer(outbox, MinSeverity(sink, Severity.MEDIUM)).deliver_pending()
    assert sink.received == ["id002", "id003"]
    assert outbox.pending() == []


def test_jsonl_sink_writes_the_documents_verbatim() -> None:
    out = io.BytesIO()
    report = JsonLinesSink(out).deliver([alert(1), alert(2)])
    assert report.delivered == ["id001", "id002"]
    assert out.getvalue() == alert(1).document + b"\n" + alert(2).document + b"\n"


def test_cli_deliver_resends_what_a_crash_left_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.sqlite"
    record = {
        "eventTime": "2023-11-14T22:13:20Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111111111111",
        "eventID": "e-1",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::111111111111:user/alice",
            "accountId": "111111111111",
        },
    }
    db = SqliteBaseline(state)
    # Detection commits the claim and its alert; the process "dies" before delivering.
    (staged,) = (
        Detector(db, AlertPolicy(PolicySettings(learning_days=0))).process([record], "obj").alerts
    )
    db.close()
    assert main(["deliver", "--state", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line)["alert_id"] for line in out] == [staged.alert_id]
    assert main(["deliver", "--state", str(state)]) == 0
    assert capsys.readouterr().out == ""  # delivered once, never again


def test_two_deliverers_at_once_send_each_alert_once() -> None:
    outbox = MemoryOutbox()
    outbox.stage([alert(1), alert(2)])
    first, second = ScriptedSink([]), ScriptedSink([])

    class Interleaving(ScriptedSink):
        """While the first deliverer is sending, the second one runs in full."""

        def deliver(self, alerts: Sequence[PendingAlert]) -> DeliveryReport:
            Deliverer(outbox, second, clock=lambda: 100.0).deliver_pending()
            return first.deliver(alerts)

    Deliverer(outbox, Interleaving([]), clock=lambda: 100.0).deliver_pending()
    assert sorted(first.received + second.received) == ["id001", "id002"]
    assert second.received == []
