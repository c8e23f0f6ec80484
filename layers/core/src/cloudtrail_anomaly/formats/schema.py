"""The alert's JSON contract as types: `AlertDocument` is what `Alert.to_dict()` produces.

`scripts/alert_schema.py` turns it into docs/alert.schema.json (JSON Schema 2020-12, through
`msgspec.json.schema`); tests decode every alert the CLI emits into it (unknown fields refused,
so a field added to the alert and not here fails) and validate them against the file, and check
the README's "Alert format" table names exactly its fields. Add a field here when the alert
grows: fields are only ever added.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Severity = Literal["informational", "low", "medium", "high", "critical"]
Detector = Literal["new_action", "new_action_burst", "new_action_slow"]
IsoTime = Annotated[
    str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", description="ISO 8601, UTC")
]
Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]+$")]


class PrincipalDocument(Struct, forbid_unknown_fields=True):
    """Who did the new actions."""

    type: Annotated[str, Meta(description="userIdentity.type")]
    arn: Annotated[str, Meta(description="the baseline key (docs/principals.md)")]
    name: str
    session: Annotated[str, Meta(description="the role session name, or empty")]
    role_created: Annotated[
        IsoTime | None, Meta(description="the role's CreateDate, when IAM enrichment is on")
    ]


class ActionDocument(Struct, forbid_unknown_fields=True):
    """The first event of one new action."""

    action: Annotated[str, Meta(description="eventSource:eventName")]
    event_source: str
    event_name: str
    event_time: IsoTime
    region: str
    error_code: str | None
    source_ip: str
    user_agent: str
    event_id: str


class MitreDocument(Struct, forbid_unknown_fields=True):
    """One MITRE ATT&CK entry of a sensitive new action (domain/sensitive.py's curated list)."""

    tactic: Annotated[str, Meta(description="the ATT&CK tactic's short name, e.g. defense-evasion")]
    technique_id: (
        Annotated[str, Meta(pattern=r"^T\d{4}(\.\d{3})?$", description="e.g. T1562.008")] | None
    )  # null: the tactic only
    technique: Annotated[str | None, Meta(description="the technique's name, or null")]


class AlertDocument(Struct, forbid_unknown_fields=True, kw_only=True):
    """One cloudtrail-anomaly alert (README, "Alert format")."""

    alert_id: Annotated[Hex, Meta(min_length=32, max_length=32, description="stable id")]
    detector: Detector
    severity: Severity
    account_id: str
    account_name: str | None
    account_owner: str | None
    principal: PrincipalDocument
    new_actions: Annotated[list[ActionDocument], Meta(min_length=1, max_length=100)]
    new_actions_total: Annotated[int, Meta(ge=1)]
    new_actions_truncated: bool
    new_actions_digest: Annotated[Hex, Meta(min_length=64, max_length=64)]
    first_event_time: IsoTime
    last_event_time: IsoTime
    source_objects: list[str]
    reasons: list[str]
    mitre: Annotated[
        list[MitreDocument],
        Meta(description="ATT&CK entries of the alert's sensitive new actions (may be empty)"),
    ]
    suppressed: bool | UnsetType = UNSET
    suppressed_reason: str | UnsetType = UNSET
    # The CIM Alerts fields (formats/cim.py, docs/splunk.md).
    app: Literal["cloudtrail-anomaly"]
    id: Annotated[Hex, Meta(description="= alert_id")]
    signature: str
    signature_id: Detector
    severity_id: Annotated[int, Meta(ge=0, le=5, description="1 informational … 5 critical")]
    type: Literal["alert"]
    user: Annotated[str, Meta(description="= principal.arn")]
    user_name: str
    user_type: str
    src: str
    dest: Annotated[str, Meta(description="= account_id")]
    vendor_account: str
    vendor_region: str
    description: str
    mitre_technique_id: list[Annotated[str, Meta(pattern=r"^T\d{4}(\.\d{3})?$")]]


def alert_schema() -> dict[str, Any]:
    """The JSON Schema of the alert document, as docs/alert.schema.json holds it. It does not
    forbid other properties: the alert only grows, and a consumer should ignore what it does not
    know."""
    (ref,), defs = msgspec.json.schema_components([AlertDocument])
    name = ref["$ref"].rsplit("/", 1)[-1]
    root = defs.pop(name)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **root,
        "$defs": defs,
    }


def check_document(doc: Any) -> AlertDocument:
    """`doc` (a decoded alert) as an `AlertDocument`; msgspec.ValidationError if it is not one."""
    return msgspec.convert(doc, AlertDocument, strict=True)
