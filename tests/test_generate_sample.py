"""Tests of scripts/generate_sample.py, the synthetic organization-trail generator."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import load_script

SMALL = ["--accounts", "4", "--history-days", "2", "--live-days", "2", "--scale", "0.1"]

KEY_RE = re.compile(
    r"^(?P<phase>history|live)/AWSLogs/(?P<org>o-[a-z0-9]{10})/(?P<account>\d{12})/CloudTrail/"
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>(?P=y)(?P=m)(?P=d)T\d{4}Z)_"
    r"[A-Za-z0-9]{16}\.json\.gz$"
)
REQUIRED = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "eventID",
    "eventType",
    "recipientAccountId",
    "eventCategory",
)
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ACCESS_KEY_RE = re.compile(r"^(AKIA|ASIA)[A-Z2-7]{16}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# The detector's action: eventSource:eventName without an API-version suffix.
API_VERSION_SUFFIX = re.compile(r"(?:\d{8}|\d{4}_\d{2}_\d{2})(?:v\d+)?$")


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_script("generate_sample")


@pytest.fixture(scope="module")
def trail(gen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trail")
    assert gen.main(["--out", str(out), *SMALL]) == 0
    return out


@pytest.fixture(scope="module")
def objects(trail: Path) -> dict[str, list[dict[str, Any]]]:
    """Every delivery object, by its key relative to the output directory."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(trail.rglob("*.json.gz")):
        doc = json.loads(gzip.decompress(path.read_bytes()))
        assert list(doc) == ["Records"]
        assert isinstance(doc["Records"], list) and doc["Records"]
        out[path.relative_to(trail).as_posix()] = doc["Records"]
    return out


