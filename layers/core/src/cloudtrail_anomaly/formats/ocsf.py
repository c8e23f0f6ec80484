"""An alert as an OCSF Detection Finding (class 2004, OCSF 1.5.0), for Security Lake and the
SIEMs that read OCSF.

A pure function of the alert's JSON (`Alert.to_dict()`), so any sink can send it from what the
outbox holds. Times are OCSF timestamps (milliseconds since the epoch) of CloudTrail event time:
no wall clock, so the same alert always gives the same finding. Where OCSF has a place, the
alert's fields go there (docs/ocsf.md has the table); what it has none for (the principal's
session and role creation, the digest and total of the new actions, the reasons, the log objects)
is kept under `unmapped`. Tests validate every finding with the OCSF 1.5.0 models of
py-ocsf-models (Prowler).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import __version__
from .cim import SEVERITY_IDS, SIGNATURES, TECHNIQUE_NAMES, cim_fields

OCSF_VERSION = "1.5.0"
CLASS_UID = 2004  # Detection Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
STATUS_NEW, STATUS_SUPPRESSED = 1, 3
ANALYTIC_RULE = 1
ACCOUNT_AWS = 10  # account.type_id: AWS Account
SEVERITY_CAPTIONS = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}


def epoch_ms(iso: str) -> int:
    """`2026-10-30T03:12:09Z` → milliseconds since the epoch (an OCSF timestamp_t)."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1000


def _evidence(action: Mapping[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {
        "operation": action.get("event_name") or "",
        "request": {
            "uid": action.get("event_id") or "",
            "data": {"event_source": action.get("event_source") or ""},
        },
    }
    if action.get("error_code"):
        api["response"] = {"error": action["error_code"]}
    return {
        "name": action.get("action") or "",
        "api": api,
        "data": {
            "event_time": action.get("event_time"),
            "region": action.get("region"),
            "source_ip": action.get("source_ip"),
            "user_agent": action.get("user_agent"),
        },
    }


def to_ocsf(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The OCSF Detection Finding of the alert document `doc`."""
    cim = cim_fields(doc)
    principal = doc.get("principal") or {}
    actions: list[Mapping[str, Any]] = list(doc.get("new_actions") or [])
    severity_id = SEVERITY_IDS.get(str(doc.get("severity")), 0)
    suppressed = bool(doc.get("suppressed"))
    first, last = epoch_ms(str(doc["first_event_time"])), epoch_ms(str(doc["last_event_time"]))
    detector = str(doc.get("detector") or "")
    account = str(doc.get("account_id") or "")
    finding_info: dict[str, Any] = {
        "uid": str(doc["alert_id"]),
        "title": SIGNATURES.get(detector, detector),
        "desc": cim["description"],
        "types": [detector],
        "first_seen_time": first,
        "last_seen_time": last,
        "data_sources": ["AWS CloudTrail"],
        "analytic": {"name": detector, "uid": detector, "type_id": ANALYTIC_RULE, "type": "Rule"},
    }
    attacks = [
        {"technique": {"uid": t, "name": TECHNIQUE_NAMES[t]}} for t in cim["mitre_technique_id"]
    ]
    if attacks:
        finding_info["attacks"] = attacks
    finding: dict[str, Any] = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Detection Finding: Create",
        "time": first,
        "start_time": first,
        "end_time": last,
        "count": int(doc.get("new_actions_total") or len(actions)),
        "severity_id": severity_id,
        "severity": SEVERITY_CAPTIONS.get(severity_id, "Unknown"),
        "status_id": STATUS_SUPPRESSED if suppressed else STATUS_NEW,
        "status": "Suppressed" if suppressed else "New",
        "message": cim["description"],
        "metadata": {
            "version": OCSF_VERSION,
            "uid": str(doc["alert_id"]),
            "event_code": detector,
            "profiles": ["cloud"],
            "product": {
                "name": "cloudtrail-anomaly",
                "vendor_name": "cloudtrail-anomaly",
                "version": __version__,
            },
        },
        "finding_info": finding_info,
        "cloud": {
            "provider": "AWS",
            "region": str((actions[0] if actions else {}).get("region") or ""),
            "account": {
                "uid": account,
                "name": str(doc.get("account_name") or account),
                "type_id": ACCOUNT_AWS,
                "type": "AWS Account",
            },
        },
        "resources": [
            {
                "uid": str(principal.get("arn") or ""),
                "name": str(principal.get("name") or ""),
                "type": str(principal.get("type") or ""),
                "region": str((actions[0] if actions else {}).get("region") or ""),
            }
        ],
        "evidences": [_evidence(a) for a in actions],
        "unmapped": {
            "principal": dict(principal),
            "account_owner": doc.get("account_owner"),
            "new_actions_total": doc.get("new_actions_total"),
            "new_actions_truncated": doc.get("new_actions_truncated"),
            "new_actions_digest": doc.get("new_actions_digest"),
            "reasons": list(doc.get("reasons") or []),
            "source_objects": list(doc.get("source_objects") or []),
        },
    }
    if suppressed:
        finding["unmapped"]["suppressed_reason"] = doc.get("suppressed_reason")
    return finding
