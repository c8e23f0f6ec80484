"""MITRE ATT&CK as data (issue 16, rule 6): an alert with a sensitive action carries `mitre`."""

from __future__ import annotations

from cloudtrail_anomaly.domain.alerts import Alert
from cloudtrail_anomaly.domain.model import Event, Principal, Severity
from cloudtrail_anomaly.domain.sensitive import (
    _TECHNIQUES,
    TECHNIQUE_NAMES,
    curated_sensitive_actions,
    default_sensitive_actions,
    expand_action,
)
from cloudtrail_anomaly.formats.cim import MITRE_TECHNIQUES
from cloudtrail_anomaly.formats.schema import check_document

USER = Principal("IAMUser", "arn:aws:iam::111122223333:user/alice", "alice")
TACTICS = {
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "exfiltration",
    "execution",
    "initial-access",
}


def _alert(*actions: str, sensitive: bool = True) -> Alert:
    events = []
    for i, a in enumerate(actions):
        full = expand_action(a)
        source, _, name = full.partition(":")
        events.append(
            Event(USER, "111122223333", full, source, name, "us-east-1", 1_700_000_000 + i)
        )
    table = default_sensitive_actions()
    return Alert(
        "111122223333",
        USER,
        events,
        Severity.HIGH,
        ["r"],
        ["obj"],
        listed_first=frozenset(e.action for e in events if sensitive and e.action in table),
    )


def test_a_sensitive_action_carries_its_tactic_and_technique() -> None:
    doc = _alert("cloudtrail:StopLogging", "s3:ListBuckets").to_dict()
    assert doc["mitre"] == [
        {
            "tactic": "defense-evasion",
            "technique_id": "T1562.008",
            "technique": "Impair Defenses: Disable or Modify Cloud Logs",
        }
    ]
    check_document(doc)


def test_a_sensitive_action_without_a_clear_technique_gives_its_tactic() -> None:
    doc = _alert("lambda:UpdateFunctionCode").to_dict()
    assert doc["mitre"] == [{"tactic": "persistence", "technique_id": None, "technique": None}]
    check_document(doc)


def test_entries_are_deduplicated_and_sorted() -> None:
    doc = _alert("iam:PutUserPolicy", "iam:AttachUserPolicy", "iam:CreateAccessKey").to_dict()
    assert [(m["tactic"], m["technique_id"]) for m in doc["mitre"]] == [
        ("persistence", "T1098.001"),
        ("privilege-escalation", "T1098.003"),
    ]


def test_no_sensitive_action_no_entry() -> None:
    assert _alert("s3:ListBuckets", "ec2:DescribeInstances").to_dict()["mitre"] == []


def test_an_action_the_config_removed_from_the_list_gives_no_entry() -> None:
    # listed_first is the policy's (configured) sensitive set: a removed action is not in it.
    assert _alert("cloudtrail:StopLogging", sensitive=False).to_dict()["mitre"] == []


def test_one_table_every_technique_names_a_listed_action_with_a_name() -> None:
    table = curated_sensitive_actions()
    for technique, actions in _TECHNIQUES.items():
        assert technique in TECHNIQUE_NAMES
        for action in actions:
            assert table[expand_action(action)].technique_id == technique
    assert {a: v.technique_id for a, v in table.items() if v.technique_id} == MITRE_TECHNIQUES
    assert {v.tactic for v in table.values()} <= TACTICS
