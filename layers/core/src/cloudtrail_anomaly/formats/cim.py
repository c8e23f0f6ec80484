"""The flat fields of Splunk's CIM Alerts data model, computed from an alert's own JSON.

They are added to every alert (`Alert.to_dict`) so that the Splunk add-on
(`splunk/TA-cloudtrail-anomaly`) can tag it `alert` and Enterprise Security's Alerts data model
takes it as it is: no lookup, no calculated field. The mapping is documented in docs/splunk.md;
`CIM_FIELDS` is what the add-on promises and its test checks.

A pure function of the document, not of `Alert`, so an alert staged before these fields
existed can be given them on its way out (`with_cim_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ..domain.sensitive import TECHNIQUE_NAMES, default_sensitive_actions

__all__ = ["MITRE_TECHNIQUES", "TECHNIQUE_NAMES", "cim_fields", "with_cim_fields"]

APP = "cloudtrail-anomaly"
ALERT_TYPE = "alert"  # CIM Alerts `type`: alarm, alert, event, task or warning
# The numbers OCSF gives the same severities (severity_id), so both outputs agree.
SEVERITY_IDS = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
SIGNATURES = {
    "new_action": "Principal performed AWS actions it had never performed before",
    "new_action_burst": "Burst of never-seen AWS actions by one principal",
    "new_action_slow": "Never-seen AWS actions by one principal adding up over days",
}
# Of JSON: the other fields copy strings the alert already bounds; an alert's size budget
# (domain/alerts.py) counts these fields too.
DESCRIPTION_BYTES = 1024
DESCRIPTION_ACTIONS = 10

# The ATT&CK techniques live with the sensitive actions they describe (domain/sensitive.py, one
# table); an alert's `mitre_technique_id` lists those of its listed new actions.
MITRE_TECHNIQUES: dict[str, str] = {
    action: hit.technique_id
    for action, hit in default_sensitive_actions().items()
    if hit.technique_id
}


# Field → what it holds; the add-on's promise (props/tags) and docs/splunk.md's table.
CIM_FIELDS: dict[str, str] = {
    "app": f"always `{APP}`",
    "id": "the alert's `alert_id`",
    "signature": "what was detected, one text per detector",
    "signature_id": "the detector (`new_action`, `new_action_burst`, `new_action_slow`)",
    "severity": "the alert's severity (CIM's own values)",
    "severity_id": "1 informational, 2 low, 3 medium, 4 high, 5 critical (as OCSF)",
    "type": f"always `{ALERT_TYPE}`",
    "user": "the principal's ARN (`principal.arn`)",
    "user_name": "the principal's name (`principal.name`)",
    "user_type": "the principal's `userIdentity.type` (`principal.type`)",
    "src": "the source IP (or AWS service) of the first new action",
    "dest": "the account the actions happened in (`account_id`)",
    "vendor_account": "the same account id",
    "vendor_region": "the region of the first new action",
    "description": "one line: who did how many new actions where, the first ten named",
    "mitre_technique_id": "ATT&CK technique ids of the listed new actions, where known (a list, may be empty)",
}


def _short(action: str) -> str:
    source, sep, event = action.partition(":")
    if sep and source.endswith(".amazonaws.com"):
        return f"{source.removesuffix('.amazonaws.com')}:{event}"
    return action


def _fit(text: str, budget: int) -> str:
    """`text`, or its longest beginning (ending "...") whose JSON string takes `budget` bytes."""
    if len(orjson.dumps(text)) <= budget:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(orjson.dumps(text[:mid] + "...")) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."


def cim_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The CIM Alerts fields of the alert document `doc` (keys: `CIM_FIELDS`)."""
    principal = doc.get("principal") or {}
    actions: list[Mapping[str, Any]] = list(doc.get("new_actions") or [])
    first = actions[0] if actions else {}
    severity = str(doc.get("severity") or "")
    detector = str(doc.get("detector") or "")
    account = str(doc.get("account_id") or "")
    who = str(principal.get("name") or principal.get("arn") or "unknown principal")
    total = int(doc.get("new_actions_total") or len(actions))
    names = [_short(str(a.get("action") or "")) for a in actions[:DESCRIPTION_ACTIONS]]
    more = total - len(names)
    where = account + (f" ({doc['account_name']})" if doc.get("account_name") else "")
    description = f"{who} did {total} new action(s) in {where}: {', '.join(names)}" + (
        f" and {more} more" if more > 0 else ""
    )
    description = _fit(description, DESCRIPTION_BYTES)
    techniques = sorted(
        {
            MITRE_TECHNIQUES[a]
            for a in (str(x.get("action") or "") for x in actions)
            if a in MITRE_TECHNIQUES
        }
    )
    return {
        "app": APP,
        "id": str(doc.get("alert_id") or ""),
        "signature": SIGNATURES.get(detector, f"cloudtrail-anomaly {detector}"),
        "signature_id": detector,
        "severity": severity,
        "severity_id": SEVERITY_IDS.get(severity, 0),
        "type": ALERT_TYPE,
        "user": str(principal.get("arn") or ""),
        "user_name": str(principal.get("name") or ""),
        "user_type": str(principal.get("type") or ""),
        "src": str(first.get("source_ip") or ""),
        "dest": account,
        "vendor_account": account,
        "vendor_region": str(first.get("region") or ""),
        "description": description,
        "mitre_technique_id": techniques,
    }


def with_cim_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with its CIM fields, computed if it lacks them (an alert staged before they were)."""
    if all(name in doc for name in CIM_FIELDS):
        return dict(doc)
    return {**doc, **cim_fields(doc)}
