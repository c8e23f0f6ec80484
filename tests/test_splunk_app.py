"""The Splunk add-on (splunk/TA-cloudtrail-anomaly): its .conf files parse, it keys on the
sourcetypes the HEC sink sends, it finds each alert's time where the alert puts it, and every
field it promises (the CIM Alerts fields, those its saved search shows) is in the alerts the CLI
emits. The package script builds a reproducible archive of it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from cloudtrail_anomaly.formats.cim import CIM_FIELDS, SEVERITY_IDS
from cloudtrail_anomaly.sinks.splunk_hec import DEFAULT_SOURCETYPE, LEGACY_SOURCETYPE, HecSettings

from tests import alert_samples
from tests.helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "splunk" / "TA-cloudtrail-anomaly"


def _script() -> ModuleType:
    return load_script("package_splunk_app")


pkg = _script()
demo_alerts_file = alert_samples.demo_alerts_file
emitted_alerts = alert_samples.emitted_alerts


@pytest.fixture(scope="module")
def confs() -> dict[str, Any]:
    return pkg.check(APP)  # type: ignore[no-any-return]


def test_every_conf_file_parses_and_app_conf_has_the_package_version(confs: dict[str, Any]) -> None:
    assert set(confs) == {
        "default/app.conf",
        "default/props.conf",
        "default/eventtypes.conf",
        "default/tags.conf",
        "default/savedsearches.conf",
        "metadata/default.meta",
    }
    assert confs["default/app.conf"]["id"]["version"] == pkg.package_version()


def test_the_conf_reader_refuses_what_splunk_would_misread(tmp_path: Path) -> None:
    bad = tmp_path / "props.conf"
    bad.write_text("[x]\nKV_MODE = json\nKV_MODE = none\n")
    with pytest.raises(pkg.ConfError, match="set twice"):
        pkg.read_conf(bad)
    bad.write_text("[x]\njust words\n")
    with pytest.raises(pkg.ConfError, match=r"props\.conf:2"):
        pkg.read_conf(bad)
    bad.write_text("# c\n[x]\nsearch = a \\\n| b\n")
    assert pkg.read_conf(bad) == {"x": {"search": "a \n| b"}}


def test_props_read_both_sourcetypes_as_json(confs: dict[str, Any]) -> None:
    props = confs["default/props.conf"]
    assert DEFAULT_SOURCETYPE == "cloudtrail_anomaly:alert"
    for sourcetype in (DEFAULT_SOURCETYPE, LEGACY_SOURCETYPE):
        stanza = props[sourcetype]
        assert stanza["KV_MODE"] == "json"
        assert stanza["SHOULD_LINEMERGE"] == "false"
        assert "first_event_time" in stanza["TIME_PREFIX"]


def test_time_prefix_and_format_find_the_first_event_time(
    confs: dict[str, Any], demo_alerts_file: Path
) -> None:
    stanza = confs["default/props.conf"][DEFAULT_SOURCETYPE]
    prefix = re.compile(stanza["TIME_PREFIX"])
    lookahead = int(stanza["MAX_TIMESTAMP_LOOKAHEAD"])
    for line in demo_alerts_file.read_text().splitlines():
        m = prefix.search(line)
        assert m, line[:200]
        text = line[m.end() : m.end() + lookahead]
        # Splunk's strptime reads the longest prefix that fits; Python's wants it exact.
        stamp = datetime.strptime(text[:20], stanza["TIME_FORMAT"]).replace(tzinfo=UTC)
        assert stamp.isoformat().replace("+00:00", "Z") == orjson.loads(line)["first_event_time"]


def test_the_eventtype_is_tagged_alert_for_the_cim_alerts_data_model(confs: dict[str, Any]) -> None:
    search = confs["default/eventtypes.conf"]["cloudtrail_anomaly_alert"]["search"]
    for sourcetype in (DEFAULT_SOURCETYPE, LEGACY_SOURCETYPE):
        assert f'sourcetype="{sourcetype}"' in search
    assert confs["default/tags.conf"]["eventtype=cloudtrail_anomaly_alert"]["alert"] == "enabled"


def _promised_fields(confs: dict[str, Any]) -> set[str]:
    """Fields the add-on names: its eventtype's and saved search's, and its aliases' sources."""
    promised: set[str] = set(CIM_FIELDS)
    search = confs["default/eventtypes.conf"]["cloudtrail_anomaly_alert"]["search"]
    promised |= set(re.findall(r"\b([a-z_]+)=\"", search)) - {"sourcetype"}
    for stanza in confs["default/savedsearches.conf"].values():
        spl = stanza["search"]
        table = re.search(r"\|\s*table\s+(.*)$", spl, re.S)
        assert table
        promised |= {f.strip() for f in table[1].split(",")} - {"_time"}
        promised |= set(re.findall(r"\b([a-z_]+) IN \(", spl))
        promised |= set(re.findall(r"\|\s*dedup\s+([a-z_]+)", spl))
        promised |= {f for f in re.findall(r"-\s*([a-z_]+)", spl) if not f.startswith("_")}
    for stanza in confs["default/props.conf"].values():
        for key, value in stanza.items():
            if key.startswith("FIELDALIAS-"):
                source = re.match(r'"?([a-z_]+)(\{\})?"?\s+AS\s+([a-z_]+)$', value)
                assert source, value
                promised.add(source[1])
    return promised


