"""An alert as an AWS Security Finding (ASFF), for AWS Security Hub's BatchImportFindings.

A pure function of the alert's JSON. The finding's `Id` is the alert's `alert_id`, so a
re-sent alert updates its finding instead of adding one (delivery is at least once). Times are
CloudTrail event times: `CreatedAt`/`FirstObservedAt` the first new action's, `UpdatedAt`/
`LastObservedAt` the last's, so the same alert always gives the same finding.

`AwsAccountId` is the account the finding belongs to. Security Hub takes a finding through the
default product integration only for the calling account, or for its member accounts when the
caller is their Security Hub administrator (delegated administrator of an organization). With
`member_accounts` the finding goes to the account the actions happened in; without it
(the default) to `home_account`, the deployment's own, and the account the actions happened
in is the finding's `AwsAccount` resource (docs/aws-sinks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cim import SIGNATURES, TECHNIQUE_NAMES, cim_fields

SCHEMA_VERSION = "2018-10-08"
TITLE_CHARS = 256
DESCRIPTION_CHARS = 1024
PRODUCT_FIELD_CHARS = 2048
RESOURCE_TYPES = {"IAMUser": "AwsIamUser", "AssumedRole": "AwsIamRole", "Root": "AwsIamUser"}
LABELS = {"informational", "low", "medium", "high", "critical"}


def product_arn(region: str, account: str, partition: str = "aws") -> str:
    """The default product of an account: what BatchImportFindings takes for custom findings."""
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_asff(
    doc: Mapping[str, Any],
    *,
    home_account: str,
    region: str,
    member_accounts: bool = False,
    partition: str = "aws",
) -> dict[str, Any]:
    """The ASFF finding of the alert document `doc`, imported from `home_account` in `region`."""
    cim = cim_fields(doc)
    principal = doc.get("principal") or {}
    actions: list[Mapping[str, Any]] = list(doc.get("new_actions") or [])
    account = str(doc.get("account_id") or "")
    owner = account if member_accounts and account else home_account
    severity = str(doc.get("severity") or "")
    detector = str(doc.get("detector") or "")
    who = str(principal.get("name") or principal.get("arn") or "unknown principal")
    total = int(doc.get("new_actions_total") or len(actions))
    principal_resource: dict[str, Any] = {
        "Type": RESOURCE_TYPES.get(str(principal.get("type") or ""), "Other"),
        "Id": str(principal.get("arn") or who),
        "Partition": partition,
        "Region": str((actions[0] if actions else {}).get("region") or region),
    }
    account_resource = {
        "Type": "AwsAccount",
        "Id": f"AWS::::Account:{account}",
        "Partition": partition,
        "Region": region,
    }
    fields = {
        "cloudtrail-anomaly/alert_id": str(doc.get("alert_id") or ""),
        "cloudtrail-anomaly/detector": detector,
        "cloudtrail-anomaly/account_id": account,
        "cloudtrail-anomaly/new_actions_total": str(total),
        "cloudtrail-anomaly/new_actions_digest": str(doc.get("new_actions_digest") or ""),
        "cloudtrail-anomaly/actions": ", ".join(str(a.get("action") or "") for a in actions),
        "cloudtrail-anomaly/reasons": "\n".join(str(r) for r in doc.get("reasons") or []),
        "cloudtrail-anomaly/mitre_technique_id": ", ".join(
            f"{t} {TECHNIQUE_NAMES.get(t, '')}".strip() for t in cim["mitre_technique_id"]
        ),
    }
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": str(doc["alert_id"]),
        "ProductArn": product_arn(region, home_account, partition),
        "GeneratorId": f"cloudtrail-anomaly/{detector}",
        "AwsAccountId": owner,
        "Types": ["Unusual Behaviors/User"],
        "CreatedAt": str(doc["first_event_time"]),
        "UpdatedAt": str(doc["last_event_time"]),
        "FirstObservedAt": str(doc["first_event_time"]),
        "LastObservedAt": str(doc["last_event_time"]),
        "Severity": {
            "Label": severity.upper() if severity in LABELS else "INFORMATIONAL",
            "Original": severity,
        },
        "Title": _cut(f"{SIGNATURES.get(detector, detector)}: {who} ({total})", TITLE_CHARS),
        "Description": _cut(str(cim["description"]), DESCRIPTION_CHARS),
        "ProductFields": {k: _cut(v, PRODUCT_FIELD_CHARS) for k, v in fields.items() if v},
        "Resources": [principal_resource, account_resource],
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},
    }
