"""Lineage: the IAM calls through which one principal makes or empowers another.

An attacker who gets in makes a way back: a user with an access key, a login profile, a role
whose trust policy lets them in, a policy that widens what an identity may do. The principal so
made has no history, so learning would hide it for weeks; lineage instead hands it the alert of
its maker (docs/alert-policy.md, rule 13).

`GRANTING_ACTIONS` is derived, not guessed: the IAM API actions whose request names a user
(`userName`) or a role (`roleName`) and that create it, or add credentials, permissions or trust
to it (the IAM API reference's "Create*", credential, policy-attachment and trust-policy calls).
Removing access (`Delete*`, `Detach*`, `DeactivateMFADevice`) grants nothing and is left out;
so are reads. `tests/test_lineage.py` checks that every IAM action of the curated sensitive list
(domain/sensitive.py) that grants to a named user or role is here.
"""

from __future__ import annotations

from .model import Grant, Mark, MarkKind, Principal, PrincipalKey, Severity

IAM = "iam.amazonaws.com"

# eventName → what it gives the user or role its request names.
GRANTING_ACTIONS: dict[str, str] = {
    # a new identity
    "CreateUser": "created",
    "CreateRole": "created",
    # credentials
    "CreateAccessKey": "given an access key",
    "UpdateAccessKey": "had an access key re-activated",
    "CreateLoginProfile": "given a console password",
    "UpdateLoginProfile": "had its console password changed",
    "CreateServiceSpecificCredential": "given a service-specific credential",
    "UploadSSHPublicKey": "given an SSH public key",
    "UploadSigningCertificate": "given a signing certificate",
    # permissions
    "AttachUserPolicy": "given a managed policy",
    "PutUserPolicy": "given an inline policy",
    "AddUserToGroup": "added to a group",
    "AttachRolePolicy": "given a managed policy",
    "PutRolePolicy": "given an inline policy",
    "DeleteUserPermissionsBoundary": "freed of its permissions boundary",
    "DeleteRolePermissionsBoundary": "freed of its permissions boundary",
    "PutUserPermissionsBoundary": "given a new permissions boundary",
    "PutRolePermissionsBoundary": "given a new permissions boundary",
    # trust
    "UpdateAssumeRolePolicy": "given a new trust policy",
}


def grants(event_source: str, event_name: str) -> bool:
    """Whether this call, when it succeeds, passes lineage to the user or role it names."""
    return event_source == IAM and event_name in GRANTING_ACTIONS


def lineage_subject(principal: Principal) -> str:
    """How a granting request names this principal ("user/<name>", "role/<name>"), or "" for
    principals no IAM call creates (root, services, federated users)."""
    if principal.type == "IAMUser" and principal.name:
        return "user/" + principal.name
    if principal.type in ("AssumedRole", "Role") and principal.key.startswith("arn:"):
        role = principal.key.partition("#")[0].rsplit("/", 1)[-1]
        return "role/" + role if role else ""
    return ""


def lineage_mark(g: Grant, alert_id: str, severity: Severity, forget: int) -> Mark:
    """The mark a grant leaves on the user or role it names: the alert (of its maker) that it
    passes on, for `forget` seconds."""
    return Mark(
        PrincipalKey(g.account_id, g.target),
        MarkKind.LINEAGE,
        g.creator,
        g.action,
        alert_id,
        severity,
        g.event_time,
        g.event_time + forget,
    )