def test_every_promised_field_is_in_every_emitted_alert(
    confs: dict[str, Any], emitted_alerts: list[dict[str, Any]]
) -> None:
    promised = _promised_fields(confs)
    assert {"severity", "id", "user", "mitre_technique_id", "type", "severity_id"} <= promised
    for alert in emitted_alerts:
        assert promised <= set(alert), (promised - set(alert), alert["alert_id"])
        assert alert["type"] == "alert" and alert["app"] == "cloudtrail-anomaly"
        assert alert["id"] == alert["alert_id"]
        assert alert["severity_id"] == SEVERITY_IDS[alert["severity"]]
        assert alert["user"] == alert["principal"]["arn"]
        assert alert["user_type"] == alert["principal"]["type"]
        assert alert["dest"] == alert["vendor_account"] == alert["account_id"]
        assert alert["src"] == alert["new_actions"][0]["source_ip"]
        assert isinstance(alert["mitre_technique_id"], list)
        scalars = set(CIM_FIELDS) - {"severity_id", "mitre_technique_id"}
        assert all(isinstance(alert[f], str) for f in scalars)


def test_mitre_techniques_are_named_for_known_sensitive_actions(
    emitted_alerts: list[dict[str, Any]],
) -> None:
    by_action = {
        a["action"]: alert["mitre_technique_id"]
        for alert in emitted_alerts
        for a in alert["new_actions"]
    }
    assert "T1098.001" in by_action["iam.amazonaws.com:CreateAccessKey"]
    assert (
        any(
            "T1562.008" in alert["mitre_technique_id"]
            for alert in emitted_alerts
            if any(a["event_name"] == "StopLogging" for a in alert["new_actions"])
        )
        or "cloudtrail.amazonaws.com:StopLogging" not in by_action
    )


def test_the_former_sourcetype_is_still_accepted_by_configuration() -> None:
    env = {"SPLUNK_HEC_URL": "https://hec.example.com:8088", "SPLUNK_HEC_TOKEN": "t0ken-123"}
    assert HecSettings.from_env(env).sourcetype == DEFAULT_SOURCETYPE
    legacy = HecSettings.from_env({**env, "SPLUNK_HEC_SOURCETYPE": LEGACY_SOURCETYPE})
    assert legacy.sourcetype == LEGACY_SOURCETYPE


def test_the_package_is_a_reproducible_tgz_of_the_app(tmp_path: Path) -> None:
    first = pkg.build(tmp_path / "a", APP)
    second = pkg.build(tmp_path / "b", APP)
    assert first.name == f"TA-cloudtrail-anomaly-{pkg.package_version()}.tgz"
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert all(
        n == "TA-cloudtrail-anomaly" or n.startswith("TA-cloudtrail-anomaly/") for n in names
    )
    assert "TA-cloudtrail-anomaly/default/props.conf" in names
    assert all(m.uid == 0 and m.mode in (0o644, 0o755) for m in members)


def test_a_version_mismatch_stops_the_packaging(tmp_path: Path) -> None:
    app = tmp_path / "TA-cloudtrail-anomaly"
    (app / "default").mkdir(parents=True)
    (app / "default" / "app.conf").write_text(
        (APP / "default" / "app.conf").read_text().replace(pkg.package_version(), "9.9.9", 1)
    )
    with pytest.raises(pkg.ConfError, match=r"\[id\] version = 9.9.9"):
        pkg.check(app)


def test_splunk_appinspect_passes_the_package(tmp_path: Path) -> None:
    """Splunk's own checker, when installed (it is not in the lock: its dependencies are heavy);
    SPLUNK_APPINSPECT names the executable, e.g. in a venv of its own."""
    tool = os.environ.get("SPLUNK_APPINSPECT") or shutil.which("splunk-appinspect")
    if not tool:
        pytest.skip(
            "splunk-appinspect not installed (pip install splunk-appinspect; see docs/splunk.md)"
        )
    package = pkg.build(tmp_path, APP)
    report = tmp_path / "appinspect.json"
    run = subprocess.run(
        [
            tool,
            "inspect",
            str(package),
            "--mode",
            "precert",
            "--output-file",
            str(report),
            "--data-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = orjson.loads(report.read_bytes())["summary"]
    assert summary["error"] == summary["failure"] == summary["warning"] == 0, summary
