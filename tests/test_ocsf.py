"""The OCSF output: every alert the CLI emits becomes an OCSF 1.5.0 Detection Finding that the
OCSF models of py-ocsf-models accept with nothing dropped, and `--format ocsf` (replay, deliver,
any sink through `Formatted`) writes them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.app.cli.main import main
from cloudtrail_anomaly.formats import UnknownFormat, formatter
from cloudtrail_anomaly.formats.cim import SEVERITY_IDS
from cloudtrail_anomaly.formats.ocsf import epoch_ms, to_ocsf
from cloudtrail_anomaly.ports import PendingAlert
from cloudtrail_anomaly.sinks import as_pending
from cloudtrail_anomaly.sinks.formatted import Formatted, with_format
from cloudtrail_anomaly.sinks.jsonl import JsonLinesSink
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from tests import alert_samples

demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts


def dropped(sent: Any, kept: Any, path: str = "") -> list[str]:
    """What the model did not keep of `sent`, or kept changed (defaults it adds are fine)."""
    if isinstance(sent, dict) and isinstance(kept, dict):
        out = [f"{path}.{k} dropped" for k in sent if k not in kept]
        return out + [
            p for k in sent if k in kept for p in dropped(sent[k], kept[k], f"{path}.{k}")
        ]
    if isinstance(sent, list) and isinstance(kept, list) and len(sent) == len(kept):
        return [
            p
            for i, (s, k) in enumerate(zip(sent, kept, strict=True))
            for p in dropped(s, k, f"{path}[{i}]")
        ]
    return [] if sent == kept else [f"{path}: {sent!r} became {kept!r}"]


def validate(finding: dict[str, Any]) -> DetectionFinding:
    model = DetectionFinding.model_validate(finding)
    assert dropped(finding, model.model_dump(mode="json", exclude_none=True)) == []
    return model


def test_every_emitted_alert_is_a_valid_detection_finding(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    for alert in emitted_alerts:
        finding = to_ocsf(alert)
        model = validate(finding)
        assert (model.class_uid, model.category_uid, model.type_uid) == (2004, 2, 200401)
        assert finding["metadata"]["version"] == "1.5.0"
        assert finding["finding_info"]["uid"] == finding["metadata"]["uid"] == alert["alert_id"]
        assert finding["severity_id"] == SEVERITY_IDS[alert["severity"]]
        assert finding["time"] == finding["start_time"] == epoch_ms(alert["first_event_time"])
        assert finding["end_time"] == epoch_ms(alert["last_event_time"])
        assert finding["cloud"]["account"]["uid"] == alert["account_id"]
        assert finding["resources"][0]["uid"] == alert["principal"]["arn"]
        assert [e["name"] for e in finding["evidences"]] == [
            a["action"] for a in alert["new_actions"]
        ]
        assert finding["status"] == ("Suppressed" if alert.get("suppressed") else "New")
        techniques = [a["technique"]["uid"] for a in finding["finding_info"].get("attacks", [])]
        assert techniques == alert["mitre_technique_id"]
        assert finding["unmapped"]["reasons"] == alert["reasons"]


def test_the_same_alert_always_gives_the_same_finding(emitted_alerts: list[dict[str, Any]]) -> None:
    alert = emitted_alerts[0]
    assert orjson.dumps(to_ocsf(alert)) == orjson.dumps(to_ocsf(orjson.loads(orjson.dumps(alert))))


def test_an_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownFormat, match=r"unknown alert format 'cef' \(known: alert, ocsf\)"):
        formatter("cef")
    with pytest.raises(UnknownFormat):
        Formatted(JsonLinesSink(io.BytesIO()), "cef")


def test_a_sink_writes_findings_and_dead_letters_what_cannot_be_one(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    out = io.BytesIO()
    good = as_pending(emitted_alerts[:3])
    broken = PendingAlert("f" * 32, 0, "high", b'{"alert_id": "' + b"f" * 32 + b'"}')
    report = with_format(JsonLinesSink(out), "ocsf").deliver([*good, broken])
    assert report.delivered == [a.alert_id for a in good]
    assert list(report.dead_lettered) == [broken.alert_id]
    assert "cannot write the alert as ocsf: KeyError" in report.dead_lettered[broken.alert_id]
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [f["finding_info"]["uid"] for f in lines] == report.delivered
    for finding in lines:
        validate(finding)


def test_the_alert_format_leaves_the_sink_as_it_is() -> None:
    sink = JsonLinesSink(io.BytesIO())
    assert with_format(sink, "alert") is sink and with_format(sink, None) is sink


def test_replay_and_deliver_write_ocsf(
    demo_alerts_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trail = alert_samples.FIXTURES / "stratus-red-team"
    state = tmp_path / "state.sqlite"
    out = tmp_path / "findings.jsonl"
    argv = ["replay", str(trail), "--learning-days", "0", "--format", "ocsf"]
    assert main([*argv, "--state", str(state), "--output", str(out)]) == 0
    findings = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert findings
    for finding in findings:
        validate(finding)
    # Nothing pending: deliver sends nothing, in either format.
    assert main(["deliver", "--state", str(state), "--format", "ocsf", "--output", str(out)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*argv[:-1], "cef"])
    assert exit_.value.code == 2
    assert "invalid choice: 'cef'" in capsys.readouterr().err