@pytest.fixture(scope="module")
def scenarios(trail: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads((trail / "scenarios.json").read_text())
    return docs


def principal_key(record: dict[str, Any], per_person: bool = False) -> str | None:
    """The baseline key: the IAM role of an assumed role, else the user or root ARN.

    `per_person`: as the detector does by default, Identity Center roles are keyed per session.
    """
    ident = record["userIdentity"]
    if ident.get("type") == "AssumedRole":
        arn: str = ident["sessionContext"]["sessionIssuer"]["arn"]
        if per_person and "/AWSReservedSSO_" in arn:
            return f"{arn}#{ident['arn'].rsplit('/', 1)[1]}"
        return arn
    if ident.get("type") in ("IAMUser", "Root"):
        return str(ident["arn"])
    return None


def action_of(record: dict[str, Any]) -> str:
    return f"{record['eventSource']}:{API_VERSION_SUFFIX.sub('', record['eventName'])}"


def tuples_by_phase(
    objects: dict[str, list[dict[str, Any]]], per_person: bool = False
) -> dict[str, dict[tuple[str, str], list[str]]]:
    phases: dict[str, dict[tuple[str, str], list[str]]] = {
        "history": defaultdict(list),
        "live": defaultdict(list),
    }
    for key, records in objects.items():
        for r in records:
            principal = principal_key(r, per_person)
            if principal:
                phases[key.split("/", 1)[0]][(principal, action_of(r))].append(key)
    return phases


def test_every_key_has_the_organization_trail_layout(
    trail: Path, objects: dict[str, list[dict[str, Any]]]
) -> None:
    assert objects
    phases = set()
    orgs = set()
    for key in objects:
        m = KEY_RE.match(key)
        assert m, key
        phases.add(m["phase"])
        orgs.add(m["org"])
    assert phases == {"history", "live"}
    assert len(orgs) == 1
    files = {p.relative_to(trail).as_posix() for p in trail.rglob("*") if p.is_file()}
    assert files == set(objects) | {"scenarios.json"}


def test_records_have_cloudtrail_fields_and_sit_in_their_slot(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    seen_types: set[str] = set()
    seen_event_types: set[str] = set()
    errors = 0
    total = 0
    for key, records in objects.items():
        m = KEY_RE.match(key)
        assert m
        slot_end = datetime.strptime(m["stamp"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp()
        for r in records:
            total += 1
            for name in REQUIRED:
                assert name in r, (key, name)
            assert r["recipientAccountId"] == m["account"]
            assert r["awsRegion"] == m["region"]
            assert TIME_RE.match(r["eventTime"])
            t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            # In the 5 minutes before the stamp, or a little earlier when delivered late.
            assert slot_end - 300 - 180 <= t.timestamp() < slot_end, (key, r["eventTime"])
            assert UUID4_RE.match(r["eventID"])
            assert r["eventCategory"] in ("Management", "Data")
            assert r["eventSource"].endswith(".amazonaws.com")
            ident = r["userIdentity"]
            seen_types.add(ident.get("type", "<service event>"))
            seen_event_types.add(r["eventType"])
            if ident.get("accessKeyId"):
                assert ACCESS_KEY_RE.match(ident["accessKeyId"]), ident
            if ident.get("type") == "AssumedRole":
                issuer = ident["sessionContext"]["sessionIssuer"]
                assert issuer["type"] == "Role"
                assert issuer["arn"].startswith(f"arn:aws:iam::{m['account']}:role/")
            if r["eventType"] == "AwsServiceEvent":
                assert set(ident) == {"accountId", "invokedBy"}
            errors += "errorCode" in r
    assert {"AssumedRole", "IAMUser", "AWSService", "<service event>"} <= seen_types
    assert {"AwsApiCall", "AwsServiceEvent", "AwsConsoleSignIn"} <= seen_event_types
    assert 0 < errors < total * 0.1


def test_records_in_a_file_are_roughly_in_time_order(
    objects: dict[str, list[dict[str, Any]]],
) -> None:
    pairs = inversions = 0
    for records in objects.values():
        times = [
            datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").timestamp() for r in records
        ]
        for a, b in itertools.pairwise(times):
            pairs += 1
            if a > b:
                inversions += 1
                assert a - b <= 300  # a little disorder, as in real delivery objects
    assert inversions <= pairs * 0.1


def test_scenarios_are_new_in_live_and_absent_from_history(
    objects: dict[str, list[dict[str, Any]]], scenarios: list[dict[str, Any]]
) -> None:
    phases = tuples_by_phase(objects)
    assert {s["kind"] for s in scenarios} == {"attack", "benign_novelty", "new_hire"}
    for s in scenarios:
        assert set(s) >= {"kind", "name", "account_id", "principal_arn", "actions", "start"}
        assert s["principal_key"].startswith(s["principal_arn"])
        assert s["principal_arn"].startswith(f"arn:aws:iam::{s['account_id']}:")
        assert TIME_RE.match(s["start"])
        assert s["actions"]
        for action in s["actions"]:
            key = (s["principal_arn"], action)
            assert key in phases["live"], (s["name"], action)
            assert key not in phases["history"], (s["name"], action)
            assert all(k.startswith("live/") for k in phases["live"][key])


@pytest.mark.parametrize(
    ("per_person", "field"), [(False, "principal_arn"), (True, "principal_key")]
)
def test_live_novelty_is_exactly_the_injected_scenarios(
    objects: dict[str, list[dict[str, Any]]],
    scenarios: list[dict[str, Any]],
    per_person: bool,
    field: str,
) -> None:
    """The history is a stable baseline: nothing new appears in live that was not injected,
    whether Identity Center roles are keyed by role or per person."""
    phases = tuples_by_phase(objects, per_person)
    novel = {k for k in phases["live"] if k not in phases["history"]}
    injected = {(s[field], a) for s in scenarios for a in s["actions"]}
    assert novel == injected


def test_attack_scenarios_cover_the_required_techniques(
    objects: dict[str, list[dict[str, Any]]], scenarios: list[dict[str, Any]]
) -> None:
    attacks = {s["name"]: s for s in scenarios if s["kind"] == "attack"}
    assert len(attacks) >= 4
    assert len({s["account_id"] for s in attacks.values()}) >= 4
    acts = {name: set(s["actions"]) for name, s in attacks.items()}
    assert {
        "iam.amazonaws.com:CreateUser",
        "iam.amazonaws.com:CreateAccessKey",
        "iam.amazonaws.com:AttachUserPolicy",
        "iam.amazonaws.com:CreateLoginProfile",
        "sts.amazonaws.com:GetCallerIdentity",
    } <= acts["leaked-access-key-discovery-and-persistence"]
    evasion = {
        "cloudtrail.amazonaws.com:StopLogging",
        "cloudtrail.amazonaws.com:DeleteTrail",
        "guardduty.amazonaws.com:DeleteDetector",
        "config.amazonaws.com:StopConfigurationRecorder",
    }
    assert evasion <= acts["defense-evasion-disable-logging"]
    assert "signin.amazonaws.com:ConsoleLogin" in acts["root-console-login-org-and-billing"]
    assert attacks["root-console-login-org-and-billing"]["principal_arn"].endswith(":root")
    assert (
        "ec2.amazonaws.com:ModifySnapshotAttribute" in acts["ec2-instance-credentials-exfiltration"]
    )
    # Actions are named as the detector names them, without API-version suffixes.
    assert (
        "lambda.amazonaws.com:ListFunctions" in acts["denied-api-spree-stolen-lambda-credentials"]
    )

    # Defense evasion is spread over two delivery objects; the instance role's session is an
    # instance id; the spree is denied.
    role = attacks["defense-evasion-disable-logging"]["principal_arn"]
    files = {
        key
        for key, records in objects.items()
        for r in records
        if principal_key(r) == role and action_of(r) in evasion
    }
    assert len(files) >= 2
    exfil = attacks["ec2-instance-credentials-exfiltration"]
    assert re.match(r"^i-0[0-9a-f]{16}$", exfil["session_name"])
    spree = attacks["denied-api-spree-stolen-lambda-credentials"]
    denied = [
        r
        for records in objects.values()
        for r in records
        if principal_key(r) == spree["principal_arn"]
        and r.get("errorCode")
        and r["sourceIPAddress"].startswith("192.0.2.")
    ]
    assert len(denied) >= 5
    assert {"AccessDenied", "Client.UnauthorizedOperation"} <= {r["errorCode"] for r in denied}


def test_output_is_deterministic(gen: ModuleType, trail: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert gen.main(["--out", str(again), *SMALL]) == 0
    first = {p.relative_to(trail): p.read_bytes() for p in trail.rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert first == second


def test_a_different_seed_gives_a_different_trail(gen: ModuleType, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    small = ["--accounts", "1", "--history-days", "1", "--live-days", "1", "--scale", "0.05"]
    gen.main(["--out", str(a), "--seed", "1", *small])
    gen.main(["--out", str(b), "--seed", "2", *small])
    assert (a / "scenarios.json").read_text() != (b / "scenarios.json").read_text()


def test_json_fallback_writes_the_same_bytes_as_orjson(
    gen: ModuleType,
    objects: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = sys.modules["synthetic_trail.writer"]  # loaded with the script, orjson installed
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson now raises ImportError
    for name in [n for n in sys.modules if n.partition(".")[0] == "synthetic_trail"]:
        monkeypatch.delitem(sys.modules, name)  # so the script imports its package afresh
    load_script("generate_sample", "generate_sample_without_orjson")
    fallback = sys.modules["synthetic_trail.writer"]
    assert fallback.dumps is not writer.dumps  # the json encoder, not orjson
    doc = {"Records": [r for records in list(objects.values())[:300] for r in records]}
    doc["Records"].append({"odd": "d/é\n\u2028\t", "n": [1, None, True, 0]})
    expected = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    assert fallback.dumps(doc) == expected
    assert writer.dumps(doc) == expected  # orjson when installed


def test_single_file_has_about_the_target_size(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench" / "one.json.gz"
    assert gen.main(["--single-file", str(path), "--target-mb", "2"]) == 0
    raw = gzip.decompress(path.read_bytes())
    target = 2_000_000
    assert target * 0.97 <= len(raw) <= target
    records = json.loads(raw)["Records"]
    assert len(records) > 500
    principals = {principal_key(r) for r in records} - {None}
    assert len(principals) >= 20
    assert "1 files" in capsys.readouterr().err


def test_summary_line_goes_to_stderr(
    gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--accounts", "1", "--history-days", "1", "--live-days", "1", "--scale", "0.05"]
    gen.main(["--out", str(tmp_path / "t"), *small])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.search(r"\d+ files, \d+ records, \d+ bytes gzipped", captured.err)
    assert captured.err.count("\n") == 1


def test_bad_arguments_are_rejected(gen: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        gen.main(["--out", str(tmp_path), "--regions", "moon-1"])
    with pytest.raises(SystemExit):
        gen.main(["--out", str(tmp_path), "--scale", "0"])
    with pytest.raises(SystemExit):
        gen.main(["--regions", "us-east-1"])  # neither --out nor --single-file
