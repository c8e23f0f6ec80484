"""The curated sensitive-action table's tactics agree with MITRE ATT&CK's own technique pages.

An alert's `mitre` entry pairs the action's tactic with its technique; ATT&CK lists, for every
technique, the tactics it serves. A pair ATT&CK does not list (e.g. T1562.007 "Disable or
Modify Cloud Firewall" filed under exfiltration) would send an analyst to the wrong playbook.
"""

from __future__ import annotations

from cloudtrail_anomaly.domain.sensitive import TECHNIQUE_NAMES, curated_sensitive_actions

# ATT&CK Enterprise (v15, attack.mitre.org/techniques/<id>): the tactics of each technique the
# table uses. External facts, written here to be checked against, not derived from the table.
ATTACK_TACTICS = {
    "T1098": {"persistence", "privilege-escalation"},
    "T1098.001": {"persistence", "privilege-escalation"},
    "T1098.003": {"persistence", "privilege-escalation"},
    "T1098.004": {"persistence", "privilege-escalation"},
    "T1136.003": {"persistence"},
    "T1484.002": {"defense-evasion", "privilege-escalation"},
    "T1537": {"exfiltration"},
    "T1555.006": {"credential-access"},
    "T1556.006": {"credential-access", "defense-evasion", "persistence"},
    "T1562.001": {"defense-evasion"},
    "T1562.007": {"defense-evasion"},
    "T1562.008": {"defense-evasion"},
    "T1651": {"execution"},
    "T1666": {"defense-evasion"},
}


def test_every_technique_the_table_names_is_one_this_test_knows() -> None:
    assert set(TECHNIQUE_NAMES) == set(ATTACK_TACTICS)


def test_every_action_s_tactic_is_one_of_its_technique_s_tactics() -> None:
    wrong = {
        action: (entry.tactic, entry.technique_id)
        for action, entry in curated_sensitive_actions().items()
        if entry.technique_id and entry.tactic not in ATTACK_TACTICS[entry.technique_id]
    }
    assert wrong == {}
