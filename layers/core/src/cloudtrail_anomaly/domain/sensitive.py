"""The curated list of sensitive actions: one new sensitive action is worth an analyst's look
whatever else happened.

Derived from the MITRE ATT&CK mappings of TrailDiscover (adanalvarez/TrailDiscover, CC BY 4.0:
its events labelled Persistence, Privilege Escalation, Defense Evasion, Credential Access and
Exfiltration) and from the techniques Stratus Red Team detonates (DataDog/stratus-red-team),
then pruned of everyday calls that would drown the signal (sts:AssumeRole, ec2:RunInstances,
ec2:StartInstances, logs:CreateLogStream, kms:Decrypt, ssm:GetParameter...). `scripts/derive_sensitive_actions.py` prints the
raw candidates from the labels and what this list keeps or drops; docs/alert-policy.md explains
the choices. Users extend or trim it in the config (`[policy] sensitive_actions_add/remove`).

Names are short (`iam:CreateAccessKey` means `iam.amazonaws.com:CreateAccessKey`); the
severity is the least an alert containing the action gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import NamedTuple


class SensitiveAction(NamedTuple):
    tactic: str  # the ATT&CK tactic's short name ("defense-evasion"), or "user-defined"
    severity: str
    technique_id: str = ""  # ATT&CK technique, where one is clear ("T1562.008")


_P, _PE, _DE, _CA, _EX, _EXE = (
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "exfiltration",
    "execution",
)

_HIGH: dict[str, tuple[str, ...]] = {
    _P: (
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:CreateUser",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateAccessKey",
        "sts:GetFederationToken",
        "lambda:AddPermission",
        "lambda:UpdateFunctionCode",
        "lambda:CreateFunctionUrlConfig",
        "lambda:UpdateFunctionConfiguration",
        "lambda:AddLayerVersionPermission",
        "rolesanywhere:CreateTrustAnchor",
        "rolesanywhere:CreateProfile",
        "sso:CreateAccountAssignment",
        "sso-directory:CreateUser",
        "sso-directory:AddMemberToGroup",
        "ec2:CreateKeyPair",
        "ec2:ImportKeyPair",
        "appsync:CreateApiKey",
        "ec2-instance-connect:SendSSHPublicKey",  # T1098.004: a key pushed onto an instance
        "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    ),
    _PE: (
        "iam:AttachUserPolicy",
        "iam:AttachRolePolicy",
        "iam:AttachGroupPolicy",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        "iam:PutGroupPolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:AddUserToGroup",
        "iam:AddRoleToInstanceProfile",
        "iam:DeleteRolePermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
        "iam:PutRolePermissionsBoundary",  # swapping in a looser boundary escalates too
        "iam:PutUserPermissionsBoundary",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:ModifyInstanceAttribute",
        "eks:CreateAccessEntry",
        "eks:AssociateAccessPolicy",
        "glue:CreateDevEndpoint",
        "glue:UpdateDevEndpoint",
        # T1484.002 Trust Modification: a new identity provider the account trusts
        "iam:CreateSAMLProvider",
        "iam:UpdateSAMLProvider",
        "iam:CreateOpenIDConnectProvider",
    ),
    _DE: (
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:PutInsightSelectors",
        "config:DeleteConfigurationRecorder",
        "config:DeleteDeliveryChannel",
        "config:DeleteConfigRule",
        "guardduty:UpdateDetector",
        "guardduty:DeleteMembers",
        "guardduty:DisassociateMembers",
        "guardduty:StopMonitoringMembers",
        "guardduty:CreateIPSet",
        "guardduty:UpdateIPSet",
        "guardduty:DeletePublishingDestination",
        "guardduty:DeleteInvitations",
        "rds:ModifyActivityStream",  # stops a database activity stream
        "securityhub:DisableSecurityHub",
        "securityhub:DeleteMembers",
        "ec2:DeleteFlowLogs",
        "route53resolver:DeleteResolverQueryLogConfig",
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "events:DisableRule",
        "events:DeleteRule",
        "events:RemoveTargets",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
        "monitoring:DeleteAlarms",
        "wafv2:DeleteWebACL",
        "wafv2:DeleteRuleGroup",
        "s3:DeleteBucketPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "ec2:DisableEbsEncryptionByDefault",
        "access-analyzer:DeleteAnalyzer",
        "macie2:DisableMacie",
        "ec2:AuthorizeSecurityGroupIngress",  # T1562.007: opens the cloud firewall
    ),
    _CA: (
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameters",
        "ec2:GetPasswordData",
        "ecr:GetAuthorizationToken",
        "rds:ModifyDBInstance",
        "iam:CreateServiceSpecificCredential",
    ),
    _EX: (
        "ec2:ModifySnapshotAttribute",
        "ec2:ModifyImageAttribute",
        "rds:ModifyDBSnapshotAttribute",
        "rds:ModifyDBClusterSnapshotAttribute",
        "ec2:CreateInstanceExportTask",
        "rds:StartExportTask",
        "s3:PutBucketPolicy",
        "s3:PutBucketAcl",
        "s3:PutObjectAcl",
        "s3:PutBucketPublicAccessBlock",
        "s3:DeleteBucketPublicAccessBlock",
        "s3:PutBucketReplication",
        "ec2:EnableSerialConsoleAccess",
        "transfer:CreateServer",
        "transfer:CreateUser",
    ),
    _EXE: (  # T1651: commands run on instances through the cloud's own agent
        "ssm:StartSession",
        "ssm:SendCommand",
    ),
}
# Switching off the logs or leaving the organization: nothing ordinary looks like it.
_CRITICAL: dict[str, tuple[str, ...]] = {
    _DE: (
        "cloudtrail:StopLogging",
        "cloudtrail:DeleteTrail",
        "guardduty:DeleteDetector",
        "guardduty:DisassociateFromMasterAccount",
        "guardduty:DisassociateFromAdministratorAccount",
        "config:StopConfigurationRecorder",
        "organizations:LeaveOrganization",
    ),
}


# MITRE ATT&CK (Enterprise, cloud) techniques of the sensitive actions whose technique is clear
# (a test checks that each names a listed action). Short names as above.
_TECHNIQUES: dict[str, tuple[str, ...]] = {
    "T1098.001": ("iam:CreateAccessKey", "iam:UpdateAccessKey"),  # Additional Cloud Credentials
    "T1098": ("iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:UpdateAssumeRolePolicy"),
    "T1098.003": (  # Additional Cloud Roles
        "iam:AttachUserPolicy",
        "iam:AttachRolePolicy",
        "iam:AttachGroupPolicy",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        "iam:PutGroupPolicy",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:AddUserToGroup",
    ),
    "T1098.004": ("ec2-instance-connect:SendSSHPublicKey",),  # SSH Authorized Keys
    "T1136.003": ("iam:CreateUser", "sso-directory:CreateUser"),  # Create Account: Cloud Account
    "T1484.002": (  # Trust Modification
        "iam:CreateSAMLProvider",
        "iam:UpdateSAMLProvider",
        "iam:CreateOpenIDConnectProvider",
    ),
    "T1562.008": (  # Disable or Modify Cloud Logs
        "cloudtrail:StopLogging",
        "cloudtrail:DeleteTrail",
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "ec2:DeleteFlowLogs",
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "route53resolver:DeleteResolverQueryLogConfig",
    ),
    "T1562.001": (  # Disable or Modify Tools
        "guardduty:DeleteDetector",
        "guardduty:UpdateDetector",
        "guardduty:DisassociateFromMasterAccount",
        "guardduty:DisassociateFromAdministratorAccount",
        "config:StopConfigurationRecorder",
        "config:DeleteConfigurationRecorder",
        "securityhub:DisableSecurityHub",
        "macie2:DisableMacie",
        "access-analyzer:DeleteAnalyzer",
    ),
    "T1562.007": ("ec2:AuthorizeSecurityGroupIngress",),  # Disable or Modify Cloud Firewall
    "T1556.006": ("iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice"),  # MFA
    "T1537": (  # Transfer Data to Cloud Account
        "ec2:ModifySnapshotAttribute",
        "ec2:ModifyImageAttribute",
        "rds:ModifyDBSnapshotAttribute",
        "rds:ModifyDBClusterSnapshotAttribute",
    ),
    "T1555.006": (  # Cloud Secrets Management Stores
        "secretsmanager:GetSecretValue",
        "secretsmanager:BatchGetSecretValue",
        "ssm:GetParameters",
    ),
    "T1651": ("ssm:SendCommand", "ssm:StartSession"),  # Cloud Administration Command
    "T1666": ("organizations:LeaveOrganization",),  # Modify Cloud Resource Hierarchy
}


TECHNIQUE_NAMES = {
    "T1098": "Account Manipulation",
    "T1098.001": "Account Manipulation: Additional Cloud Credentials",
    "T1098.003": "Account Manipulation: Additional Cloud Roles",
    "T1098.004": "Account Manipulation: SSH Authorized Keys",
    "T1136.003": "Create Account: Cloud Account",
    "T1484.002": "Domain or Tenant Policy Modification: Trust Modification",
    "T1537": "Transfer Data to Cloud Account",
    "T1555.006": "Credentials from Password Stores: Cloud Secrets Management Stores",
    "T1556.006": "Modify Authentication Process: Multi-Factor Authentication",
    "T1562.001": "Impair Defenses: Disable or Modify Tools",
    "T1562.007": "Impair Defenses: Disable or Modify Cloud Firewall",
    "T1562.008": "Impair Defenses: Disable or Modify Cloud Logs",
    "T1651": "Cloud Administration Command",
    "T1666": "Modify Cloud Resource Hierarchy",
}


def expand_action(name: str) -> str:
    """`iam:CreateUser` → `iam.amazonaws.com:CreateUser`; full names are returned unchanged."""
    source, sep, event = name.partition(":")
    if sep and "." not in source:
        return f"{source}.amazonaws.com:{event}"
    return name


def default_sensitive_actions() -> dict[str, SensitiveAction]:
    """Full action name → (tactic, least severity)."""
    table: dict[str, SensitiveAction] = {}
    for severity, groups in (("high", _HIGH), ("critical", _CRITICAL)):
        for tactic, names in groups.items():
            for name in names:
                table[expand_action(name)] = SensitiveAction(tactic, severity)
    for technique, actions in _TECHNIQUES.items():
        for name in actions:
            full = expand_action(name)
            table[full] = table[full]._replace(technique_id=technique)
    return table


@cache
def curated_sensitive_actions() -> Mapping[str, SensitiveAction]:
    """`default_sensitive_actions()`, built once, read-only (for the alert's `mitre` list)."""
    return MappingProxyType(default_sensitive_actions())


class Mitre(NamedTuple):
    """One ATT&CK entry of an alert (its `mitre` list)."""

    tactic: str
    technique_id: str | None
    technique: str | None


def mitre_of(actions: Iterable[str], table: Mapping[str, SensitiveAction]) -> list[Mitre]:
    """The ATT&CK entries of the curated sensitive actions among `actions`, once each, sorted:
    a tactic with its technique where one is clear, else the tactic alone. User-defined
    sensitive actions have no curated tactic and give none."""
    found: set[Mitre] = set()
    for action in actions:
        hit = table.get(action)
        if hit is None or hit.tactic == "user-defined":
            continue
        tid = hit.technique_id or None
        found.add(Mitre(hit.tactic, tid, TECHNIQUE_NAMES[tid] if tid else None))
    return sorted(found, key=lambda m: (m.tactic, m.technique_id or ""))
